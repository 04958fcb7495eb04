"""Your models against a committed reference study, paired by draw.

Point *i* of a study is the *i*-th uniform draw of its sampling seed, mapped into each model's
family range; so a model run on a budget pairs with the reference study of that budget
(``results/reference/<study>_<budget>/trials.csv``) without retraining a reference model, as long
as the draws, the epochs and the data are the same. :func:`mismatches` says when they are not
(the runner's plan and ``bench report --reference`` both ask it), :func:`overlay` lays the
reference's trials beside the user's, and :func:`compare` runs the paired tests.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats, summary, verdict
from .errors import UserError

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "results" / "reference"
TABLE = "trials.csv"
COMPARE_COLS = ["model", "reference", "optimizer", "points", "best", "best_ref", "best_diff", "best_lo", "best_hi",
                "median_diff", "lower_at", "wilcoxon_p", "within_4", "within_4_ref", "ks_delta", "ks_delta_p",
                "error", "robustness"]  # fmt: skip


class ReferenceError(UserError, ValueError):
    """A reference that cannot be found, read or paired; one-line message."""


def available() -> list[str]:
    """Names of the committed reference studies (``results/reference/<name>/trials.csv``)."""
    return sorted(p.parent.name for p in REFERENCE_DIR.glob(f"*/{TABLE}"))


def locate(name_or_path: str | Path) -> Path:
    """The trial table of a reference given by name (``lr_wd_local``) or by path (its folder or table)."""
    p = Path(name_or_path)
    for cand in (p, p / TABLE, REFERENCE_DIR / str(name_or_path) / TABLE):
        if cand.is_file():
            return cand
    raise ReferenceError(f"unknown reference {str(name_or_path)!r}; valid: {', '.join(available()) or '(none)'} "
                         f"(or the path of a reference folder or trial table)")


def for_budget(study: str, budget: str) -> tuple[str, Path] | None:
    """The committed reference of a study's budget, if there is one: (name, table)."""
    name = f"{study}_{budget}"
    table = REFERENCE_DIR / name / TABLE
    return (name, table) if table.is_file() else None


def load(name_or_path: str | Path) -> pd.DataFrame:
    from .load import load_trials

    return load_trials(locate(name_or_path))


def _show(values) -> str:
    vals = sorted({v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))}, key=str)
    return ", ".join(str(v) for v in vals) or "(unknown)"


def mismatches(mine: pd.DataFrame, ref: pd.DataFrame) -> list[str]:
    """Why ``mine`` does not pair with ``ref`` (empty: it does). Both are tidy tables; ``mine`` may
    be a plan (its rows need the identity columns, not results). Paired means: the same sampling
    seed, the same (lr, wd) at each point of a family both hold, epochs, data and resolution that
    the reference has, and at least one shared optimizer and point."""
    if mine.empty:
        return ["the study has no trials"]
    if ref.empty:
        return ["the reference has no trials"]
    out = []
    for col in ("epochs", "data", "resolution"):
        have, ref_have = set(mine[col].dropna()), set(ref[col].dropna())
        if have - ref_have and ref_have:
            out.append(f"different {col}: {_show(have)} here, {_show(ref_have)} in the reference")
    seeds, ref_seeds = set(mine["sampling_seed"].dropna()), set(ref["sampling_seed"].dropna())
    if seeds and ref_seeds and seeds != ref_seeds:
        out.append(f"different sampling seed: {_show(seeds)} here, {_show(ref_seeds)} in the reference")
    checked = False
    if not out:
        for (fam, opt), g in mine.dropna(subset=["point"]).groupby(["family", "optimizer"], sort=True):
            r = ref[ref["family"].eq(fam) & ref["optimizer"].eq(opt)].drop_duplicates("point")[["point", "lr", "wd"]]
            m = g.drop_duplicates("point").merge(r, on="point", suffixes=("", "_ref"))
            if m.empty:
                continue
            checked = True
            off = m[~(np.isclose(m["lr"], m["lr_ref"], rtol=1e-9) & np.isclose(m["wd"], m["wd_ref"], rtol=1e-9))]
            if len(off):
                x = off.iloc[0]
                out.append(f"different ranges for {fam}/{opt}: point {int(x['point'])} is lr {x['lr']:.4g}, wd "
                           f"{x['wd']:.4g} here but lr {x['lr_ref']:.4g}, wd {x['wd_ref']:.4g} in the reference")
    if not out and not checked and not (seeds and ref_seeds):
        out.append("cannot tell whether the draws are the reference's: the records lack the sampling seed "
                   "and share no family with it")
    if not set(mine["optimizer"]) & set(ref["optimizer"]):
        out.append(f"no shared optimizer: {_show(mine['optimizer'])} here, {_show(ref['optimizer'])} in the reference")
    elif not set(mine["point"].dropna()) & set(ref["point"].dropna()):
        out.append("no shared points")
    return out


