"""Findings: what a study says about the paper's claims, in numbers and in plain words.

The paper (Xiao et al. 2021) claims, for a ViT with a patchify stem (ViTp) against the same ViT
with a convolutional stem (ViTc), over random (lr, wd) draws:

* robust: more of ViTc's runs lie near its best (the Δ-EDF of ViTc lies above ViTp's);
* better: ViTc's error is lower than ViTp's at the same draws, and its best error is lower;
* optimizer: ViTp trains worse with SGD than with AdamW (its SGD − AdamW gap of the best errors
  is positive), and that gap is larger for ViTp than for ViTc.

Each claim gets one verdict per optimizer (or one overall), by a fixed rule at ``ALPHA``:
*reproduced* when its test is significant in the paper's direction, *not reproduced* when it is
significant in the opposite direction, *inconclusive* otherwise — and *inconclusive* whenever a
group's best run does not reach half the chance error, because then the runs measure noise.
Δ is taken against the group's lowest error (the paper's); seed replicates of a point are
averaged first. The same table opens the report and ``results/reference/*/README.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import stats, summary

ALPHA = 0.05
WITHIN = (2, 4, 8)
CLAIMS = {
    "robust": "ViTc is more robust to (lr, wd) than ViTp: more of its runs lie near its best (Δ-EDF above; KS on Δ)",
    "better": "ViTc's error is lower than ViTp's at the same (lr, wd) draws (paired Wilcoxon)",
    "best": "ViTc's best error is lower than ViTp's (bootstrap CI of the difference)",
    "sgd": "ViTp trains worse with SGD than with AdamW: its SGD − AdamW gap of best errors is "
           "positive (bootstrap CI)",
    "gap": "ViTp's SGD − AdamW gap is larger than ViTc's (bootstrap CI of the difference)",
}  # fmt: skip


def pairs(models) -> list[tuple[str, str]]:
    """(ViTp, ViTc) model pairs of the same size present in ``models`` (vitp_X with vitc_X)."""
    models = set(models)
    return [(m, "vitc" + m[4:]) for m in sorted(models) if m.startswith("vitp") and "vitc" + m[4:] in models]


def point_errors(pm: pd.DataFrame, model: str, optimizer: str) -> pd.Series:
    """A group's per-point (seed-averaged) errors, indexed by point where every row has one."""
    g = pm[pm["model"].eq(model) & pm["optimizer"].eq(optimizer)]
    return g.set_index("point")["error"] if g["point"].notna().all() else g["error"].reset_index(drop=True)


def separable(pm: pd.DataFrame) -> list[str]:
    """Why the study cannot separate models (empty if it can): groups whose best run stays
    above half the chance error."""
    return [f"{model}/{opt}: best run {best:.1f}% error against chance {chance:.1f}% "
            f"(a good run must reach half of chance, {chance / 2:.1f}%)"
            for (model, opt), (best, chance) in near_chance(pm).items()]


def near_chance(pm: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float]]:
    """(model, optimizer) -> (best, chance) of the groups whose best run stays above half the chance error."""
    out = {}
    for (model, opt), g in pm.groupby(["model", "optimizer"], sort=True):
        best, chance = float(g["error"].min()), float(g["chance"].max())
        if not best <= chance / 2:
            out[(model, opt)] = (best, chance)
    return out


