"""Findings: what a study says about the paper's claims (analysis.claims), in numbers and in plain
words, rendered for every reader: the report's first section, ``bench verdict`` (text and JSON) and
the verdict blocks of the reference READMEs, all from one object (``findings``)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd

from bench.core import layout

from . import claims, stats, summary, tuned
from .claims import Claim, Design  # noqa: F401 (the Findings' parts)

WITHIN = (2, 4, 8)
NO_BEST_CI = "a sample minimum has no valid interval (its bootstrap is degenerate)"


def groups_table(pm: pd.DataFrame) -> pd.DataFrame:
    """Per model and optimizer: points, best (no interval: NO_BEST_CI), the expected best of k with
    its interval, and the fraction within 2/4/8 points of best with exact binomial intervals."""
    rows = []
    for (model, opt), g in pm.groupby(["model", "optimizer"], sort=True):
        e = g["error"].to_numpy(float)
        eb = stats.best_contrast([e], [1])
        row = dict(model=model, optimizer=opt, points=len(g), best=float(np.nanmin(e)),
                   best_of_k=eb.value, best_of_k_lo=eb.lo, best_of_k_hi=eb.hi, median=float(np.nanmedian(e)),
                   diverged=int(round(g["diverged"].sum())), seconds=float(g["seconds"].mean()))
        for k in WITHIN:
            iv = stats.within_ci(e, k)
            row.update({f"within_{k}": iv.value, f"within_{k}_lo": iv.lo, f"within_{k}_hi": iv.hi})
        rows.append(row)
    return pd.DataFrame(rows)


# ---- the Findings


def judged(df: pd.DataFrame, design: Design, seed: int = 0, power: bool = True) -> tuple[pd.DataFrame, list[Claim]]:
    """(the seed-averaged search points at the recorded look, every claim of the study decided
    together): the search claims on them, the tuned-point claims on the confirm reruns and cells."""
    search, confirm = claims.search_runs(df, design)
    pm = summary.point_means(search).dropna(subset=["error"])
    if pm.empty:
        return pm, []
    searched = pm[pm.groupby(["model", "optimizer"])["point"].transform("nunique") > 1]
    cl = claims.search_claims(searched, design, confirm, seed) + tuned.claims(search, design)
    return pm, claims.judge(cl, design.per_look, power)


def findings(df: pd.DataFrame, design: Design | None = None, seed: int = 0, power: bool = True) -> dict:
    """Everything the Findings section says: whether the runs can separate models, the groups
    table (search runs at the recorded look), the claims decided together, the confirmed best (the
    ``--confirm`` reruns), the learning curves of a tuned study, and plain-words lines."""
    design = design or Design()
    pm, cl = judged(df, design, seed, power)
    if pm.empty:
        return dict(design=design, noise=["no finished runs"], groups=pd.DataFrame(), cells=pd.DataFrame(), claims=[],
                    confirmed=pd.DataFrame(), curves=pd.DataFrame(), lines=["No finished runs: nothing to judge."])
    search, confirm = claims.search_runs(df, design)
    noise = claims.separable(pm[pm.groupby(["model", "optimizer"])["point"].transform("nunique") > 1])
    lines = []
    if noise:
        lines.append("This study cannot separate the models: its runs end too close to chance for their "
                     "differences to mean anything. " + "; ".join(noise) + ". Train longer, on more data, "
                     "or at better learning rates (bench calibrate) before reading the tests below.")
    if not cl:
        pairs = claims.pairs(pm["model"].unique())
        lines.append(f"The ViTp/ViTc pair{'s' * (len(pairs) > 1)} {', '.join(' and '.join(q) for q in pairs)} "
                     "hold one point per model and optimizer: a search claim needs two or more paired points, so "
                     "the paper's claims are not tested here; the tables below still compare every model."
                     if pairs else "No ViTp/ViTc pair of the same size is in this study, so the paper's claims are "
                     "not tested here; the tables below still compare every model.")
    family = int(sum(claims._in_family(c, design.per_look) for c in cl))
    lines += [_line(c, family, design.per_look) for c in cl]
    tuned_only = pm.groupby(["model", "optimizer"])["point"].nunique().max() <= 1
    c = summary.tuned_cells(search)
    curves = tuned.learning_curves(c) if len(c) and c["epochs"].nunique() >= 3 else pd.DataFrame()
    return dict(design=design, noise=noise, groups=pd.DataFrame() if tuned_only else groups_table(pm),
                cells=tuned.cell_table(search) if tuned_only else pd.DataFrame(), claims=cl,
                confirmed=claims.confirmed_table(summary.point_means(df.drop(confirm.index)), confirm), curves=curves,
                lines=lines)


def _line(c: Claim, family: int, alpha: float) -> str:
    """One claim in plain words: verdict, statement, evidence, how it was decided, what would decide it."""
    line = f"{c.verdict.upper()}: {c.statement} [{c.pair}, {c.optimizer}]. {c.evidence}."
    if np.isfinite(c.p_adjusted):
        line += (f" Holm over the study's {family} decidable claim{'s' * (family != 1)}: adjusted p = "
                 f"{claims.fmt_p(c.p_adjusted)} (α = {alpha:g}).")
    if c.verdict == claims.UNDECIDABLE:
        line += (f" The smallest p-value this test can give at n = {c.n} is {claims.fmt_p(c.p_min)}, not below "
                 f"α = {alpha:g}: no outcome could decide it.")
    if c.verdict == claims.MIXED:
        d = c.detail
        line += (f" The EDFs cross: both one-sided tests are significant (D = {d['d_paper']:.2f} at Δ = "
                 f"{d['at_paper']:.1f}, D = {d['d_other']:.2f} at Δ = {d['at_other']:.1f}).")
    if c.without is not None and c.without.verdict != c.verdict:
        w = c.without
        line += (f" Without the rules fixed before the run: {w.verdict} (n = {w.n}, {claims.p_is(w.p, w.p_min, w.exact)}"
                 f" the paper's direction, {claims.p_is(w.p_other, w.p_min, w.exact)} the other).")
    if c.power is not None:
        need = (f"{c.n_needed} would give 80%" if c.n_needed else "even the largest size tried would not give 80%")
        line += (f" Power at n = {c.n}: {c.power:.2f} (resampling the observed data, effect in "
                 f"{c.detail.get('direction', 'the observed')} direction, at Holm's strictest level α/{family}); {need}"
                 + (f" ({c.cost})" if c.cost else "") + ".")
    return line


COLUMNS = ["claim", "pair", "optimizer", "verdict", "statistic", "p", "p_other", "p_adjusted", "p_min", "without",
           "n", "power", "n_needed", "cost", "evidence", "statement"]


def claims_frame(f: dict) -> pd.DataFrame:
    """The claims as a table (one row each; ``without``: the verdict without the rules)."""
    rows = [{k: (c.without.verdict if c.without is not None else c.verdict) if k == "without" else getattr(c, k)
             for k in COLUMNS} for c in f["claims"]]
    return pd.DataFrame(rows, columns=COLUMNS)


def to_json(f: dict) -> dict:
    """The Findings as one JSON-able object (``bench verdict --json``): ``groups`` (best_ci omitted:
    NO_BEST_CI), ``claims`` (each with the verdict without the rules), ``confirmed`` and ``curves``."""
    def clean(v):
        if isinstance(v, float | np.floating):
            return None if not math.isfinite(v) else float(v)
        if isinstance(v, np.integer | np.bool_):
            return v.item()
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    groups = []
    for r in f["groups"].to_dict("records"):
        g = dict(model=r["model"], optimizer=r["optimizer"], n=r["points"], best=r["best"], best_ci_omitted=NO_BEST_CI,
                 **{f"best_of_{stats.BEST_OF}": r["best_of_k"],
                    f"best_of_{stats.BEST_OF}_ci": [r["best_of_k_lo"], r["best_of_k_hi"]]},
                 within={str(k): dict(value=r[f"within_{k}"], ci=[r[f"within_{k}_lo"], r[f"within_{k}_hi"]])
                         for k in WITHIN}, diverged=r["diverged"])
        groups.append(g)
    out = []
    for c in f["claims"]:
        d = {k: getattr(c, k) for k in ("claim", "pair", "optimizer", "verdict", "statistic", "p", "p_other", "p_adjusted",
                                        "p_min", "exact", "n", "statement", "evidence", "blocked")}
        d["interval"] = list(c.interval) if c.interval is not None else None
        w = c.without
        d["without_rules"] = None if w is None else dict(verdict=w.verdict, n=w.n, p=w.p, p_other=w.p_other,
                                                         p_adjusted=w.p_adjusted, p_min=w.p_min)
        if c.power is not None:
            d.update(power=c.power, n_needed=c.n_needed, cost=c.cost)
        d.update(c.detail)
        out.append(d)
    design = f["design"]
    return clean(dict(alpha=design.alpha, alpha_per_test=design.per_look, looks=list(design.looks),
                      recorded_look=design.recorded, rule=design.describe(), exclusion_rules=list(design.rules),
                      noise=f["noise"], groups=groups, cells=f["cells"].to_dict("records"), claims=out,
                      confirmed=f["confirmed"].to_dict("records"), curves=f["curves"].to_dict("records"),
                      lines=f["lines"]))


def dumps(f: dict) -> str:
    return json.dumps(to_json(f), indent=1, ensure_ascii=False)


def _rules(f: dict) -> list[str]:
    return [f"Tests: {f['design'].describe()}. Rules fixed before the run: " + "; ".join(f["design"].rules) + "."]


def markdown(f: dict) -> str:
    """The verdict as markdown tables (results/reference/*/README.md)."""
    out = _rules(f) + [""]
    g = f["groups"]
    if len(g):
        out += ["| model | optimizer | points | best | expected best of "
                f"{stats.BEST_OF} [95% CI] | " + " | ".join(f"within {k} [95% CI]" for k in WITHIN) + " |",
                "|---|---|---|---|---|" + "---|" * len(WITHIN)]
        for r in g.to_dict("records"):
            cells = [f"{r[f'within_{k}']:.2f} [{r[f'within_{k}_lo']:.2f}, {r[f'within_{k}_hi']:.2f}]" for k in WITHIN]
            out.append(f"| {r['model']} | {r['optimizer']} | {r['points']} | {r['best']:.1f} | "
                       f"{claims.iv(stats.Interval(r['best_of_k'], r['best_of_k_lo'], r['best_of_k_hi']), '')} | "
                       + " | ".join(cells) + " |")
        out.append("")
    if len(f["cells"]):
        out += ["| model | optimizer | epochs | seeds | error, seed mean [95% t CI] |", "|---|---|---|---|---|"]
        for r in f["cells"].to_dict("records"):
            out.append(f"| {r['model']} | {r['optimizer']} | {r['epochs']} | {r['seeds']} | {_cell(r)} |")
        out.append("")
    if len(f["curves"]):
        out += [f"| model | optimizer | budgets | fitted e∞ | epochs to within {tuned.CONVERGED_WITHIN:g} point of e∞ "
                "[95% CI, resampling seeds] |", "|---|---|---|---|---|"]
        out += [f"| {r['model']} | {r['optimizer']} | {r['epochs']} | {_curve(r)} |" for r in f["curves"].to_dict("records")]
        out.append("")
    if f["claims"]:
        out += ["| claim | pair | optimizer | evidence | p (raw) | p (Holm) | verdict | without the rules | power now | "
                "what would decide it |", "|---|---|---|---|---|---|---|---|---|---|"]
        for c in f["claims"]:
            pw = "" if c.power is None else f"{c.power:.2f}"
            w = c.without.verdict if c.without is not None else ""
            out.append(f"| {c.statement} | {c.pair} | {c.optimizer} | {c.evidence} | {_p(c)} | "
                       f"{claims.fmt_p(c.p_adjusted) if np.isfinite(c.p_adjusted) else ''} | **{c.verdict}** | {w} | "
                       f"{pw} | {_need(c)} |")
        out.append("")
    if len(f["confirmed"]):
        out += ["Confirmed best (the `--confirm` reruns: not part of the search verdicts above):", "",
                "| model | optimizer | point | search error (1 seed) | fresh seeds | error, fresh-seed mean [95% t CI] | "
                "regression |", "|---|---|---|---|---|---|---|"]
        out += [f"| {r['model']} | {r['optimizer']} | {r['point']} | {r['search']:.1f} | {r['seeds']} | "
                f"{_cell(dict(error=r['fresh'], lo=r['lo'], hi=r['hi']))} | {r['regression']:+.1f} |"
                for r in f["confirmed"].to_dict("records")]
    return "\n".join(out).rstrip("\n") + "\n"


def _p(c: Claim) -> str:
    """'p / p_other' of a claim, or '' without a test."""
    if c.verdict == claims.DESCRIBED:
        return ""
    return f"{claims.fmt_p(c.p, c.p_min, c.exact)} / {claims.fmt_p(c.p_other, c.p_min, c.exact)}"


def _need(c: Claim) -> str:
    if c.power is None:
        return ""
    return (c.cost or str(c.n_needed)) if c.n_needed else "beyond the sizes tried"


def _curve(r: dict, sep: str = " | ") -> str:
    """'e∞ | epochs [lo, hi]' of a learning curve, or why it has none."""
    if not np.isfinite(r["e_inf"]):
        return f"not bending{sep}e∞ cannot be told from these budgets"
    return (f"e∞ {r['e_inf']:.1f}{sep}{r['within']:.1f} epochs [{r['lo']:.1f}, {r['hi']:.1f}] "
            f"({r['fits']:.0%} of {r['seeds']}-seed resamples bend)")


def _cell(r: dict) -> str:
    return claims.iv(stats.Interval(r["error"], r["lo"], r["hi"]), "", none="one seed: no interval")


def text(f: dict) -> str:
    """The Findings as plain text (``bench verdict``)."""
    out = _rules(f)
    g = f["groups"]
    if len(g):
        out.append("")
        out.append(f"{'model':<14} {'optimizer':<9} {'points':>6} {'best':>6} {'E[best of ' + str(stats.BEST_OF) + '] [95% CI]':>24} "
                   + " ".join(f"{'within ' + str(k):>19}" for k in WITHIN))
        for r in g.to_dict("records"):
            eb = claims.iv(stats.Interval(r["best_of_k"], r["best_of_k_lo"], r["best_of_k_hi"]), "")
            cells = " ".join(f"{r[f'within_{k}']:.2f} [{r[f'within_{k}_lo']:.2f}, {r[f'within_{k}_hi']:.2f}]".rjust(19)
                             for k in WITHIN)
            out.append(f"{r['model']:<14} {r['optimizer']:<9} {r['points']:>6} {r['best']:>6.1f} {eb:>24} {cells}")
        out.append(f"(best: the lowest run, without an interval: {NO_BEST_CI})")
    if len(f["cells"]):
        out += ["", f"{'model':<14} {'optimizer':<9} {'epochs':>6} {'seeds':>5}  error, seed mean [95% t CI]"]
        out += [f"{r['model']:<14} {r['optimizer']:<9} {r['epochs']:>6} {r['seeds']:>5}  {_cell(r)}"
                for r in f["cells"].to_dict("records")]
    if len(f["curves"]):
        out += ["", f"learning curves e(t) = e∞ + a·t^-b at each model's better optimizer: epochs to within "
                    f"{tuned.CONVERGED_WITHIN:g} point of e∞ [95% CI, resampling seeds]"]
        out += [f"{r['model']:<14} {r['optimizer']:<9} {r['epochs']:>10}  " + _curve(r, " | ").replace(" | ", ", ")
                for r in f["curves"].to_dict("records")]
    if len(f["confirmed"]):
        out += ["", "confirmed best (fresh seeds at the search's best points; not in the search verdicts):"]
        out += [f"{r['model']:<14} {r['optimizer']:<9} point {r['point']:>4}: search {r['search']:.1f}, fresh "
                f"{_cell(dict(error=r['fresh'], lo=r['lo'], hi=r['hi']))} ({r['seeds']} seeds), {r['regression']:+.1f}"
                for r in f["confirmed"].to_dict("records")]
    out.append("")
    out += f["lines"]
    return "\n".join(out)


# ---- the reference READMEs

BLOCK = re.compile(r"(<!-- verdict ?(\w*) -->\n)(.*?)(<!-- /verdict -->)", re.S)


def table_design(table) -> Design | None:
    """The design of a committed table: ``design.json`` beside ``trials.csv`` (a grown study's)."""
    from pathlib import Path

    table = Path(table)
    return Design.read(table.parent / layout.DESIGN) if table.name == "trials.csv" else None


def readme(text: str, folder) -> str:
    """``text`` (a README) with every block ``<!-- verdict NAME -->`` ... ``<!-- /verdict -->`` filled
    with the markdown Findings of ``NAME.csv`` in ``folder`` (no NAME: ``trials.csv``)."""
    from pathlib import Path

    from .load import load_trials

    def fill(m):
        table = Path(folder) / f"{m.group(2) or 'trials'}.csv"
        return m.group(1) + markdown(findings(load_trials(table), design=table_design(table))) + m.group(4)

    return BLOCK.sub(fill, text)