def overlay(mine: pd.DataFrame, ref: pd.DataFrame, name: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """``mine`` with the reference's trials beside it: (table, reference models, notes). Refuses
    with the reasons when they do not pair. A model both hold is taken from ``mine``."""
    studies = sorted(set(mine["study"].dropna().astype(str)))
    if len(studies) > 1:
        raise ReferenceError(f"--reference pairs one study with the reference; got {', '.join(studies)}")
    why = mismatches(summary.results(mine), summary.results(ref))
    if why:
        raise ReferenceError(f"the study does not pair with reference {name}: " + "; ".join(why))
    own = set(mine["model"])
    notes = [f"{m}: your runs are shown, not the reference's" for m in sorted(own & set(ref["model"]))]
    ref = ref[~ref["model"].isin(own)]
    relabel = {c: mine[c].iloc[0] for c in ("study", "budget") if mine[c].nunique() == 1}
    table = pd.concat([mine, ref.assign(**relabel)], ignore_index=True)
    return table, sorted(set(ref["model"])), notes


def _word(pvalue: float, direction: float, more: str, less: str) -> str:
    if not pvalue < verdict.ALPHA:
        return "no significant difference"
    return more if direction > 0 else less


def compare(df: pd.DataFrame, models, ref_models, seed: int = 0) -> pd.DataFrame:
    """Each of ``models`` against each reference model, per optimizer, on their shared points:
    best errors (bootstrap CI of the difference), paired per-point differences (Wilcoxon), and
    robustness (fraction within 4 points of best; KS on Δ). Differences are model − reference:
    negative is lower error for your model."""
    pm = summary.point_means(df).dropna(subset=["error"])
    noise = verdict.near_chance(pm)
    rows = []
    for m in models:
        for r in ref_models:
            for opt in sorted(set(pm["optimizer"])):
                a, b = verdict.point_errors(pm, m, opt), verdict.point_errors(pm, r, opt)
                shared = a.index.intersection(b.index)
                if shared.empty:
                    continue
                a, b = a.loc[shared], b.loc[shared]
                best = stats.gap(b, a, seed=seed)  # min(a) - min(b)
                t = stats.paired(b, a)  # differences a - b
                ks, wa, wb, more_robust = verdict.robustness(a, b)
                near_chance = (m, opt) in noise or (r, opt) in noise
                rows.append(dict(model=m, reference=r, optimizer=opt, points=len(shared), best=float(a.min()),
                                 best_ref=float(b.min()), best_diff=best.value, best_lo=best.lo, best_hi=best.hi,
                                 median_diff=t.median_diff, lower_at=f"{int((a < b).sum())}/{len(shared)}",
                                 wilcoxon_p=t.pvalue, within_4=wa, within_4_ref=wb, ks_delta=ks.statistic,
                                 ks_delta_p=ks.pvalue,
                                 error="inconclusive (near chance)" if near_chance else
                                 _word(t.pvalue, -t.median_diff, "lower", "higher"),
                                 robustness="inconclusive (near chance)" if near_chance else
                                 _word(ks.pvalue, more_robust, "more robust", "less robust")))  # fmt: skip
    return pd.DataFrame(rows, columns=COMPARE_COLS)


def lines(table: pd.DataFrame) -> list[str]:
    """The comparison in plain words, one line per row."""
    out = []
    for r in table.to_dict("records"):
        out.append(f"{r['model']} vs {r['reference']} ({r['optimizer']}, {r['points']} paired points): error at the "
                   f"same draws {r['error']} (median {r['model']} − {r['reference']} {r['median_diff']:+.1f} points, "
                   f"lower at {r['lower_at']}, Wilcoxon p = {r['wilcoxon_p']:.3g}); best {r['best']:.1f}% vs "
                   f"{r['best_ref']:.1f}% ({r['best_diff']:+.1f} [{r['best_lo']:+.1f}, {r['best_hi']:+.1f}]); "
                   f"robustness {r['robustness']} (within 4 points of best: {r['within_4']:.2f} vs "
                   f"{r['within_4_ref']:.2f}, KS on Δ p = {r['ks_delta_p']:.3g}).")
    return out
