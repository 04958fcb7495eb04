"""Findings: what a study says about the paper's claims (analysis.claims), in numbers and in plain
words, rendered for every reader: the report's first section, ``bench verdict`` (text and JSON) and
the verdict blocks of the reference READMEs, all from one object (``findings``)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict

import numpy as np
import pandas as pd

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


def findings(df: pd.DataFrame, design: Design | None = None, seed: int = 0, power: bool = True) -> dict:
    """Everything the Findings section says: whether the runs can separate models, the groups
    table, the claims with verdicts, and plain-words lines."""
    design = design or Design()
    pm = summary.point_means(df).dropna(subset=["error"])
    if pm.empty:
        return dict(design=design, noise=["no finished runs"], groups=pd.DataFrame(), cells=pd.DataFrame(), claims=[],
                    lines=["No finished runs: nothing to judge."])
    searched = pm[pm.groupby(["model", "optimizer"])["point"].transform("nunique") > 1]
    noise = claims.separable(searched)
    cl = claims.search_claims(searched, design, seed, power) + tuned.claims(df, design)
    lines = []
    if noise:
        lines.append("This study cannot separate the models: its runs end too close to chance for their "
                     "differences to mean anything. " + "; ".join(noise) + ". Train longer, on more data, "
                     "or at better learning rates (bench calibrate) before reading the tests below.")
    if not cl:
        lines.append("No ViTp/ViTc pair of the same size is in this study, so the paper's claims are not tested "
                     "here; the tables below still compare every model.")
    for c in cl:
        line = f"{c.verdict.upper()}: {c.statement} [{c.pair}, {c.optimizer}]. {c.evidence}."
        if c.power is not None:
            need = (f"{c.n_needed} points per arm would give 80%" if c.n_needed else
                    "even 512 points per arm would not give 80%")
            line += (f" Power at {c.n} points: {c.power:.2f} (resampling the observed points, effect in "
                     f"{c.detail.get('direction', 'the observed')} direction); {need}" + (f" ({c.cost})" if c.cost else "") + ".")
        lines.append(line)
    tuned_only = pm.groupby(["model", "optimizer"])["point"].nunique().max() <= 1
    return dict(design=design, noise=noise, groups=pd.DataFrame() if tuned_only else groups_table(pm),
                cells=tuned.cell_table(df) if tuned_only else pd.DataFrame(), claims=cl, lines=lines)


def claims_frame(f: dict) -> pd.DataFrame:
    """The claims as a table (one row each)."""
    cols = ["claim", "pair", "optimizer", "verdict", "statistic", "p", "p_other", "n", "power", "n_needed",
            "cost", "evidence", "statement"]
    return pd.DataFrame([{k: getattr(c, k) for k in cols} for c in f["claims"]], columns=cols)


def to_json(f: dict) -> dict:
    """The Findings as one JSON-able object (``bench verdict --json``): ``groups`` (best_ci omitted:
    NO_BEST_CI) and ``claims``."""
    def clean(v):
        if isinstance(v, float | np.floating):
            return None if not math.isfinite(v) else float(v)
        if isinstance(v, np.integer):
            return int(v)
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
    claims = []
    for c in f["claims"]:
        d = {k: v for k, v in asdict(c).items() if k != "detail"}
        d.update(c.detail)
        if c.verdict != "inconclusive":
            for k in ("power", "n_needed", "cost"):
                d.pop(k)
        claims.append(d)
    design = f["design"]
    return clean(dict(alpha=design.alpha, alpha_per_test=design.per_look, looks=list(design.looks),
                      rule=design.describe(), noise=f["noise"], groups=groups, cells=f["cells"].to_dict("records"),
                      claims=claims, lines=f["lines"]))


def dumps(f: dict) -> str:
    return json.dumps(to_json(f), indent=1, ensure_ascii=False)


def markdown(f: dict) -> str:
    """The verdict as markdown tables (results/reference/*/README.md)."""
    out = [f"Tests: {f['design'].describe()}.", ""]
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
    if f["claims"]:
        out += ["| claim | pair | optimizer | evidence | verdict | power now | points for 80% power |",
                "|---|---|---|---|---|---|---|"]
        for c in f["claims"]:
            pw = "" if c.power is None else f"{c.power:.2f}"
            need = "" if c.power is None else (str(c.n_needed) if c.n_needed else "> 512")
            out.append(f"| {c.statement} | {c.pair} | {c.optimizer} | {c.evidence} | **{c.verdict}** | {pw} | {need} |")
    return "\n".join(out) + "\n"


def _cell(r: dict) -> str:
    return claims.iv(stats.Interval(r["error"], r["lo"], r["hi"]), "", none="one seed: no interval")


def text(f: dict) -> str:
    """The Findings as plain text (``bench verdict``)."""
    out = [f"Tests: {f['design'].describe()}."]
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
    out.append("")
    out += f["lines"]
    return "\n".join(out)


# ---- the reference READMEs

BLOCK = re.compile(r"(<!-- verdict ?(\w*) -->\n)(.*?)(<!-- /verdict -->)", re.S)


def table_design(table) -> Design | None:
    """The design of a committed table: ``design.json`` beside ``trials.csv`` (a grown study's)."""
    from pathlib import Path

    table = Path(table)
    return Design.read(table.parent / "design.json") if table.name == "trials.csv" else None


def readme(text: str, folder) -> str:
    """``text`` (a README) with every block ``<!-- verdict NAME -->`` ... ``<!-- /verdict -->`` filled
    with the markdown Findings of ``NAME.csv`` in ``folder`` (no NAME: ``trials.csv``)."""
    from pathlib import Path

    from .load import load_trials

    def fill(m):
        table = Path(folder) / f"{m.group(2) or 'trials'}.csv"
        return m.group(1) + markdown(findings(load_trials(table), design=table_design(table))) + m.group(4)

    return BLOCK.sub(fill, text)
