"""Per-group tables built from the tidy trial table with the pure functions of ``stats``.

A group is one model x optimizer (plus study/budget/epochs when those vary). Only
COMPLETE trials are results; diverged ones are in at the chance error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import stats

WITHIN = (1, 2, 4, 8)
AUC_CUTOFF = 10.0
REFS = ("min", "bootstrap")
_EXTRA_KEYS = ("study", "budget", "epochs")


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
    agg = {c: "first" for c in ("lr", "wd", "chance", "gflops")}
    agg.update(error="mean", raw_error="mean", diverged="mean", seed="size")
    means = with_pt.groupby(keys + ["point"], sort=False, dropna=False).agg(agg).reset_index()
    rest = r[r["point"].isna()].assign(seed=1)[means.columns]
    return pd.concat([means, rest], ignore_index=True).rename(columns={"seed": "n_seeds"})


def reference(errors, ref: str, seed: int = 0) -> stats.Interval:
    """The 'best' error used for Δ: ``min`` (the single best run, the paper's) or
    ``bootstrap`` (median best over pycls-style 25% resamples, with its 95% interval)."""
    if ref == "min":
        m = float(np.nanmin(errors)) if len(errors) else np.nan
        return stats.Interval(m, m, m)
    if ref == "bootstrap":
        return stats.bootstrap_best(errors, seed=seed)
    raise ValueError(f"unknown reference {ref!r}; valid: {', '.join(REFS)}")


def reference_label(df: pd.DataFrame, ref: str) -> str:
    """Human description of the reference best used for Δ, for figure captions."""
    base = {"min": "lowest error of the group", "bootstrap": "median best over 1000 bootstrap resamples of 25% of runs"}[ref]
    return base + ("; seed replicates averaged per point first" if has_replicates(df) else "")


def groups(df: pd.DataFrame):
    """Yield (key dict, per-point errors frame) per group, seed replicates averaged."""
    pm = point_means(df)
    keys = group_keys(df)
    for k, g in pm.groupby(keys, sort=True, dropna=False):
        yield dict(zip(keys, k)), g


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
        row.update(diverged=int(round(g["diverged"].sum())), best=float(e.min()), ref=best.value)
        row.update(ref_lo=best.lo, ref_hi=best.hi, median=float(np.median(e)), chance=float(g["chance"].max()))
        row.update({f"within_{p}": stats.within(e, best.value, p) for p in WITHIN})
        row[f"auc_{AUC_CUTOFF:g}"] = stats.delta_auc(e, best.value, AUC_CUTOFF)
        rows.append(row)
    return pd.DataFrame(rows)


def edf_curves(df: pd.DataFrame, mode: str = "plain", ref: str = "min", band: bool = True, seed: int = 0) -> list[dict]:
    """Per group: label, x, F and (optionally) a bootstrap band on a common grid.

    ``mode``: ``plain`` (error), ``delta`` (error - reference) or ``scaled`` ((e - ref) / (chance - ref)).
    """
    out = []
    for key, g in groups(df):
        e = g["error"].to_numpy(float)
        best = reference(e, ref, seed).value
        v = {"plain": e, "delta": stats.delta(e, best), "scaled": stats.scaled_delta(e, best, g["chance"].max())}[mode]
        x, F = stats.edf(v)
        curve = dict(key=key, label=" ".join(str(s) for s in key.values()), x=x, F=F)
        if band and len(x) > 1:
            grid = np.linspace(x[0], x[-1], 120)
            curve.update(grid=grid, band=stats.edf_band(v, grid, seed=seed))
        out.append(curve)
    return out


def ks_table(df: pd.DataFrame) -> pd.DataFrame:
    """KS statistic/p between every two models with the same other keys (plain errors), plus a
    paired Wilcoxon test on per-point differences (vs - model) where they share sampled points."""
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
                t = stats.ks(errs[a], errs[b])
                p = stats.paired(wide[a], wide[b]) if a in wide and b in wide else stats.Paired(0, *[np.nan] * 4)
                rows.append(dict(key, model=a, vs=b, ks=t.statistic, ks_p=t.pvalue, pairs=p.n,
                                 median_diff=p.median_diff, wilcoxon_p=p.pvalue))  # fmt: skip
    return pd.DataFrame(rows)


def paired_diffs(df: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    """Per-point error differences (model ``b`` minus model ``a``), per optimizer."""
    pm = point_means(df).dropna(subset=["point"])
    keys = [k for k in group_keys(df) if k != "model"] + ["point"]
    m = pm[pm["model"].eq(a)].merge(pm[pm["model"].eq(b)], on=keys, suffixes=("_a", "_b"))
    return m.assign(diff=m["error_b"] - m["error_a"])[keys + ["lr_a", "wd_a", "error_a", "error_b", "diff"]]


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
        panels.append(dict(label=label, row=str(key["model"]).split("_")[0], frame=pts, ranges=ranges))
    return panels


def optimizer_gap(df: pd.DataFrame, a: str = "adamw", b: str = "sgd", seed: int = 0) -> pd.DataFrame:
    """Per model (and epochs/budget if varying): best errors under ``a`` and ``b``, the gap
    best(b) - best(a) with a bootstrap CI, and the model's gflops (paper Fig. 3)."""
    pm = point_means(df)
    keys = [k for k in group_keys(df) if k != "optimizer"]
    rows = []
    for k, g in pm.groupby(keys, sort=True, dropna=False):
        ea, eb = g.loc[g["optimizer"].eq(a), "error"], g.loc[g["optimizer"].eq(b), "error"]
        if len(ea) and len(eb):
            gp = stats.gap(ea, eb, seed=seed)
            key = dict(zip(keys, k if isinstance(k, tuple) else (k,)))
            fam = str(key["model"]).split("_")[0] + (f" {key['epochs']:g}ep" if "epochs" in key else "")
            rows.append(dict(key, family=fam, gflops=g["gflops"].max(), best_a=ea.min(), best_b=eb.min(), gap=gp.value, lo=gp.lo, hi=gp.hi))
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
