"""The claims of studies of tuned points: training length and the optimizer gap across model sizes
(the paper's Figs. 2 and 3, the ``optimizer`` study) and the stem ablation (Table 3, ``stem``).

A *cell* is one (model, optimizer, epochs) at its tuned point, trained with several seeds. Every
claim pools its cells into one paired test (cells of two models or optimizers pair by size, budget
and training seed), two one-sided tests at alpha, by analysis.claims's rule; each cell's own mean
comes with a seed interval (Student t over seeds: with two seeds, wide). Cells whose mean error
does not reach half the chance error measure noise and are left out of a test (the evidence says
how many).

* converge: ViTc converges faster than ViTp: its error minus its longest-budget error is lower at
  the shorter budgets (each model at its better optimizer, the one with the lower mean error over
  every budget), paired over sizes, budgets and seeds (signed-rank);
* sgd: ViTp's SGD − AdamW gap is positive; gap: it is larger than ViTc's (paired by size, budget, seed);
* regnety: RegNetY's gap is near zero: an equivalence test (two one-sided t tests) of its mean gap
  against a margin of ``MARGIN`` points;
* trend: how each family's gap changes with model size: Kendall's tau of gap against size (the paper
  makes no directional claim: described, not judged);
* stem order: error rises from C through S1...S4 to P; stem sgd: SGD's penalty rises with it (Spearman
  rho against the stem's rank, one-sided permutation p-values).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st

from . import stats, summary
from .claims import Claim, Design, _verdict, iv

MARGIN = 1.0  # points: a gap "near zero" lies within this (the paper's RegNetY gap is 0.1-0.2, ViTp's 5.3)
STEM_RANK = {"": 0, "_s1": 1, "_s2": 2, "_s3": 3, "_s4": 4}  # C, S1..S4; P (ViTp) is 5
STATEMENTS = {
    "converge": "ViTc converges faster than ViTp: at the shorter budgets its error is nearer its longest-budget error",
    "sgd": "ViTp trains worse with SGD than with AdamW: its SGD − AdamW gap is positive",
    "gap": "ViTp's SGD − AdamW gap is larger than ViTc's",
    "regnety": f"RegNetY's SGD − AdamW gap is near zero (within ±{MARGIN:g} point)",
    "trend": "How the SGD − AdamW gap changes with model size",
    "stem order": "Error rises from the conv stem C through S1…S4 to the patchify stem P",
    "stem sgd": "SGD's penalty (SGD − AdamW) rises as the stem gets less convolutional",
}


def cells(df: pd.DataFrame) -> pd.DataFrame:
    """The finished runs of tuned groups (one point per model, optimizer and epochs), with the
    model's family (vitp, vitc, regnety), size and stem."""
    r = summary.results(df).dropna(subset=["error"])
    if r.empty:
        return r
    single = r.groupby(["model", "optimizer", "epochs"])["point"].transform("nunique") == 1
    r = r[single].copy()
    name = r["model"].astype(str)
    r["fam"] = name.str.split("_").str[0]
    r["size"] = name.str.split("_").str[1]
    r["stem"] = name.str.extract(r"(_s\d)$", expand=False).fillna("")
    return r