def within_table(pm: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per model and optimizer: runs, best, and the fraction within 2/4/8 points of best with 95% CIs."""
    rows = []
    for (model, opt), g in pm.groupby(["model", "optimizer"], sort=True):
        row = dict(model=model, optimizer=opt, points=len(g), best=float(g["error"].min()),
                   median=float(g["error"].median()))
        for p in WITHIN:
            iv = stats.within_ci(g["error"], p, seed=seed)
            row.update({f"within_{p}": iv.value, f"within_{p}_lo": iv.lo, f"within_{p}_hi": iv.hi})
        rows.append(row)
    return pd.DataFrame(rows)


def robustness(a: pd.Series, b: pd.Series) -> tuple[stats.Test, float, float, float]:
    """How much more robust errors ``a`` are than ``b``: KS on their Δ (error − own lowest), each one's
    fraction within 4 points of its lowest, and the direction (> 0: ``a`` more robust; by those
    fractions, a tie by the median Δ)."""
    da, db = a - a.min(), b - b.min()
    wa, wb = stats.within(a, a.min(), 4), stats.within(b, b.min(), 4)
    return stats.ks(da, db), wa, wb, float(np.sign((wa - wb) or (db.median() - da.median())))


def claims(pm: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per claim, ViTp/ViTc pair and optimizer: the numbers, the test and the verdict."""
    noise = separable(pm)
    rows = []
    opts = sorted(pm["optimizer"].unique())
    for p, c in pairs(pm["model"].unique()):
        for opt in opts:
            ep, ec = point_errors(pm, p, opt), point_errors(pm, c, opt)
            if ep.empty or ec.empty:
                continue
            ks, wc, wp, direction = robustness(ec, ep)
            rows.append(_row("robust", p, c, opt, ks.pvalue, direction, noise,
                             f"within 4 points of best: {c} {wc:.2f}, {p} {wp:.2f}; "
                             f"KS on Δ: D = {ks.statistic:.2f}, p = {ks.pvalue:.3g} (n = {len(ec)}, {len(ep)})",
                             D=ks.statistic))
            shared = ep.index.intersection(ec.index)
            t = stats.paired(ec.loc[shared], ep.loc[shared])  # differences ViTp - ViTc: > 0 favours ViTc
            wins = int((ep.loc[shared] > ec.loc[shared]).sum())
            rows.append(_row("better", p, c, opt, t.pvalue, np.sign(t.median_diff), noise,
                             f"{p} − {c} per point: median {t.median_diff:+.1f} points, {c} lower at {wins}/{t.n} "
                             f"points; Wilcoxon p = {t.pvalue:.3g}", median_diff=t.median_diff))
            b = stats.gap(ec, ep, seed=seed)  # min(ViTp) - min(ViTc)
            rows.append(_ci_row("best", p, c, opt, b, noise,
                                f"best {c} {ec.min():.1f}%, {p} {ep.min():.1f}%: {p} − {c} = {b.value:+.1f} "
                                f"[{b.lo:+.1f}, {b.hi:+.1f}]"))
        if {"adamw", "sgd"} <= set(opts):
            e = {(m, o): point_errors(pm, m, o) for m in (p, c) for o in ("adamw", "sgd")}
            gp, gc = (stats.gap(e[(m, "adamw")], e[(m, "sgd")], seed=seed) for m in (p, c))
            d = stats.gap_difference(e[(p, "adamw")], e[(p, "sgd")], e[(c, "adamw")], e[(c, "sgd")], seed=seed)
            rows.append(_ci_row("sgd", p, c, "sgd − adamw", gp, noise,
                                f"{p}: best SGD {e[(p, 'sgd')].min():.1f}% − best AdamW {e[(p, 'adamw')].min():.1f}% "
                                f"= {gp.value:+.1f} [{gp.lo:+.1f}, {gp.hi:+.1f}]"))
            rows.append(_ci_row("gap", p, c, "sgd − adamw", d, noise,
                                f"SGD − AdamW gap: {p} {gp.value:+.1f} [{gp.lo:+.1f}, {gp.hi:+.1f}], {c} {gc.value:+.1f} "
                                f"[{gc.lo:+.1f}, {gc.hi:+.1f}]; difference {d.value:+.1f} [{d.lo:+.1f}, {d.hi:+.1f}]"))
    return pd.DataFrame(rows, columns=["claim", "pair", "optimizer", "evidence", "verdict", "statement", "stat"])


def _row(claim, p, c, opt, pvalue, direction, noise, evidence, **stat) -> dict:
    if noise:
        verdict = "inconclusive"
    elif pvalue < ALPHA:
        verdict = "reproduced" if direction > 0 else "not reproduced"
    else:
        verdict = "inconclusive"
    return dict(claim=claim, pair=f"{p} vs {c}", optimizer=opt, evidence=evidence, verdict=verdict,
                statement=CLAIMS[claim], stat=stat)


def _ci_row(claim, p, c, opt, iv: stats.Interval, noise, evidence) -> dict:
    """A verdict from a CI of an effect whose positive sign is the paper's direction."""
    significant = iv.lo > 0 or iv.hi < 0
    return _row(claim, p, c, opt, 0.0 if significant else 1.0, np.sign(iv.value), noise, evidence)


def gaps(pm: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Per model: best AdamW and SGD errors and the SGD − AdamW gap with its 95% CI."""
    g = summary.optimizer_gap(pm, seed=seed)
    return g[["model", "best_a", "best_b", "gap", "lo", "hi"]].rename(columns={"best_a": "best_adamw", "best_b": "best_sgd"}) if len(g) else g


def findings(df: pd.DataFrame, seed: int = 0) -> dict:
    """Everything the Findings section says: whether the runs can separate models, the
    within-k table, the SGD − AdamW gaps, the claims with verdicts, and plain-words lines."""
    pm = summary.point_means(df).dropna(subset=["error"])
    if pm.empty:
        return dict(noise=["no finished runs"], within=pd.DataFrame(), gaps=pd.DataFrame(), claims=pd.DataFrame(),
                    lines=["No finished runs: nothing to judge."])
    noise, cl = separable(pm), claims(pm, seed)
    lines = []
    if noise:
        lines.append("This study cannot separate the models: its runs end too close to chance for their "
                     "differences to mean anything. " + "; ".join(noise) + ". Train longer, on more data, "
                     "or at better learning rates (bench calibrate) before reading the tests below.")
    if cl.empty:
        lines.append("No ViTp/ViTc pair of the same size is in this study, so the paper's claims are not tested "
                     "here; the tables below still compare every model.")
    for r in cl.itertuples():
        lines.append(f"{r.verdict.upper()}: {r.statement} [{r.pair}, {r.optimizer}]. {r.evidence}.")
    return dict(noise=noise, within=within_table(pm, seed), gaps=gaps(pm, seed), claims=cl, lines=lines)


def markdown(f: dict) -> str:
    """The verdict as markdown tables (results/reference/*/README.md)."""
    out = []
    w = f["within"]
    if len(w):
        out += ["| model | optimizer | points | best | " + " | ".join(f"within {p} [95% CI]" for p in WITHIN) + " |",
                "|---|---|---|---|" + "---|" * len(WITHIN)]
        for r in w.to_dict("records"):
            cells = [f"{r[f'within_{p}']:.2f} [{r[f'within_{p}_lo']:.2f}, {r[f'within_{p}_hi']:.2f}]" for p in WITHIN]
            out.append(f"| {r['model']} | {r['optimizer']} | {r['points']} | {r['best']:.1f} | " + " | ".join(cells) + " |")
        out.append("")
    g = f["gaps"]
    if len(g):
        out += ["| model | best AdamW | best SGD | SGD − AdamW [95% CI] |", "|---|---|---|---|"]
        out += [f"| {r['model']} | {r['best_adamw']:.1f} | {r['best_sgd']:.1f} | {r['gap']:+.1f} [{r['lo']:+.1f}, {r['hi']:+.1f}] |"
                for r in g.to_dict("records")]
        out.append("")
    c = f["claims"]
    if len(c):
        out += ["| claim | pair | optimizer | evidence | verdict |", "|---|---|---|---|---|"]
        out += [f"| {r['statement']} | {r['pair']} | {r['optimizer']} | {r['evidence']} | **{r['verdict']}** |"
                for r in c.to_dict("records")]
    return "\n".join(out) + "\n"
