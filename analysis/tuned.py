"""The claims of studies of tuned points: training length and the optimizer gap across model sizes
(the paper's Figs. 2 and 3, Table 2, the ``optimizer`` study) and the stem ablation (Table 3,
``stem``).

A *cell* is one (model, optimizer, epochs) at its tuned point, trained with several seeds; each
cell's mean comes with a seed interval (Student t over seeds: with two seeds, wide). Cells whose
mean error does not reach half the chance error measure noise: by a rule fixed before the run
(claims.NEAR_CHANCE_RULE) they are left out of the gap and convergence tests, and every claim is
judged without the rule too. Paired tests are exact signed-rank tests (their smallest p-value,
2^-n, says when a claim is undecidable at its size).

* converge: ViTc (and RegNetY) converge faster than ViTp, read as the paper's Table 2 does: time to
  target. At the longest budget at most half the longest, does it reach ViTp's error at the longest
  budget? Each model at its better optimizer, ViTp(T) − X(T/2) paired by size and seed. Beside it,
  each model's learning curve e(t) = e∞ + a t^-b and the epochs it needs to come within
  ``CONVERGED_WITHIN`` points of e∞ (bootstrap over seeds). No verdict while either arm still
  improves at the longest budget by more than its seed noise (claims.PLATEAU_RULE);
* sgd: ViTp's SGD − AdamW gap is positive; gap: it is larger than ViTc's (paired by size, budget, seed);
* regnety: RegNetY's gap is near zero, at the longest budget: an equivalence test (two one-sided t
  tests) against a margin from its seed noise (``margin``);
* trend: how each family's gap changes with model size (described: the paper claims no direction);
* stems, per optimizer: the trend of error among C, S1...S4 (Spearman rho against the stem's rank,
  permuted within seeds), and P against C apart (exact signed-rank over seeds); the same two for
  SGD's penalty (SGD − AdamW).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as st

from . import stats, summary
from .claims import DESCRIBED, TARGET_POWER, Claim, Design, fmt_p, iv, p_is

MARGIN_Z = 1.96  # RegNetY's margin: the 95% range of two runs that differ only in seed, ±1.96 √2 σ
CONVERGED_WITHIN = 1.0  # points: an arm has converged within this of its fitted e∞
STEM_RANK = {"": 0, "_s1": 1, "_s2": 2, "_s3": 3, "_s4": 4}  # C, S1..S4; P (ViTp) is 5
NEAR = "near chance"
PLATEAU = "cannot judge convergence: the longest budget has not plateaued"
STATEMENTS = {
    "converge vitc": "ViTc converges faster than ViTp: at half ViTp's longest budget (or less) it reaches ViTp's "
                     "error at the longest budget (Table 2's reading)",
    "converge regnety": "RegNetY converges faster than ViTp: at half ViTp's longest budget (or less) it reaches "
                        "ViTp's error at the longest budget",
    "sgd": "ViTp trains worse with SGD than with AdamW at its tuned points: its SGD − AdamW gap is positive",
    "gap": "ViTp's SGD − AdamW gap is larger than ViTc's",
    "regnety": "RegNetY's SGD − AdamW gap at the longest budget is near zero: within the range that reseeding "
               "alone gives (±1.96 √2 × its seed SD)",
    "trend": "How the SGD − AdamW gap changes with model size",
    "stem trend": "Error rises from the conv stem C through S1…S4 (less convolutional stems)",
    "stem P vs C": "The patchify stem P has higher error than the conv stem C",
    "stem sgd trend": "SGD's penalty (SGD − AdamW) rises from C through S1…S4",
    "stem sgd P vs C": "SGD's penalty (SGD − AdamW) is larger with P than with C",
}


def _cell_text(values: pd.Series, sign: str = "+") -> str:
    """'mean [lo, hi]' of one cell's seeds (sign '': a level, not a difference)."""
    return iv(stats.mean_interval(values), sign, none="one seed: no interval")


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
    b = at_better(c)
    longest = b.groupby("model")["epochs"].transform("max")
    ref = b[b["epochs"].eq(longest)][["model", "seed", "error"]].rename(columns={"error": "error_longest"})
    out = b.merge(ref, on=["model", "seed"])
    return out.assign(delta=out["error"] - out["error_longest"], longest=out["model"].map(b.groupby("model")["epochs"].max()))


