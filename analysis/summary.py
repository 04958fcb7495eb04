"""Per-group tables built from the tidy trial table with the pure functions of ``stats``.

A group is one model x optimizer (plus study/budget/epochs when those vary). Only
COMPLETE trials are results; diverged ones are in at the chance error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st

from bench.core import paper

from . import stats
from .names import size_key, size_of, stem_of

WITHIN = (1, 2, 4, 8)
OUTER = 1 / 8  # a best run this close to a window's edge (share of its log width) may have its optimum outside
AUC_CUTOFF = 10.0
REFS = ("min", "bootstrap")
_EXTRA_KEYS = ("study", "budget", "epochs")
MIN_SEEDS = 3  # fewest seeds given a seed interval: on one degree of freedom a t interval is 12.7 SDs wide
CONFIRM_SEED0 = 1000  # seeds of `bench run --confirm` reruns start here (bench.runner.specs.CONFIRM_SEED0)
ERROR_BOUNDS, DIFF_BOUNDS = (0.0, 100.0), (-100.0, 100.0)


def results(df: pd.DataFrame) -> pd.DataFrame:
    """COMPLETE trials only (diverged included, FAIL excluded)."""
    return df[df["state"].eq("COMPLETE")]


def group_keys(df: pd.DataFrame) -> list[str]:
    """model, optimizer, plus study/budget/epochs where they take more than one value."""
    return ["model", "optimizer"] + [k for k in _EXTRA_KEYS if df[k].nunique(dropna=True) > 1]


def has_replicates(df: pd.DataFrame) -> bool:
    """True if some (group, point) was run with several seeds."""
    r = results(df).dropna(subset=["point"])
    return bool(len(r)) and bool(r.duplicated(group_keys(df) + ["point"]).any())


def point_means(df: pd.DataFrame) -> pd.DataFrame:
    """Average seed replicates: one row per (group, point) with mean error, diverged fraction
    and ``n_seeds``; rows without a point stay as they are. Idempotent."""
    if "n_seeds" in df:
        return df
    r = results(df)
    keys = [k for k in group_keys(df) if k not in _EXTRA_KEYS] + list(_EXTRA_KEYS)
    with_pt = r.dropna(subset=["point"])
    agg = {c: "first" for c in ("lr", "wd", "lr_low", "lr_high", "wd_low", "wd_high", "chance", "gflops")}
    agg.update(error="mean", raw_error="mean", diverged="mean", seconds="sum", seed="size")  # seconds: a point's cost
    means = with_pt.groupby(keys + ["point"], sort=False, dropna=False).agg(agg).reset_index()
    rest = r[r["point"].isna()].assign(seed=1)[means.columns]
    return pd.concat([means, rest], ignore_index=True).rename(columns={"seed": "n_seeds"})


def reference(errors, ref: str, seed: int = 0) -> float:
    """The 'best' error used for Δ: ``min`` (the single best run, the paper's) or ``bootstrap``
    (pycls's robust best: the median lowest error over 25% resamples; a point estimate only)."""
    if ref == "min":
        return float(np.nanmin(errors)) if len(errors) else np.nan
    if ref == "bootstrap":
        return stats.bootstrap_best(errors, seed=seed)
    raise ValueError(f"unknown reference {ref!r}; valid: {', '.join(REFS)}")


def reference_label(df: pd.DataFrame, ref: str) -> str:
    """Human description of the reference best used for Δ, for figure captions."""
    base = {"min": "lowest error of the group", "bootstrap": "median best over 1000 bootstrap resamples of 25% of runs"}[ref]
    return base + ("; seed replicates averaged per point first" if has_replicates(df) else "")


def groups(df: pd.DataFrame):
    """Yield (key dict, per-point errors frame) per group, seed replicates averaged; models by size."""
    pm = point_means(df)
    keys = group_keys(df)
    parts = [(dict(zip(keys, k)), g) for k, g in pm.groupby(keys, sort=True, dropna=False)]
    yield from sorted(parts, key=lambda kg: size_key(kg[0]["model"]))


def by_size(t: pd.DataFrame, col: str = "model") -> pd.DataFrame:
    """``t`` with its rows in the order of their models' sizes (1mf before 18mf), stably."""
    if t.empty or col not in t:
        return t
    order = {m: i for i, m in enumerate(sorted(t[col].astype(str).unique(), key=size_key))}
    return t.sort_values(col, key=lambda s: s.astype(str).map(order), kind="stable").reset_index(drop=True)


def seed_interval(values, bounds=ERROR_BOUNDS) -> stats.Interval:
    """The mean of a cell's seeds with its 95% Student t interval cut to ``bounds``, what the quantity
    can be (an error lies in [0, 100], a difference of two in [-100, 100]: the cut interval covers at
    least as often as the t interval); no interval (NaN) below MIN_SEEDS seeds."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    mean = float(v.mean()) if v.size else np.nan
    if v.size < MIN_SEEDS:
        return stats.Interval(mean, np.nan, np.nan)
    h = st.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return stats.Interval(mean, max(bounds[0], mean - h), min(bounds[1], mean + h))


def robustness(df: pd.DataFrame, ref: str = "min", seed: int = 0) -> pd.DataFrame:
    """n, failed, diverged, best, reference, median, fraction within 1/2/4/8 points, Δ-AUC."""
    keys = group_keys(df)
    runs = results(df).groupby(keys, dropna=False).size()
    failed = df[df["state"].eq("FAIL")].groupby(keys, dropna=False).size()
    rows = []
    for key, g in groups(df):
        e = g["error"].to_numpy(float)
        best = reference(e, ref, seed)
        kt = tuple(key.values())
        row = dict(key, n=int(runs.get(kt, 0)), points=len(g), failed=int(failed.get(kt, 0)))
        row.update(diverged=int(round(g["diverged"].sum())), best=float(e.min()), ref=best)
        row.update(median=float(np.median(e)), chance=float(g["chance"].max()))
        row.update({f"within_{p}": stats.within(e, best, p) for p in WITHIN})
        row[f"auc_{AUC_CUTOFF:g}"] = stats.delta_auc(e, best, AUC_CUTOFF)
        rows.append(row)
    return pd.DataFrame(rows)


def edf_curves(df: pd.DataFrame, mode: str = "plain", ref: str = "min", band: bool = True, seed: int = 0) -> list[dict]:
    """Per group: label, x, F and (optionally) a bootstrap band on a common grid.

    ``mode``: ``plain`` (error), ``delta`` (error - reference) or ``scaled`` ((e - ref) / (chance - ref)).
    """
    out = []
    for key, g in groups(df):
        e = g["error"].to_numpy(float)
        best = reference(e, ref, seed)
        v = {"plain": e, "delta": stats.delta(e, best), "scaled": stats.scaled_delta(e, best, g["chance"].max())}[mode]
        x, F = stats.edf(v)
        curve = dict(key=key, label=" ".join(str(s) for s in key.values()), x=x, F=F)
        if band and len(x) > 1:
            grid = np.linspace(x[0], x[-1], 120)
            curve.update(grid=grid, band=stats.edf_band(v, grid, seed=seed))
        out.append(curve)
    return out


def ks_table(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Between every two models with the same other keys: one-sided permutation KS on their errors
    (``above``: how far the model's error EDF lies above the other's, i.e. its errors lower, with p;
    ``below`` the other way), and one-sided signed-rank tests on per-point differences (vs − model)
    where they share sampled points."""
    pm = point_means(df)
    keys = [k for k in group_keys(df) if k != "model"]
    rows = []
    for k, g in pm.groupby(keys, sort=True, dropna=False):
        key = dict(zip(keys, k))
        errs = {m: x["error"].to_numpy(float) for m, x in g.groupby("model", sort=True)}
        wide = g.dropna(subset=["point"]).pivot_table(index="point", columns="model", values="error")
        models = list(errs)
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                t = stats.ks_perm(errs[a], errs[b], seed=seed)
                both = wide[[a, b]].dropna() if a in wide and b in wide else pd.DataFrame(columns=[a, b])
                p = stats.signed_rank(both[a], both[b], seed=seed)
                rows.append(dict(key, model=a, vs=b, above=t.d_a, p_above=t.p_a, below=t.d_b, p_below=t.p_b,
                                 pairs=p.n, median_diff=p.median_diff, p_vs_higher=p.p_pos, p_vs_lower=p.p_neg))  # fmt: skip
    return pd.DataFrame(rows)


def good_ranges(df: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """pycls good range (2.5/50/97.5 %) of lr, wd and lr*wd per group."""
    rows = []
    for key, g in groups(df):
        for hp, v in (("lr", g["lr"]), ("wd", g["wd"]), ("lr*wd", g["lr"] * g["wd"])):
            r = stats.good_range(g["error"], v, seed=seed)
            rows.append(dict(key, hp=hp, lo=r.lo, median=r.value, hi=r.hi))
    return pd.DataFrame(rows)


def scatter_panels(df: pd.DataFrame, seed: int = 0) -> list[dict]:
    """Per group: label, row (model family), per-point frame and good ranges {hp: Interval}."""
    gr = good_ranges(df, seed=seed)
    panels = []
    for key, pts in groups(df):
        mine = gr.merge(pd.DataFrame([key]), on=list(key))
        ranges = {r.hp: stats.Interval(r.median, r.lo, r.hi) for r in mine.itertuples()}
        label = " ".join(str(v) for v in key.values())
        panels.append(dict(label=label, row=str(key["model"]).split("_")[0], model=key["model"], frame=pts, ranges=ranges))
    return panels


def optimizer_gap(df: pd.DataFrame, a: str = "adamw", b: str = "sgd") -> pd.DataFrame:
    """Per model (and epochs/budget if varying): the lowest errors under ``a`` and ``b`` and the gap
    of their expected best of k runs, b - a, with its jackknife interval over the paired points
    (NaN where the groups hold fewer than stats.MIN_POINTS points), and the model's gflops (paper Fig. 3)."""
    pm = point_means(df)
    keys = [k for k in group_keys(df) if k != "optimizer"]
    rows = []
    for k, g in pm.groupby(keys, sort=True, dropna=False):
        ea, eb = (g[g["optimizer"].eq(o)].dropna(subset=["point"]).set_index("point")["error"] for o in (a, b))
        if len(ea) and len(eb):
            both = pd.concat([eb, ea], axis=1, join="inner")
            gp = stats.best_contrast([both.iloc[:, 0], both.iloc[:, 1]], (1, -1))
            key = dict(zip(keys, k if isinstance(k, tuple) else (k,)))
            fam = str(key["model"]).split("_")[0] + (f" {key['epochs']:g}ep" if "epochs" in key else "")
            rows.append(dict(key, family=fam, gflops=g["gflops"].max(), **{f"lowest {a}": ea.min(), f"lowest {b}": eb.min()},
                             gap=gp.value, lo=gp.lo, hi=gp.hi))
    return pd.DataFrame(rows)


def convergence(df: pd.DataFrame) -> pd.DataFrame:
    """Per model and epochs: best error (over optimizers and trials) minus the longest
    schedule's best error (paper Fig. 2). Empty if no model has several schedules."""
    r = point_means(df).dropna(subset=["epochs"])
    best = r.groupby(["model", "epochs"], as_index=False)["error"].min()
    longest = best.loc[best.groupby("model")["epochs"].idxmax(), ["model", "epochs", "error"]]
    out = best.merge(longest, on="model", suffixes=("", "_longest"))
    out = out[out.groupby("model")["epochs"].transform("nunique") > 1]
    return out.assign(delta=out["error"] - out["error_longest"]).reset_index(drop=True)


def budget_curves(df: pd.DataFrame, ns=None) -> list[dict]:
    """Expected best error after n trials (and its std) per group; n defaults to 64 log-spaced
    values from 1 to the group size N."""
    out = []
    for key, g in groups(df):
        n = np.unique(np.geomspace(1, len(g), 64).astype(int)) if ns is None else np.asarray(ns)
        mean, sd = stats.expected_best_curve(g["error"], n)
        out.append(dict(key=key, label=" ".join(str(s) for s in key.values()), n=n, mean=mean, std=sd))
    return out


def importance(df: pd.DataFrame, max_trials: int = 64, seed: int = 0) -> pd.DataFrame:
    """fANOVA importance of lr and wd per group (optuna's evaluator; groups are subsampled
    to ``max_trials`` runs so it stays fast). Raises ImportError without scikit-learn."""
    import optuna
    from optuna.distributions import FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for key, g in groups(df):
        g = g.dropna(subset=["lr", "wd", "error"])
        g = g.sample(max_trials, random_state=seed) if len(g) > max_trials else g
        if len(g) < 4 or min(g["lr"].nunique(), g["wd"].nunique(), g["error"].nunique()) < 2:
            continue
        dist = {hp: FloatDistribution(g[hp].min(), g[hp].max(), log=True) for hp in ("lr", "wd")}
        study = optuna.create_study()
        study.add_trials(
            optuna.trial.create_trial(value=e, params={"lr": lr, "wd": wd}, distributions=dist)
            for lr, wd, e in g[["lr", "wd", "error"]].itertuples(index=False)
        )
        ev = optuna.importance.FanovaImportanceEvaluator(n_trees=16, max_depth=4, seed=seed)
        imp = optuna.importance.get_param_importances(study, evaluator=ev)
        rows.append(dict(key, n=len(g), lr=float(imp["lr"]), wd=float(imp["wd"])))
    return pd.DataFrame(rows)


def paper_comparison(df: pd.DataFrame) -> pd.DataFrame:
    """Measured vs published numbers for COMPLETE trials of studies with budget == "paper".

    One row per (what, model, optimizer, epochs) the paper reports and the data covers.
    """
    r = df[df["state"].eq("COMPLETE") & df["budget"].eq("paper")]
    rows = []
    for (model, opt, ep), g in r.groupby(["model", "optimizer", "epochs"], dropna=True):
        best = float(g["error"].min())
        if model in paper.TABLE2 and ep in paper.TABLE2_EPOCHS:
            rows.append(dict(what="Table 2 best error", model=model, optimizer=opt, epochs=ep,
                             paper=paper.TABLE2[model][paper.TABLE2_EPOCHS.index(ep)], measured=best))  # fmt: skip
        if model in paper.TABLE3 and ep == paper.TABLE3_EPOCHS and opt in ("adamw", "sgd"):
            rows.append(dict(what="Table 3 best error", model=model, optimizer=opt, epochs=ep,
                             paper=paper.TABLE3[model][("adamw", "sgd").index(opt)], measured=best))  # fmt: skip
        if (model, opt) in paper.WITHIN4:
            frac = stats.within(g["error"], best, 4)
            rows.append(dict(what=f"runs within 4 pts of best ({paper.WITHIN4[(model, opt)][1]})", model=model,
                             optimizer=opt, epochs=ep, paper=paper.WITHIN4[(model, opt)][0], measured=frac))  # fmt: skip
    out = pd.DataFrame(rows, columns=["what", "model", "optimizer", "epochs", "paper", "measured"])
    return out.assign(diff=out["measured"] - out["paper"])


def tuned_cells(df: pd.DataFrame) -> pd.DataFrame:
    """The finished runs of tuned groups (one point per model, optimizer and epochs), with the
    model's family (vitp, vitc, regnety), size and stem."""
    r = results(df).dropna(subset=["error"])
    if r.empty:
        return r
    single = r.groupby(["model", "optimizer", "epochs"])["point"].transform("nunique") == 1
    r = r[single].copy()
    name = r["model"].astype(str)
    r["fam"] = name.str.split("_").str[0]
    r["size"] = name.str.split("_").str[1]
    r["stem"] = name.str.extract(r"(_s\d)$", expand=False).fillna("")
    return r


def _cells(df: pd.DataFrame) -> pd.DataFrame:
    """The finished runs of tuned groups (tuned_cells), with the model's rung and stem."""
    c = tuned_cells(df)
    return c.assign(rung=c["model"].map(size_of), stem_name=c["model"].map(stem_of)) if len(c) else c


def convergence_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Paper Fig. 2 per optimizer: for each model (plain stems), optimizer and shorter budget, the
    error minus the same seed's error at the model's longest budget, seed mean with its seed interval
    (``seed_interval``), beside the longest budget and its mean error."""
    c = _cells(df)
    if c.empty or c["epochs"].nunique() < 2:
        return pd.DataFrame()
    c = c[c["stem"].eq("")]
    longest = c.groupby(["model", "optimizer"])["epochs"].transform("max")
    at_longest = c[c["epochs"].eq(longest)][["model", "optimizer", "seed", "error"]]
    c = c.assign(longest=longest)
    m = c[c["epochs"] < longest].merge(at_longest, on=["model", "optimizer", "seed"], suffixes=("", "_longest"))
    rows = []
    for (model, opt, ep), g in m.groupby(["model", "optimizer", "epochs"], sort=False):
        iv = seed_interval(g["error"] - g["error_longest"], DIFF_BOUNDS)
        rows.append(dict(model=model, optimizer=opt, size=size_of(model) or g["size"].iloc[0], epochs=ep,
                         delta=iv.value, lo=iv.lo, hi=iv.hi, seeds=len(g), longest=int(g["longest"].iloc[0]),
                         error_longest=float(g["error_longest"].mean()), gflops=float(g["gflops"].max())))
    return by_size(pd.DataFrame(rows))


def stem_cells(df: pd.DataFrame) -> pd.DataFrame:
    """Table 3: per stem (C, S1…S4, P) at the size that has the S stems, the error with AdamW and with
    SGD and their difference SGD − AdamW (paired by seed), seed means with seed intervals; ``optimizer``
    is 'adamw', 'sgd' or 'sgd − adamw'."""
    c = _cells(df)
    if c.empty or not c["stem"].ne("").any():
        return pd.DataFrame()
    rung = c.loc[c["stem"].ne(""), "rung"].iloc[0]
    s = c[c["rung"].eq(rung) & c["stem_name"].ne("")]
    rows = []
    for model, g in s.groupby("model"):
        base = dict(model=model, stem=stem_of(model))
        for opt, o in g.groupby("optimizer"):
            iv = seed_interval(o["error"])
            rows.append(dict(base, optimizer=opt, error=iv.value, lo=iv.lo, hi=iv.hi, seeds=len(o)))
        w = g.pivot_table(index="seed", columns="optimizer", values="error")
        if {"adamw", "sgd"} <= set(w.columns):
            d = (w["sgd"] - w["adamw"]).dropna()
            iv = seed_interval(d, DIFF_BOUNDS)
            rows.append(dict(base, optimizer="sgd − adamw", error=iv.value, lo=iv.lo, hi=iv.hi, seeds=len(d)))
    return by_size(pd.DataFrame(rows))


def confirm_table(df: pd.DataFrame) -> pd.DataFrame:
    """The confirm step (``bench run --confirm``): each point rerun with new seeds, its error in the
    search (the search seeds' mean), its rank among the group's search points, and the reruns' mean
    with a seed interval. A search's best points regress when rerun (the winner's curse)."""
    r = results(df).dropna(subset=["error", "point"])
    search, rerun = r[r["seed"] < CONFIRM_SEED0], r[r["seed"] >= CONFIRM_SEED0]
    if rerun.empty:
        return pd.DataFrame()
    keys = ["model", "optimizer", "epochs"]
    s = search.groupby(keys + ["point"], as_index=False)["error"].mean()
    s["rank"] = s.groupby(keys)["error"].rank(method="min").astype(int)
    s["points"] = s.groupby(keys)["point"].transform("size")
    rows = []
    for k, g in rerun.groupby(keys + ["point"], sort=False):
        hit = s[(s[keys + ["point"]] == pd.Series(dict(zip(keys + ["point"], k)))).all(axis=1)]
        iv = seed_interval(g["error"])
        rows.append(dict(zip(keys + ["point"], k), rank=int(hit["rank"].iloc[0]) if len(hit) else None,
                         points=int(hit["points"].iloc[0]) if len(hit) else None,
                         search=float(hit["error"].iloc[0]) if len(hit) else np.nan, rerun=iv.value, lo=iv.lo,
                         hi=iv.hi, seeds=len(g)))
    out = pd.DataFrame(rows)
    return by_size(out.assign(change=out["rerun"] - out["search"]).sort_values(["optimizer", "rank"]))