def _mean_iv(v) -> stats.Interval:
    """The mean of ``v`` with its 95% Student t interval (NaN below two values)."""
    v = np.asarray(v, float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return stats.Interval(float(v.mean()) if v.size else np.nan, np.nan, np.nan)
    h = st.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return stats.Interval(float(v.mean()), float(v.mean() - h), float(v.mean() + h))


def _cell_text(values: pd.Series, sign: str = "+") -> str:
    """'mean [lo, hi]' of one cell's seeds (sign '': a level, not a difference)."""
    return iv(_mean_iv(values), sign, none="one seed: no interval")


def _noisy(c: pd.DataFrame) -> set:
    """(model, optimizer, epochs) cells whose mean error stays above half the chance error."""
    m = c.groupby(["model", "optimizer", "epochs"]).agg(error=("error", "mean"), chance=("chance", "max"))
    return set(m.index[m["error"] > m["chance"] / 2])


def _near_chance(g: pd.DataFrame, noisy: set) -> np.ndarray:
    """Per gap row: is either optimizer's cell of its (model, epochs) near chance (``_noisy``)?"""
    return np.array([bool({(m, "sgd", e), (m, "adamw", e)} & noisy) for m, e in zip(g["model"], g["epochs"])], bool)


def gaps(c: pd.DataFrame) -> pd.DataFrame:
    """SGD − AdamW per model, epochs and seed (the seeds pair the optimizers), with flops, family, size."""
    w = c.pivot_table(index=["model", "fam", "size", "stem", "epochs", "seed"], columns="optimizer", values="error")
    if not {"adamw", "sgd"} <= set(w.columns):
        return pd.DataFrame()
    flops = c.groupby("model")["gflops"].max()
    out = (w["sgd"] - w["adamw"]).rename("gap").dropna().reset_index()
    return out.assign(gflops=out["model"].map(flops))


def convergence(c: pd.DataFrame) -> pd.DataFrame:
    """Per model, epochs and seed, at the model's better optimizer: error minus the same seed's
    error at the longest budget (paper Fig. 2)."""
    if c["epochs"].nunique() < 2:
        return pd.DataFrame()
    better = c.groupby(["model", "optimizer"])["error"].mean().reset_index()
    better = better.loc[better.groupby("model")["error"].idxmin(), ["model", "optimizer"]]
    b = c.merge(better, on=["model", "optimizer"])
    longest = b.groupby("model")["epochs"].transform("max")
    ref = b[b["epochs"].eq(longest)][["model", "seed", "error"]].rename(columns={"error": "error_longest"})
    out = b.merge(ref, on=["model", "seed"])
    return out.assign(delta=out["error"] - out["error_longest"], longest=out["model"].map(b.groupby("model")["epochs"].max()))


def _with_iv(frame: pd.DataFrame, keys, value: str) -> pd.DataFrame:
    """Per ``keys``: the mean of ``value`` over seeds with its 95% t interval (lo, hi)."""
    rows = []
    for k, g in frame.groupby(keys, sort=False):
        m = _mean_iv(g[value])
        rows.append({**dict(zip(keys, k)), value: m.value, "lo": m.lo, "hi": m.hi, "seeds": len(g)})
    return pd.DataFrame(rows)


def gap_table(df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3's points: SGD − AdamW per model and budget (seed mean, 95% interval), with gflops and
    ``near chance`` (the cell is left out of the gap tests)."""
    c = cells(df)
    g = gaps(c[c["stem"].eq("")]) if len(c) else pd.DataFrame()
    if g.empty:
        return g
    t = _with_iv(g, ["model", "fam", "size", "epochs"], "gap")
    flops = g.groupby("model")["gflops"].max()
    return t.assign(gflops=t["model"].map(flops), family=t["fam"], **{"near chance": _near_chance(t, _noisy(c))})


def convergence_table(df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 2's points: error − longest-budget error per model and budget at the model's better
    optimizer (seed mean, 95% interval), with its size and gflops."""
    c = cells(df)
    conv = convergence(c[c["stem"].eq("")]) if len(c) else pd.DataFrame()
    if conv.empty:
        return conv
    t = _with_iv(conv, ["model", "fam", "size", "optimizer", "epochs"], "delta")
    return t.assign(gflops=t["model"].map(conv.groupby("model")["gflops"].max()))


def cell_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per model, optimizer and epochs of a tuned study: the error's seed mean with its 95% t interval."""
    c = cells(df)
    if c.empty:
        return pd.DataFrame()
    return _with_iv(c.sort_values(["model", "optimizer", "epochs"]), ["model", "optimizer", "epochs"], "error")


def stem_table(df: pd.DataFrame) -> pd.DataFrame:
    """Table 3: per stem and optimizer, the error's seed mean and 95% interval, ordered C, S1..S4, P."""
    c = cells(df)
    if c.empty or not c["stem"].ne("").any():
        return pd.DataFrame()
    size = c.loc[c["stem"].ne(""), "size"].iloc[0]
    s = c[c["size"].eq(size) & c["fam"].isin(["vitc", "vitp"])].copy()
    s["rank"] = np.where(s["fam"].eq("vitp"), 5, s["stem"].map(STEM_RANK))
    t = _with_iv(s.sort_values("rank"), ["model", "optimizer"], "error")
    return t


def claims(df: pd.DataFrame, design: Design) -> list[Claim]:
    """Every tuned-point claim the study's cells support."""
    c = cells(df)
    if c.empty:
        return []
    alpha, out = design.per_look, []
    out += _schedule(c, alpha)
    out += _stems(c, alpha)
    return out


def _claim(kind, pair, optimizer, stat, p, q, evidence, n, alpha, noise=False, verdict=None) -> Claim:
    return Claim(kind, pair, optimizer, verdict or _verdict(p, q, alpha, noise), float(stat), float(p), float(q),
                 evidence, int(n), STATEMENTS[kind])


def _sizes(c: pd.DataFrame) -> list[str]:
    """Sizes that have both a ViTp and a ViTc (plain stems), smallest first."""
    s = c[c["stem"].eq("")]
    both = set(s.loc[s["fam"].eq("vitp"), "size"]) & set(s.loc[s["fam"].eq("vitc"), "size"])
    flops = s[s["size"].isin(both)].groupby("size")["gflops"].max()
    return list(flops.sort_values().index)


def _schedule(c: pd.DataFrame, alpha: float) -> list[Claim]:
    out, noisy = [], _noisy(c)
    sizes = _sizes(c)
    plain = c[c["stem"].eq("")]
    conv = convergence(plain)
    if len(conv) and sizes:
        short = conv[conv["epochs"] < conv["longest"]]
        p_, c_ = (short[short["fam"].eq(f)].set_index(["size", "epochs", "seed"])["delta"] for f in ("vitp", "vitc"))
        both = pd.concat([p_.rename("p"), c_.rename("c")], axis=1, join="inner")
        both = both[both.index.get_level_values("size").isin(sizes)]
        if len(both):
            t = stats.signed_rank(both["c"], both["p"])  # differences ViTp - ViTc: > 0 favours ViTc
            per = "; ".join(f"{size} @ {ep} epochs: ViTp {_cell_text(g['p'])}, ViTc {_cell_text(g['c'])}"
                            for (size, ep), g in both.groupby(level=["size", "epochs"]))
            out.append(_claim("converge", "vitp vs vitc", "better optimizer", t.median_diff, t.p_pos, t.p_neg,
                              f"error − longest-budget error (points) {per}; ViTp − ViTc paired over {len(both)} "
                              f"size × budget × seed cells: median {t.median_diff:+.2f}, signed-rank p = "
                              f"{t.p_pos:.3g} (the paper's direction), {t.p_neg:.3g} (the other)", len(both), alpha))
    g = gaps(plain)
    if g.empty:
        return out
    keep = g[~_near_chance(g, noisy)]
    dropped = len(g) - len(keep)
    note = f" ({dropped} cell(s) near chance left out)" if dropped else ""
    by = {f: keep[keep["fam"].eq(f)].set_index(["size", "epochs", "seed"])["gap"] for f in ("vitp", "vitc", "regnety")}
    if len(by["vitp"]):
        t = stats.signed_rank(np.zeros(len(by["vitp"])), by["vitp"].to_numpy())
        per = "; ".join(f"{size} @ {ep}: {_cell_text(v)}" for (size, ep), v in by["vitp"].groupby(level=["size", "epochs"]))
        out.append(_claim("sgd", "vitp", "sgd − adamw", t.median_diff, t.p_pos, t.p_neg,
                          f"ViTp SGD − AdamW (points) per size @ epochs {per}; over {t.n} cells{note}: median "
                          f"{t.median_diff:+.2f}, signed-rank p = {t.p_pos:.3g} (the paper's direction), "
                          f"{t.p_neg:.3g} (the other)", t.n, alpha))
    both = pd.concat([by["vitp"].rename("p"), by["vitc"].rename("c")], axis=1, join="inner")
    if len(both):
        t = stats.signed_rank(both["c"], both["p"])  # ViTp's gap - ViTc's
        per = "; ".join(f"{size} @ {ep}: ViTp {_cell_text(x['p'])}, ViTc {_cell_text(x['c'])}"
                        for (size, ep), x in both.groupby(level=["size", "epochs"]))
        out.append(_claim("gap", "vitp vs vitc", "sgd − adamw", t.median_diff, t.p_pos, t.p_neg,
                          f"SGD − AdamW per size @ epochs {per}; ViTp − ViTc paired over {len(both)} cells{note}: "
                          f"median {t.median_diff:+.2f}, signed-rank p = {t.p_pos:.3g} (the paper's direction), "
                          f"{t.p_neg:.3g} (the other)", len(both), alpha))
    r = by["regnety"].to_numpy()
    if r.size >= 2:
        mean, se, df_ = r.mean(), r.std(ddof=1) / np.sqrt(r.size), r.size - 1
        p_in = max(st.t.sf((mean + MARGIN) / se, df_), st.t.cdf((mean - MARGIN) / se, df_)) if se > 0 else float(abs(mean) >= MARGIN)
        p_out = st.t.sf((abs(mean) - MARGIN) / se, df_) if se > 0 else float(abs(mean) <= MARGIN)
        lo, hi = mean - st.t.ppf(1 - alpha, df_) * se, mean + st.t.ppf(1 - alpha, df_) * se
        out.append(_claim("regnety", "regnety", "sgd − adamw", mean, p_in, p_out,
                          f"RegNetY SGD − AdamW over {r.size} size × budget × seed cells{note}: mean {mean:+.2f} "
                          f"[{lo:+.2f}, {hi:+.2f}] ({100 * (1 - 2 * alpha):.0f}% interval); equivalence to 0 within "
                          f"±{MARGIN:g}: p = {p_in:.3g}; |gap| beyond {MARGIN:g}: p = {p_out:.3g}", r.size, alpha))
    for fam in ("vitp", "vitc", "regnety"):
        x = keep[keep["fam"].eq(fam)]
        if x["gflops"].nunique() >= 2:
            tau = st.kendalltau(np.log(x["gflops"]), x["gap"])
            per = ", ".join(f"{m} {_cell_text(v)}" for m, v in x.groupby("model", sort=False)["gap"])
            out.append(_claim("trend", fam, "sgd − adamw", tau.statistic, tau.pvalue, tau.pvalue,
                              f"{fam} SGD − AdamW by size (all budgets and seeds): {per}; Kendall tau against "
                              f"flops {tau.statistic:+.2f}, two-sided p = {tau.pvalue:.3g}: the gap "
                              f"{'grows' if tau.statistic > 0 else 'shrinks'} with size"
                              + ("" if tau.pvalue < alpha else " (not significantly)"), len(x), alpha,
                              verdict="described"))
    return out


def _stems(c: pd.DataFrame, alpha: float, n_perm: int = 20_000) -> list[Claim]:
    """The stem ablation, where a size has at least two of the S_i stems beside C and P."""
    out = []
    for size in sorted(set(c.loc[c["stem"].ne(""), "size"])):
        s = c[c["size"].eq(size) & c["fam"].isin(["vitc", "vitp"])].copy()
        s["rank"] = np.where(s["fam"].eq("vitp"), 5, s["stem"].map(STEM_RANK))
        if s["rank"].nunique() < 4:
            continue
        for opt, g in s.groupby("optimizer"):
            rho, p, q = _spearman(g["rank"], g["error"], n_perm, strata=g["seed"])
            means = ", ".join(f"{m} {_cell_text(x, '')}" for m, x in g.sort_values("rank").groupby("model", sort=False)["error"])
            out.append(_claim("stem order", f"stems at {size}", opt, rho, p, q,
                              f"{opt} error (%), seed means: {means}; Spearman rho of error against the stem's rank "
                              f"(C, S1..S4, P) over {len(g)} runs {rho:+.2f}, permutation (within seeds) p = {p:.3g} (the paper's "
                              f"direction), {q:.3g} (the other)", len(g), alpha))
        w = s.pivot_table(index=["rank", "model", "seed"], columns="optimizer", values="error")
        if {"adamw", "sgd"} <= set(w.columns):
            pen = (w["sgd"] - w["adamw"]).dropna().reset_index(name="penalty")
            rho, p, q = _spearman(pen["rank"], pen["penalty"], n_perm, strata=pen["seed"])
            per = "; ".join(f"{m} {_cell_text(x['penalty'])}" for m, x in pen.groupby("model", sort=False))
            out.append(_claim("stem sgd", f"stems at {size}", "sgd − adamw", rho, p, q,
                              f"SGD − AdamW (points, seed means): {per}; Spearman rho against the stem's rank "
                              f"{rho:+.2f} over {len(pen)} seed pairs, permutation (within seeds) p = {p:.3g} (the paper's "
                              f"direction), {q:.3g} (the other)", len(pen), alpha))
    return out


def _spearman(rank, value, n_perm: int, strata=None, seed: int = 0) -> tuple[float, float, float]:
    """Spearman's rho and its one-sided permutation p-values (> 0, < 0), exact under ties. With
    ``strata`` (the seeds) the values are permuted only within a stratum: runs of one seed share their
    init and batches, so only the stems within a seed are exchangeable under the null."""
    x = st.rankdata(np.asarray(rank, float))
    y = st.rankdata(np.asarray(value, float))
    rho = float(np.corrcoef(x, y)[0, 1])
    rng = np.random.default_rng(seed)
    ys = np.tile(y, (n_perm, 1))
    blocks = [np.arange(len(y))] if strata is None else [np.flatnonzero(np.asarray(strata) == s) for s in pd.unique(np.asarray(strata))]
    for b in blocks:
        ys[:, b] = rng.permuted(ys[:, b], axis=1)
    xc, yc = x - x.mean(), ys - ys.mean(axis=1, keepdims=True)
    null = (yc @ xc) / (np.linalg.norm(xc) * np.linalg.norm(yc, axis=1))
    return rho, float((1 + np.sum(null >= rho - 1e-12)) / (1 + n_perm)), float((1 + np.sum(null <= rho + 1e-12)) / (1 + n_perm))