def at_better(c: pd.DataFrame) -> pd.DataFrame:
    """The cells of each model at its better optimizer: the one with the lower mean error over every budget."""
    better = c.groupby(["model", "optimizer"])["error"].mean().reset_index()
    better = better.loc[better.groupby("model")["error"].idxmin(), ["model", "optimizer"]]
    return c.merge(better, on=["model", "optimizer"])


def _with_iv(frame: pd.DataFrame, keys, value: str) -> pd.DataFrame:
    """Per ``keys``: the mean of ``value`` over seeds with its 95% t interval (lo, hi)."""
    rows = []
    for k, g in frame.groupby(keys, sort=False):
        m = stats.mean_interval(g[value])
        rows.append({**dict(zip(keys, k)), value: m.value, "lo": m.lo, "hi": m.hi, "seeds": len(g)})
    return pd.DataFrame(rows)


def gap_table(df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3's points: SGD − AdamW per model and budget (seed mean, 95% interval), with gflops and
    ``near chance`` (the cell is left out of the gap tests)."""
    c = summary.tuned_cells(df)
    g = gaps(c[c["stem"].eq("")]) if len(c) else pd.DataFrame()
    if g.empty:
        return g
    t = _with_iv(g, ["model", "fam", "size", "epochs"], "gap")
    flops = g.groupby("model")["gflops"].max()
    return t.assign(gflops=t["model"].map(flops), family=t["fam"], **{"near chance": _near_chance(t, _noisy(c))})


def convergence_table(df: pd.DataFrame) -> pd.DataFrame:
    """Fig. 2's points: error − longest-budget error per model and budget at the model's better
    optimizer (seed mean, 95% interval), with its size and gflops."""
    c = summary.tuned_cells(df)
    conv = convergence(c[c["stem"].eq("")]) if len(c) else pd.DataFrame()
    if conv.empty:
        return conv
    t = _with_iv(conv, ["model", "fam", "size", "optimizer", "epochs"], "delta")
    return t.assign(gflops=t["model"].map(conv.groupby("model")["gflops"].max()))


def cell_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per model, optimizer and epochs of a tuned study: the error's seed mean with its 95% t interval."""
    c = summary.tuned_cells(df)
    if c.empty:
        return pd.DataFrame()
    return _with_iv(c.sort_values(["model", "optimizer", "epochs"]), ["model", "optimizer", "epochs"], "error")


def stem_table(df: pd.DataFrame) -> pd.DataFrame:
    """Table 3: per stem and optimizer, the error's seed mean and 95% interval, ordered C, S1..S4, P."""
    c = summary.tuned_cells(df)
    if c.empty or not c["stem"].ne("").any():
        return pd.DataFrame()
    size = c.loc[c["stem"].ne(""), "size"].iloc[0]
    s = c[c["size"].eq(size) & c["fam"].isin(["vitc", "vitp"])].copy()
    s["rank"] = np.where(s["fam"].eq("vitp"), 5, s["stem"].map(STEM_RANK))
    t = _with_iv(s.sort_values("rank"), ["model", "optimizer"], "error")
    return t


def claims(df: pd.DataFrame, design: Design) -> list[Claim]:
    """Every tuned-point claim the study's cells support, undecided (claims.judge decides them)."""
    c = summary.tuned_cells(df)
    if c.empty:
        return []
    return _converge(c) + _gaps(c, design.per_look) + _stems(c)


def _sizes(c: pd.DataFrame, fam: str = "vitc") -> list[str]:
    """Sizes that have both a ViTp and a ``fam`` model (plain stems), smallest first."""
    s = c[c["stem"].eq("")]
    both = set(s.loc[s["fam"].eq("vitp"), "size"]) & set(s.loc[s["fam"].eq(fam), "size"])
    flops = s[s["size"].isin(both)].groupby("size")["gflops"].max()
    return list(flops.sort_values().index)


def _paired(kind, pair, optimizer, d: np.ndarray, evidence: str, unit: str, **kw) -> Claim:
    """A claim on paired differences ``d`` (> 0: the paper's direction), exact signed-rank each way;
    power_of resamples the differences (what would decide an undecidable claim)."""
    t = stats.signed_rank(np.zeros(d.size), d)
    text = (f"{evidence}; over {t.n} {unit}: median {t.median_diff:+.2f}, exact signed-rank p = {fmt_p(t.p_pos)} "
            f"(the paper's direction), {fmt_p(t.p_neg)} (the other), smallest attainable {fmt_p(t.p_min)}")
    return Claim(kind, pair, optimizer, "", t.median_diff, t.p_pos, t.p_neg, text, t.n, STATEMENTS[kind],
                 p_min=t.p_min, power_of=_power_of(d, unit), **kw)


def _power_of(d: np.ndarray, unit: str):
    """power_of(level) of a signed-rank claim: resampling its differences, the power now and the
    fewest units (cells, seeds) at which 80% power is reached, with the test's floor there."""
    def power_of(level):
        if d.size == 0 or not np.any(d):
            return {}
        sign = 1 if np.median(d) >= 0 else -1

        def decide(x):
            t = stats.signed_rank(np.zeros(x[0].size), x[0])
            return (t.p_pos if sign > 0 else t.p_neg) < level
        pw, need = stats.points_needed(lambda r, m: [d[r.integers(0, d.size, m)]], decide, d.size, TARGET_POWER,
                                       sims=200, grid=(4, 5, 6, 8, 10, 12, 16, 24, 32, 48, 64))
        out = dict(power=pw, n_needed=need, direction="the paper's" if sign > 0 else "the opposite")
        if need is not None and need > d.size:
            out["cost"] = f"{need} {unit}" + (f" (at {d.size} the smallest attainable p is {0.5 ** d.size:.2g})"
                                              if 0.5 ** d.size >= level else "")
        return out
    return power_of


# ---- convergence: time to target, learning curves, the plateau


def _fit(epochs: np.ndarray, errors: np.ndarray, grid=np.geomspace(0.05, 5, 400)):
    """(e∞, a, b) of e(t) = e∞ + a t^-b by least squares over a grid of b (e∞ and a are linear
    given b); None where the curve does not bend: the best b at the grid's edge, a <= 0, or e∞ < 0
    (its last step too large for any e∞ the error can have), so that e∞ cannot be told from these
    budgets. Three budgets determine the curve exactly."""
    t, e = np.asarray(epochs, float), np.asarray(errors, float)
    if np.unique(t).size < 3:
        return None
    x = t[None, :] ** -grid[:, None]  # (b, t)
    xm, em = x.mean(axis=1), e.mean()
    a = ((x - xm[:, None]) @ (e - em)) / np.sum((x - xm[:, None]) ** 2, axis=1)
    e_inf = em - a * xm
    i = int(np.argmin(np.sum((e_inf[:, None] + a[:, None] * x - e) ** 2, axis=1)))
    if i in (0, grid.size - 1) or a[i] <= 0 or e_inf[i] < 0:
        return None
    return float(e_inf[i]), float(a[i]), float(grid[i])


def _epochs_within(fit, x: float = CONVERGED_WITHIN) -> float:
    e_inf, a, b = fit
    return float((a / x) ** (1 / b))


def learning_curves(c: pd.DataFrame, n_boot: int = 200, seed: int = 0) -> pd.DataFrame:
    """Per model at its better optimizer (plain stems): the fitted e(t) = e∞ + a t^-b over its budgets'
    seed means, and the epochs it needs to come within CONVERGED_WITHIN points of e∞, with a 95%
    percentile interval from resampling its seeds (each resample refitted; ``fits``: the share of
    resamples whose curve bends)."""
    b = at_better(c[c["stem"].eq("")])
    rng = np.random.default_rng(seed)
    rows = []
    for (model, opt), g in b.groupby(["model", "optimizer"], sort=False):
        w = g.pivot_table(index="seed", columns="epochs", values="error").dropna()
        ep = w.columns.to_numpy(float)
        fit = _fit(ep, w.mean().to_numpy()) if len(w) else None
        row = dict(model=model, optimizer=opt, fam=g["fam"].iloc[0], size=g["size"].iloc[0], seeds=len(w),
                   epochs=", ".join(f"{e:g}" for e in ep), e_inf=np.nan, b=np.nan, within=np.nan, lo=np.nan, hi=np.nan,
                   fits=0.0)
        if fit is not None:
            boot = []
            for _ in range(n_boot):
                f = _fit(ep, w.iloc[rng.integers(0, len(w), len(w))].mean().to_numpy())
                boot.append(_epochs_within(f) if f else np.nan)
            boot = np.array(boot)
            lo, hi = np.nanpercentile(boot, [2.5, 97.5]) if np.isfinite(boot).any() else (np.nan, np.nan)
            row.update(e_inf=fit[0], b=fit[2], within=_epochs_within(fit), lo=lo, hi=hi, fits=float(np.isfinite(boot).mean()))
        rows.append(row)
    return pd.DataFrame(rows)


def plateau(c: pd.DataFrame, level: float = 0.95) -> dict:
    """Per family at its models' better optimizers: (the mean improvement from the budget before the
    longest to the longest, paired by size and seed; its one-sided ``level`` lower bound (Student t);
    the seed SD at the longest budget, pooled over its cells; plateaued: the lower bound is no larger
    than the seed SD, so the data do not show it still improving by more than seed noise; the two budgets)."""
    b = at_better(c[c["stem"].eq("")])
    out = {}
    for fam, g in b.groupby("fam"):
        budgets = sorted(g["epochs"].unique())
        if len(budgets) < 2:
            continue
        last, before = budgets[-1], budgets[-2]
        w = g.pivot_table(index=["model", "seed"], columns="epochs", values="error")
        d = (w[before] - w[last]).dropna().to_numpy(float)
        lower = d.mean() - st.t.ppf(level, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size) if d.size > 1 else np.nan
        var = g[g["epochs"].eq(last)].groupby("model")["error"].var(ddof=1)
        sd = float(np.sqrt(var.mean()))
        out[fam] = (float(d.mean()), float(lower), sd, bool(not lower > sd), before, last)
    return out


def _converge(c: pd.DataFrame) -> list[Claim]:
    plain = c[c["stem"].eq("")]
    if plain["epochs"].nunique() < 2:
        return []
    b = at_better(plain)
    noisy = _noisy(c)
    flat = plateau(c)
    longest = b["epochs"].max()
    half = [e for e in sorted(b["epochs"].unique()) if e <= longest / 2]
    out = []
    for fam in ("vitc", "regnety"):
        sizes = _sizes(c, fam)
        if not sizes or not half:
            continue
        h = half[-1]
        rows = []
        for size in sizes:
            p_ = b[b["model"].eq(f"vitp_{size}") & b["epochs"].eq(longest)].set_index("seed")
            x_ = b[b["model"].eq(f"{fam}_{size}") & b["epochs"].eq(h)].set_index("seed")
            both = p_[["error", "optimizer"]].add_suffix("_p").join(x_[["error", "optimizer"]].add_suffix("_x"), how="inner")
            for s, r in both.iterrows():
                near = {(f"vitp_{size}", r["optimizer_p"], longest), (f"{fam}_{size}", r["optimizer_x"], h)} & noisy
                rows.append(dict(size=size, seed=s, p=r["error_p"], x=r["error_x"], near=bool(near)))
        if not rows:
            continue
        t = pd.DataFrame(rows)
        name = {"vitc": "ViTc", "regnety": "RegNetY"}[fam]
        per = "; ".join(f"{size}: ViTp {_cell_text(g['p'], '')}, {name} {_cell_text(g['x'], '')}"
                        for size, g in t.groupby("size", sort=False))
        fams = [f for f in ("vitp", fam) if f in flat]
        steps = ", ".join(f"{f} improves by {flat[f][0]:+.1f} points from {flat[f][4]:g} to {flat[f][5]:g} epochs "
                          f"(95% lower bound {flat[f][1]:+.1f}; seed SD at {flat[f][5]:g}: {flat[f][2]:.2f})" for f in fams)
        blocked = PLATEAU if any(not flat[f][3] for f in fams) else ""
        plateau_text = (f"plateau: {steps}: " + ("the longest budget has not plateaued, so no verdict on convergence"
                                                 if blocked else "plateaued"))

        def claim(rows_, note=""):
            return _paired(f"converge {fam}", f"vitp vs {fam}", "better optimizer", (rows_["p"] - rows_["x"]).to_numpy(),
                           f"time to target: {name} at {h:g} epochs against ViTp at {longest:g} (each at its better "
                           f"optimizer, error %, seed means): {per}; ViTp({longest:g}) − {name}({h:g}): {name} lower in "
                           f"{int(np.sum(rows_['p'] - rows_['x'] > stats.EPS))}/{len(rows_)} size × seed pairs{note}",
                           "size × seed pairs", blocked=blocked,
                           detail=dict(plateau={f: dict(zip(("step", "lower", "seed_sd", "plateaued"), flat[f][:4]))
                                                for f in fams}))
        keep = t[~t["near"]]
        cl = claim(keep, f" ({int(t['near'].sum())} pair(s) with a cell {NEAR} left out)" if t["near"].any() else "")
        cl.evidence += f"; {plateau_text}; learning curves: the table above"
        if t["near"].any():
            cl.without = claim(t)
        out.append(cl)
    return out


# ---- the optimizer gap


def _gaps(c: pd.DataFrame, alpha: float) -> list[Claim]:
    out, noisy = [], _noisy(c)
    plain = c[c["stem"].eq("")]
    g = gaps(plain)
    if g.empty or (plain["size"].nunique() < 2 and plain["epochs"].nunique() < 2):
        return out  # a stem study (one size, one budget): its SGD penalty is the stem claims'
    # one rung with several budgets (optimizer_cifar10): the cells are budget x seed
    near = _near_chance(g, noisy)
    keep = g[~near]
    dropped = int(near.sum())
    note = f" ({dropped} cell(s) {NEAR} left out)" if dropped else ""

    def by(frame):
        return {f: frame[frame["fam"].eq(f)].set_index(["size", "epochs", "seed"])["gap"] for f in ("vitp", "vitc", "regnety")}

    def sgd(frame, note_=""):
        v = by(frame)["vitp"]
        per = "; ".join(f"{size} @ {ep}: {_cell_text(x)}" for (size, ep), x in v.groupby(level=["size", "epochs"]))
        return _paired("sgd", "vitp", "sgd − adamw", v.to_numpy(), f"ViTp SGD − AdamW (points) per size @ epochs {per}{note_}",
                       "size × budget × seed cells") if len(v) else None

    def gap(frame, note_=""):
        v = by(frame)
        both = pd.concat([v["vitp"].rename("p"), v["vitc"].rename("c")], axis=1, join="inner")
        per = "; ".join(f"{size} @ {ep}: ViTp {_cell_text(x['p'])}, ViTc {_cell_text(x['c'])}"
                        for (size, ep), x in both.groupby(level=["size", "epochs"]))
        return _paired("gap", "vitp vs vitc", "sgd − adamw", (both["p"] - both["c"]).to_numpy(),
                       f"SGD − AdamW per size @ epochs {per}; ViTp − ViTc{note_}", "size × budget × seed cells") \
            if len(both) else None

    for make in (sgd, gap):
        cl, bare = make(keep, note), make(g)
        if cl is None and bare is not None:  # every cell near chance: no test with the rule
            cl = Claim(bare.claim, bare.pair, bare.optimizer, "", np.nan, np.nan, np.nan,
                       f"every cell {NEAR}: nothing left to test{note}", 0, bare.statement, without=bare)
        elif cl is not None and dropped:
            cl.without = bare
        if cl is not None:
            out.append(cl)
    r = _regnety(plain, noisy, alpha)
    out += [r] if r else []
    for fam in ("vitp", "vitc", "regnety"):
        x = keep[keep["fam"].eq(fam)]
        if x["gflops"].nunique() >= 2:
            tau = st.kendalltau(np.log(x["gflops"]), x["gap"])
            per = ", ".join(f"{m} {_cell_text(v)}" for m, v in x.groupby("model", sort=False)["gap"])
            out.append(Claim("trend", fam, "sgd − adamw", DESCRIBED, tau.statistic, tau.pvalue, tau.pvalue,
                             f"{fam} SGD − AdamW by size (all budgets and seeds){note}: {per}; Kendall tau against "
                             f"flops {tau.statistic:+.2f}, two-sided p = {tau.pvalue:.3g}: the gap "
                             f"{'grows' if tau.statistic > 0 else 'shrinks'} with size"
                             + ("" if tau.pvalue < alpha else " (not significantly)"), len(x), STATEMENTS["trend"]))
    return out


def margin(plain: pd.DataFrame) -> tuple[float, float, int]:
    """RegNetY's equivalence margin: (1.96 √2 σ, σ, its degrees of freedom), σ its seed SD at the
    longest budget pooled over its cells (both optimizers, every size): two runs that differ only in
    seed differ by less than the margin 95% of the time."""
    r = plain[plain["fam"].eq("regnety")]
    r = r[r["epochs"].eq(r["epochs"].max())]
    grp = r.groupby(["model", "optimizer"])["error"]
    dof = int((grp.count() - 1).clip(lower=0).sum())
    if dof == 0:
        return np.nan, np.nan, 0
    sd = float(np.sqrt((grp.var(ddof=1) * (grp.count() - 1)).sum() / dof))
    return MARGIN_Z * np.sqrt(2) * sd, sd, dof


def equivalence(mean: float, se: float, df: int, m: float, dof: int,
                gammas=np.geomspace(1e-4, 0.5, 80)) -> tuple[float, float]:
    """(p within ±m, p beyond it) for a mean with standard error ``se`` (Student t, ``df``) against a
    margin ``m`` estimated from an SD with ``dof`` degrees of freedom. Two one-sided t tests at the
    margin's worst value in a 1 - γ chi-square confidence set (its lower bound for equivalence, its
    upper bound beyond it), plus γ, minimised over γ (Berger and Boos, 1994): an estimated margin
    taken as known makes the test fire far too often at the boundary (docs/statistics.md)."""
    lo = m * np.sqrt(dof / st.chi2.ppf(1 - gammas, dof))
    hi = m * np.sqrt(dof / st.chi2.ppf(gammas, dof))
    if se > 0:
        p_in = np.maximum(st.t.sf((mean + lo) / se, df), st.t.cdf((mean - lo) / se, df))
        p_out = st.t.sf((abs(mean) - hi) / se, df)
    else:
        p_in, p_out = (abs(mean) >= lo).astype(float), (abs(mean) <= hi).astype(float)
    return float(min(1.0, np.min(p_in + gammas))), float(min(1.0, np.min(p_out + gammas)))


def _regnety(plain: pd.DataFrame, noisy: set, alpha: float) -> Claim | None:
    g = gaps(plain)
    g = g[g["fam"].eq("regnety")]
    if g.empty:
        return None
    longest = g["epochs"].max()
    g = g[g["epochs"].eq(longest)]
    g = g[~_near_chance(g, noisy)]
    r = g["gap"].to_numpy(float)
    m, sd, dof = margin(plain)
    if r.size < 2 or not np.isfinite(m):
        return None
    mean, se, df_ = r.mean(), r.std(ddof=1) / np.sqrt(r.size), r.size - 1
    p_in, p_out = equivalence(mean, se, df_, m, dof)
    q = st.t.ppf(1 - alpha, df_) * se
    per = ", ".join(f"{mod} {_cell_text(v)}" for mod, v in g.groupby("model", sort=False)["gap"])
    return Claim("regnety", "regnety", "sgd − adamw", "", mean, p_in, p_out,
                 f"RegNetY SGD − AdamW at {longest:g} epochs (the longest budget), per size: {per}; over {r.size} size × "
                 f"seed cells: mean {mean:+.2f} [{mean - q:+.2f}, {mean + q:+.2f}] ({100 * (1 - 2 * alpha):.0f}% interval); "
                 f"margin ±{m:.2f} = 1.96 √2 × {sd:.2f}, RegNetY's seed SD at {longest:g} epochs ({dof} degrees of freedom, "
                 f"its uncertainty in the p-values); equivalence (within the margin): p = {fmt_p(p_in)}; beyond it: "
                 f"p = {fmt_p(p_out)}", r.size,
                 STATEMENTS["regnety"], interval=stats.Interval(mean, mean - q, mean + q),
                 detail=dict(margin=m, seed_sd=sd))


# ---- the stems


def _stems(c: pd.DataFrame, n_perm: int = 20_000) -> list[Claim]:
    """The stem ablation, where a size has at least two of the S_i stems beside C and P."""
    out = []
    for size in sorted(set(c.loc[c["stem"].ne(""), "size"])):
        s = c[c["size"].eq(size) & c["fam"].isin(["vitc", "vitp"])].copy()
        s["rank"] = np.where(s["fam"].eq("vitp"), 5, s["stem"].map(STEM_RANK))
        if s.loc[s["rank"] < 5, "rank"].nunique() < 3:
            continue
        pair = f"stems at {size}"
        for opt, g in s.groupby("optimizer"):
            out += _stem_pair(f"{opt} error (%)", "stem", pair, opt, g, "error", n_perm)
        w = s.pivot_table(index=["rank", "model", "seed"], columns="optimizer", values="error")
        if {"adamw", "sgd"} <= set(w.columns):
            pen = (w["sgd"] - w["adamw"]).dropna().reset_index(name="penalty")
            out += _stem_pair("SGD − AdamW (points)", "stem sgd", pair, "sgd − adamw", pen, "penalty", n_perm)
    return out


def _stem_pair(what, kind, pair, opt, g: pd.DataFrame, value: str, n_perm: int) -> list[Claim]:
    """The trend of ``value`` among C, S1..S4 and P against C, two claims."""
    out = []
    conv = g[g["rank"] < 5]
    rho, p, q = _spearman(conv["rank"], conv[value], n_perm, strata=conv["seed"])
    sign = "" if value == "error" else "+"
    means = ", ".join(f"{m} {_cell_text(x, sign)}"
                      for m, x in g.sort_values("rank").groupby("model", sort=False)[value])
    floor = 1 / (n_perm + 1)
    out.append(Claim(f"{kind} trend", pair, opt, "", rho, p, q,
                     f"{what}, seed means: {means}; Spearman rho against the stem's rank over C, S1..S4 ({len(conv)} runs) "
                     f"{rho:+.2f}, permutation within seeds {p_is(p, floor, False)} (the paper's direction), "
                     f"{p_is(q, floor, False)} (the other)", len(conv), STATEMENTS[f"{kind} trend"],
                     p_min=floor, exact=False, power_of=_trend_power(conv, value, rho)))
    w = g[g["rank"].isin([0, 5])].pivot_table(index="seed", columns="rank", values=value).dropna()
    if len(w) and {0, 5} <= set(w.columns):
        out.append(_paired(f"{kind} P vs C", pair, opt, (w[5] - w[0]).to_numpy(),
                           f"{what}: P {_cell_text(w[5], sign)}, C {_cell_text(w[0], sign)}; P − C per seed", "seeds"))
    return out


def _trend_power(conv: pd.DataFrame, value: str, rho: float):
    """power_of(level) of a stem trend: resampling whole seeds (each seed's stems together), the
    within-seed permutation test's power now and the seeds that 80% power needs."""
    blocks = [g[["rank", value]].to_numpy(float) for _, g in conv.groupby("seed")]

    def power_of(level):
        sign = 1 if rho >= 0 else -1
        n_perm = max(400, int(np.ceil(4 / level)))

        def draw(rng, m):
            pick = [blocks[i] for i in rng.integers(0, len(blocks), m)]
            return [np.concatenate(pick), np.repeat(np.arange(m), [len(b) for b in pick])]

        def decide(x):
            _, p, q = _spearman(x[0][:, 0], x[0][:, 1], n_perm, strata=x[1])
            return (p if sign > 0 else q) < level
        pw, need = stats.points_needed(draw, decide, len(blocks), TARGET_POWER, sims=100, grid=(4, 6, 8, 12, 16, 24, 32))
        out = dict(power=pw, n_needed=need, direction="the paper's" if sign > 0 else "the opposite")
        if need is not None and need > len(blocks):
            out["cost"] = f"{need} seeds"
        return out
    return power_of


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
