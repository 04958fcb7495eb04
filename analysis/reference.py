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

from . import claims, stats, summary
from bench.core import layout
from bench.core.errors import UserError

REFERENCE_DIR = layout.REFERENCES  # the runner writes references (and calibrations) where they are read
TABLE = "trials.csv"
COMPARE_COLS = ["model", "reference", "optimizer", "points", "best", "best_ref", "best_diff", "best_lo", "best_hi",
                "median_diff", "lower_at", "p_lower", "p_higher", "within_4", "within_4_ref", "ks_above", "ks_below",
                "p_more_robust", "p_less_robust", "error", "robustness"]  # fmt: skip


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


def _word(p_more: float, p_less: float, alpha: float, more: str, less: str) -> str:
    if p_more < alpha:
        return more
    return less if p_less < alpha else "no significant difference"


def compare(df: pd.DataFrame, models, ref_models, seed: int = 0, alpha: float = claims.ALPHA) -> pd.DataFrame:
    """Each of ``models`` against each reference model, per optimizer, on their shared points: the
    expected best of k (jackknife interval of the difference), paired per-point differences (signed
    rank) and robustness (one-sided KS on Δ), each two one-sided tests at ``alpha``. Differences
    are model − reference: negative is lower error for your model."""
    pm = summary.point_means(df).dropna(subset=["error"])
    noise = claims.near_chance(pm)
    chance = float(pm["chance"].max()) if len(pm) else np.inf
    rows = []
    for m in models:
        for r in ref_models:
            for opt in sorted(set(pm["optimizer"])):
                sa, sb = claims.point_errors(pm, m, opt), claims.point_errors(pm, r, opt)
                if sa.index.intersection(sb.index).empty:
                    continue
                a, b = claims.aligned(sa, sb)
                best = stats.best_contrast([a, b], (1, -1))  # E_k(a) - E_k(b)
                t = stats.signed_rank(b, a, seed=seed)  # differences a - b
                ks = stats.ks_delta(a, b, chance, seed=seed)  # a's Δ-EDF above b's: a more robust
                near_chance = (m, opt) in noise or (r, opt) in noise
                rows.append(dict(model=m, reference=r, optimizer=opt, points=a.size, best=float(a.min()),
                                 best_ref=float(b.min()), best_diff=best.value, best_lo=best.lo, best_hi=best.hi,
                                 median_diff=t.median_diff, lower_at=f"{int(np.sum(b - a > stats.EPS))}/{a.size}",
                                 p_lower=t.p_neg, p_higher=t.p_pos, within_4=stats.within(a, a.min(), 4),
                                 within_4_ref=stats.within(b, b.min(), 4), ks_above=ks.d_a, ks_below=ks.d_b,
                                 p_more_robust=ks.p_a, p_less_robust=ks.p_b,
                                 error="inconclusive (near chance)" if near_chance else
                                 _word(t.p_neg, t.p_pos, alpha, "lower", "higher"),
                                 robustness="inconclusive (near chance)" if near_chance else
                                 _word(ks.p_a, ks.p_b, alpha, "more robust", "less robust")))  # fmt: skip
    return pd.DataFrame(rows, columns=COMPARE_COLS)


def lines(table: pd.DataFrame) -> list[str]:
    """The comparison in plain words, one line per row."""
    out = []
    for r in table.to_dict("records"):
        best = claims.iv(stats.Interval(r["best_diff"], r["best_lo"], r["best_hi"]))
        out.append(f"{r['model']} vs {r['reference']} ({r['optimizer']}, {r['points']} paired points): error at the "
                   f"same draws {r['error']} (median {r['model']} − {r['reference']} {r['median_diff']:+.1f} points, "
                   f"lower at {r['lower_at']}, one-sided signed-rank p = {r['p_lower']:.3g} lower, {r['p_higher']:.3g} "
                   f"higher); lowest {r['best']:.1f}% vs {r['best_ref']:.1f}%, expected best of {stats.BEST_OF} "
                   f"difference {best}; robustness {r['robustness']} (within 4 points of best: {r['within_4']:.2f} vs "
                   f"{r['within_4_ref']:.2f}; Δ-EDF above by {r['ks_above']:.2f}, below by {r['ks_below']:.2f}, "
                   f"one-sided KS p = {r['p_more_robust']:.3g} more robust, {r['p_less_robust']:.3g} less).")
    return out
