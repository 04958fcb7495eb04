"""Pure statistics on error vectors: EDFs, exact Δ counts, one-sided permutation tests, the expected
best of k runs with jackknife intervals, power by resampling, and pycls's good ranges.

Errors are top-1 errors in percent; lower is better. Every random function takes a ``seed`` and
draws from one ``numpy.random.Generator``, so results are reproducible.

What each interval and test means, and how often it covers or fires by mistake, is measured by
simulation on known distributions (``analysis.simulate``; docs/statistics.md; checked by
``tests/analysis/test_simulation.py``). The rules that follow from it:

* A sample minimum has no valid bootstrap interval (its bootstrap is degenerate), so the lowest
  error is shown without one. The best-error claims compare the **expected best of k runs**
  (``BEST_OF``), an unbiased U-statistic whose jackknife t interval covers at its level from
  ``MIN_POINTS`` runs on; below that no interval is given.
* Δ and within-k compare with a tolerance ``EPS`` far below one validation image's share, so a
  float's rounding never moves a run across a boundary.
* Tests are one-sided, in each direction. The signed-rank test's p-values are exact (its null
  distribution enumerated, ties included); the permutation and bootstrap ones are Monte Carlo, with
  a floor of 1 / (draws + 1) that a p-value at it is shown as "below". Each test says the smallest
  p-value it can give (``p_min``): a test that cannot reach α cannot decide a claim.
* A family of claims is decided by Holm's step-down (``holm``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats as _st
from scipy.special import comb

EPS = 1e-6  # points: far below one image's share of the error (100 / 2,000 images = 0.05)
BEST_OF = 4  # k of the expected best of k runs
MIN_POINTS = 24  # fewest runs per group at which its interval was measured to cover (docs/statistics.md)


class Interval(NamedTuple):
    """A point estimate with a (lo, hi) confidence interval (NaN where none is valid)."""

    value: float
    lo: float
    hi: float


class Directional(NamedTuple):
    """Two one-sided tests of one statistic: does ``a`` beat ``b`` (``p_a``), or ``b`` beat ``a`` (``p_b``)?

    ``d_a``/``d_b`` are the one-sided statistics and ``at_a``/``at_b`` where they are reached (for
    KS on Δ: the Δ, in points, at which one EDF lies furthest above the other).
    """

    d_a: float
    p_a: float
    d_b: float
    p_b: float
    at_a: float = np.nan
    at_b: float = np.nan


class Paired(NamedTuple):
    """Per-point differences (b - a): their median and mean, and a one-sided signed-rank test each way
    (``p_pos``: b - a > 0, ``p_neg``: b - a < 0); ``p_min``: the smallest p-value the test can give
    at this many pairs (2^-n, every sign one way), ``exact``: False for a Monte Carlo p-value (floor 1 / (draws + 1))."""

    n: int
    median_diff: float
    mean_diff: float
    p_pos: float
    p_neg: float
    p_min: float = 0.0
    exact: bool = True


def _finite(errors) -> np.ndarray:
    x = np.asarray(errors, dtype=float).ravel()
    return x[np.isfinite(x)]


# ---- EDFs and Δ


def edf(errors) -> tuple[np.ndarray, np.ndarray]:
    """Empirical distribution function of ``errors``.

    Returns sorted ``x`` and ``F`` with ``F[i]`` = fraction of trials with error <= x[i]; tied
    values share the same F. Non-finite errors (failed trials) are dropped; diverged trials must
    already carry the chance error.
    """
    x = np.sort(_finite(errors), kind="stable")
    if x.size == 0:
        return x, x.copy()
    cum = np.arange(1, x.size + 1) / x.size
    last_of_tie = np.searchsorted(x, x, side="right") - 1
    return x, cum[last_of_tie]


def edf_at(errors, grid) -> np.ndarray:
    """Evaluate the EDF (fraction <= g, within EPS) of ``errors`` at each point of ``grid``."""
    x, F = edf(errors)
    k = np.searchsorted(x, np.asarray(grid, dtype=float) + EPS, side="right")
    return np.concatenate([[0.0], F])[k]


def delta(errors, best: float | None = None) -> np.ndarray:
    """Error minus the reference best (the minimum unless ``best`` is given), with differences
    within EPS of a whole value snapped to it: 46.300000000000004 - 42.3 is 4, not 4.0000000000000036."""
    x = np.asarray(errors, dtype=float)
    d = x - (np.nanmin(x) if best is None else best)
    snapped = np.round(d, 6)
    return np.where(np.abs(d - snapped) < EPS, snapped, d)


def scaled_delta(errors, best: float, chance: float) -> np.ndarray:
    """Δ scaled by the headroom to chance: (e - best) / (chance - best); NaN if best == chance."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return delta(errors, best) / (chance - best)


def within(errors, best: float, points: float) -> float:
    """Fraction of runs whose error is within ``points`` of ``best`` (Δ <= points, to EPS)."""
    x = _finite(errors)
    return float(np.mean(delta(x, best) <= points + EPS)) if x.size else np.nan


def within_ci(errors, points: float, level: float = 0.95) -> Interval:
    """Fraction of runs within ``points`` of the lowest error, with an exact binomial interval:
    given the best run, the other n - 1 are independent draws, and the count of them within
    ``points`` is binomial; Clopper-Pearson bounds on its rate, with the best run added back in."""
    x = _finite(errors)
    if x.size == 0:
        return Interval(np.nan, np.nan, np.nan)
    n, m = x.size, x.size - 1
    c = int(np.sum(delta(x) <= points + EPS)) - 1
    if m == 0:
        return Interval(1.0, np.nan, np.nan)
    a = (1 - level) / 2
    lo = _st.beta.ppf(a, c, m - c + 1) if c > 0 else 0.0
    hi = _st.beta.ppf(1 - a, c + 1, m - c) if c < m else 1.0
    return Interval((c + 1) / n, (1 + m * lo) / n, (1 + m * hi) / n)


def delta_auc(errors, best: float, cutoff: float) -> float:
    """Area under the Δ-EDF from 0 to ``cutoff``, divided by ``cutoff`` (1 = all runs at best).

    Closed form: integral of F_Δ over [0, c] = mean(max(c - Δ, 0)) for Δ >= 0 (Δ clipped at 0).
    """
    d = np.clip(delta(_finite(errors), best), 0, None)
    return float(np.mean(np.clip(cutoff - d, 0, None)) / cutoff) if d.size else np.nan


def edf_band(errors, grid, n_boot: int = 1000, level: float = 0.95, seed: int = 0):
    """Pointwise bootstrap band (lo, hi) of the EDF on ``grid`` (values taken as given: a Δ-EDF's
    band does not carry the uncertainty of its reference best).

    The resampled counts between grid points are exactly Multinomial(n, EDF increments), so the
    bootstrap costs O(n_boot * len(grid)).
    """
    rng = np.random.default_rng(seed)
    x = _finite(errors)
    grid = np.asarray(grid, dtype=float)
    F = np.concatenate([[0.0], edf_at(x, grid), [1.0]])
    p = np.clip(np.diff(F), 0, None)
    counts = rng.multinomial(x.size, p / p.sum(), size=n_boot)
    boot = np.cumsum(counts, axis=1)[:, :-1] / x.size
    a = (1 - level) / 2
    lo, hi = np.quantile(boot, [a, 1 - a], axis=0)
    return lo, hi


# ---- one-sided permutation tests


def _ks_rows(a: np.ndarray, b: np.ndarray):
    """One-sided KS statistics max(F_a - F_b) and max(F_b - F_a) per row of samples ``a`` (rows x n_a)
    and ``b`` (rows x n_b), evaluated after each block of tied values (+inf values tie with each
    other), and for the first row the value at which each maximum is reached."""
    n_a, n_b = a.shape[-1], b.shape[-1]
    z = np.concatenate([a, b], axis=-1)
    order = np.argsort(z, axis=-1, kind="stable")
    zs = np.take_along_axis(z, order, -1)
    fa = np.cumsum(order < n_a, axis=-1) / n_a
    fb = np.cumsum(order >= n_a, axis=-1) / n_b
    with np.errstate(invalid="ignore"):  # inf - inf: tied runs at chance
        gaps = np.diff(zs, axis=-1)
    last = np.ones(zs.shape, bool)
    last[..., :-1] = (gaps > EPS) & np.isfinite(gaps)
    diff = np.where(last, fa - fb, np.nan)
    up, down = np.nanmax(diff, axis=-1), np.nanmax(-diff, axis=-1)
    return up, down, zs[0, np.nanargmax(diff[0])], zs[0, np.nanargmax(-diff[0])]


def ks_perm(a, b, n_perm: int = 2000, seed: int = 0) -> Directional:
    """Does ``a``'s EDF lie above ``b``'s (its values lower), or below? The one-sided two-sample KS
    statistics D_a = max(F_a - F_b) and D_b = max(F_b - F_a), with permutation p-values (the pooled
    values relabelled ``n_perm`` times): exact under ties for exchangeable samples, where the
    asymptotic and exact KS p-values are not. Values may be +inf (tied with each other)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size == 0 or b.size == 0:
        return Directional(np.nan, np.nan, np.nan, np.nan)
    d_a, d_b, at_a, at_b = _ks_rows(a[None], b[None])
    rng = np.random.default_rng(seed)
    pooled = rng.permuted(np.tile(np.concatenate([a, b]), (n_perm, 1)), axis=1)
    pa, pb, _, _ = _ks_rows(pooled[:, :a.size], pooled[:, a.size:])
    return Directional(float(d_a[0]), _pvalue(pa, d_a[0]), float(d_b[0]), _pvalue(pb, d_b[0]), float(at_a), float(at_b))


KS_NULLS = ("independent", "paired", "paired-min")


def ks_delta(a, b, chance: float = np.inf, n_boot: int = 2000, seed: int = 0, null: str = "independent") -> Directional:
    """Does ``a``'s Δ-EDF lie above ``b``'s (more runs near its best), or below?

    Δ is each group's error minus its own lowest error. Runs at the chance error (diverged, or
    learned nothing) have no meaningful Δ: they count beyond every finite Δ, tied across both
    groups (at chance - best they would sit at two places, one per group's best, and that step
    alone makes KS fire under the null). The statistics are the one-sided two-sample KS ones,
    D_a = max(F_a - F_b) and D_b = max(F_b - F_a), with a Monte Carlo null of ``n_boot`` draws in
    which each group takes its own lowest value again (each group's Δ is measured from its own,
    noisy, minimum; a plain permutation of the Δs misses that and fires too often, docs/statistics.md).

    ``null``: *independent*, both groups redrawn from the pooled Δs (it ignores that row i of ``a``
    and ``b`` is the same draw, and is then conservative); *paired* (rows aligned), the two values
    of each draw swapped at random, each group first centred at its own expected best of
    ``BEST_OF`` runs; *paired-min*, the same centred at each group's minimum, which fires too often
    when the pairing is strong (kept to show it, docs/statistics.md).
    """
    if null not in KS_NULLS:
        raise ValueError(f"unknown null {null!r}; valid: {', '.join(KS_NULLS)}")
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if null == "independent":
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    else:
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
    at_chance = [x >= chance - EPS for x in (a, b)]
    da, db = (np.where(c, np.inf, delta(x)) if x.size else x for x, c in zip((a, b), at_chance))
    if da.size < 2 or db.size < 2:
        return Directional(np.nan, np.nan, np.nan, np.nan)
    d_a, d_b, at_a, at_b = _ks_rows(da[None], db[None])
    rng = np.random.default_rng(seed)
    if null == "independent":
        pooled = np.concatenate([da, db])
        rows = [pooled[rng.integers(0, pooled.size, (n_boot, n))] for n in (da.size, db.size)]
    else:
        xa, xb = ((d if null == "paired-min" else np.where(c, np.inf, x - _level(x[~c])))
                  for d, x, c in zip((da, db), (a, b), at_chance))
        swap = rng.random((n_boot, da.size)) < 0.5
        rows = [np.where(swap, xb, xa), np.where(swap, xa, xb)]
    pa, pb, _, _ = _ks_rows(*(_from_own_min(x) for x in rows))
    return Directional(float(d_a[0]), _pvalue(pa, d_a[0]), float(d_b[0]), _pvalue(pb, d_b[0]), float(at_a), float(at_b))


def _level(x: np.ndarray) -> float:
    """A group's level for centring before a swap: its expected best of BEST_OF runs (the minimum
    below BEST_OF runs, 0 with none)."""
    return expected_best(x) if x.size >= BEST_OF else float(x.min()) if x.size else 0.0


def _from_own_min(x: np.ndarray) -> np.ndarray:
    """Each row of Δs measured again from its own lowest value (+inf, a run at chance, stays)."""
    low = x.min(axis=1, keepdims=True)
    return np.where(np.isfinite(x), x - np.where(np.isfinite(low), low, 0), np.inf)


def _pvalue(null: np.ndarray, observed: float) -> float:
    """Permutation p-value with the observed labelling counted among the permutations."""
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + null.size))


EXACT_MAX = 1000  # differences up to which the signed-rank null is enumerated (beyond: Monte Carlo)


def signed_rank(a, b, n_perm: int = 4000, seed: int = 0, exact_max: int = EXACT_MAX) -> Paired:
    """Paired differences ``b - a`` and the Wilcoxon signed-rank test each way, zeros dropped.
    The p-values are exact: the null distribution of the statistic under random signs is
    enumerated with the observed (tied) ranks; beyond ``exact_max`` non-zero differences, ``n_perm``
    random sign flips give a Monte Carlo p-value (``exact`` False)."""
    d = delta(np.asarray(b, dtype=float) - np.asarray(a, dtype=float), 0.0)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return Paired(0, np.nan, np.nan, np.nan, np.nan, np.nan)
    nz = d[np.abs(d) > EPS]
    if nz.size == 0:
        return Paired(d.size, 0.0, 0.0, 1.0, 1.0, 0.5 ** d.size)
    ranks = _st.rankdata(np.round(np.abs(nz), 6))
    w = float(np.sum(ranks * np.sign(nz)))
    if nz.size <= exact_max:
        p_pos, p_neg = _signed_rank_exact(ranks, w)
        return Paired(d.size, float(np.median(d)), float(d.mean()), p_pos, p_neg, 0.5 ** d.size)
    rng = np.random.default_rng(seed)
    null = (rng.integers(0, 2, (n_perm, nz.size)) * 2 - 1) @ ranks
    return Paired(d.size, float(np.median(d)), float(d.mean()), _pvalue(null, w), _pvalue(-null, -w),
                  max(0.5 ** d.size, 1 / (n_perm + 1)), exact=False)


def _signed_rank_exact(ranks: np.ndarray, w: float) -> tuple[float, float]:
    """P(W >= w) and P(W <= w) for W = sum of ranks x random signs: the distribution of the sum of
    the positive ranks (doubled: tied ranks are halves), counted one rank at a time over the sums
    reached so far (smallest ranks first), then scaled by 2^-n (counts below 2^1024: n <= EXACT_MAX)."""
    r2 = np.sort(np.rint(2 * ranks).astype(int))
    counts = np.zeros(r2.sum() + 1)
    counts[0] = 1.0
    top = 0  # the largest sum reached so far
    for r in r2:
        counts[r:top + r + 1] += counts[:top + 1]  # numpy buffers the overlap: the counts before this rank
        top += r
    dist = counts * 0.5 ** r2.size
    pos = int(np.rint(w + ranks.sum()))  # 2 x (sum of positive ranks) = w + sum of ranks
    return float(min(1.0, dist[pos:].sum())), float(min(1.0, dist[:pos + 1].sum()))


def holm(p, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Holm's step-down over a family of p-values (NaN: not in the family): the adjusted p-values
    (max over the steps so far of (m - step) x p, capped at 1) and the threshold each was tested at
    (alpha / (m - step), the step's own; NaN past the first p-value not rejected)."""
    p = np.asarray(p, float)
    adj, at = np.full(p.shape, np.nan), np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    running, open_ = 0.0, True
    for step, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - step) * p[i]))
        adj[i] = running
        if open_:
            at[i] = alpha / (m - step)
            open_ = p[i] <= at[i]
    return adj, at


def mean_interval(values, level: float = 0.95) -> Interval:
    """The mean of ``values`` with its Student t interval (NaN below two values)."""
    v = _finite(values)
    if v.size < 2:
        return Interval(float(v.mean()) if v.size else np.nan, np.nan, np.nan)
    h = _st.t.ppf(1 - (1 - level) / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return Interval(float(v.mean()), float(v.mean() - h), float(v.mean() + h))


def welch_contrast(groups, coef, level: float = 0.95) -> tuple[Interval, float, float]:
    """Σ coef_g x mean(group g) over independent groups of runs, its Welch t interval
    (Welch-Satterthwaite degrees of freedom) and one-sided p-values (> 0, < 0); NaN where a group
    has fewer than two runs."""
    xs = [_finite(g) for g in groups]
    if any(x.size < 2 for x in xs):
        value = float(sum(c * x.mean() for c, x in zip(coef, xs))) if all(x.size for x in xs) else np.nan
        return Interval(value, np.nan, np.nan), np.nan, np.nan
    value = float(sum(c * x.mean() for c, x in zip(coef, xs)))
    parts = np.array([c**2 * x.var(ddof=1) / x.size for c, x in zip(coef, xs)])
    se = float(np.sqrt(parts.sum()))
    if se == 0:
        return Interval(value, value, value), float(value <= 0), float(value >= 0)
    df = parts.sum() ** 2 / sum(v**2 / (x.size - 1) for v, x in zip(parts, xs))
    q = _st.t.ppf(1 - (1 - level) / 2, df)
    return (Interval(value, value - q * se, value + q * se), float(_st.t.sf(value / se, df)),
            float(_st.t.cdf(value / se, df)))


# ---- the expected best of k runs


def best_of_k_weights(n: int, k: int) -> np.ndarray:
    """w[i] = P(the i-th lowest of n values is the lowest of k drawn without replacement)."""
    i = np.arange(1, n + 1)
    return comb(n - i, k - 1) / comb(n, k)


def expected_best(errors, k: int = BEST_OF) -> float:
    """Expected lowest error of ``k`` runs drawn without replacement from these (an unbiased
    U-statistic of E[min of k runs]; k = 1 is the mean, k = n the minimum)."""
    x = np.sort(_finite(errors))
    if x.size < k:
        return np.nan
    return float(x @ best_of_k_weights(x.size, k))


def expected_best_curve(errors, ns) -> tuple[np.ndarray, np.ndarray]:
    """Expected best error after n random trials and its standard deviation, per n <= N
    (drawn without replacement from the N runs; NaN beyond N)."""
    v = np.sort(_finite(errors))
    ns = np.atleast_1d(np.asarray(ns, dtype=int))
    mean, sd = np.full(ns.size, np.nan), np.full(ns.size, np.nan)
    for j, n in enumerate(ns):
        if 1 <= n <= v.size:
            w = best_of_k_weights(v.size, n)
            mean[j] = w @ v
            sd[j] = np.sqrt(max(w @ v**2 - mean[j] ** 2, 0.0))
    return mean, sd


def _loo_best(x: np.ndarray, k: int) -> np.ndarray:
    """The expected best of k of ``x`` with each value left out in turn (order of ``x``), in O(n)."""
    n = x.size
    order = np.argsort(x, kind="stable")
    xs = x[order]
    w = best_of_k_weights(n - 1, k)
    below = np.r_[0.0, np.cumsum(xs[:-1] * w)]  # sum over sorted i < j of xs[i] w[i]
    above = np.r_[np.cumsum((xs[1:] * w)[::-1])[::-1], 0.0]  # sum over i > j of xs[i] w[i - 1]
    out = np.empty(n)
    out[order] = below + above
    return out


def _contrast(groups, coef, k: int) -> tuple[float, float, int]:
    """(Σ coef_g E_k(g), its jackknife standard error over points, points); the error is NaN below
    ``MIN_POINTS`` points, the value below k."""
    xs = [np.asarray(g, dtype=float) for g in groups]
    keep = np.all([np.isfinite(x) for x in xs], axis=0)
    xs = [x[keep] for x in xs]
    n = xs[0].size
    if n < k:
        return np.nan, np.nan, n
    value = float(sum(c * expected_best(x, k) for c, x in zip(coef, xs)))
    if n < MIN_POINTS:
        return value, np.nan, n
    loo = sum(c * _loo_best(x, k) for c, x in zip(coef, xs))
    return value, float(np.sqrt((n - 1) / n * np.sum((loo - loo.mean()) ** 2))), n


def best_contrast(groups, coef, k: int = BEST_OF, level: float = 0.95) -> Interval:
    """Σ coef_g x E_k(group g) over groups of errors aligned by point (equal lengths, row i of every
    group is point i; a point missing in one group is dropped from all), with a jackknife t interval
    that leaves out one point across all groups; no interval (NaN) below ``MIN_POINTS`` points.
    One group with coef (1,) is its expected best with its interval."""
    value, se, n = _contrast(groups, coef, k)
    if not np.isfinite(se):
        return Interval(value, np.nan, np.nan)
    q = _st.t.ppf(1 - (1 - level) / 2, n - 1)
    return Interval(value, value - q * se, value + q * se)


def contrast_test(groups, coef, k: int = BEST_OF) -> Directional:
    """One-sided tests of Σ coef_g E_k(g) > 0 (``p_a``) and < 0 (``p_b``): the t distribution's tails
    of value / jackknife error, df = points - 1 (NaN below ``MIN_POINTS`` points: no valid test)."""
    value, se, n = _contrast(groups, coef, k)
    if not np.isfinite(se):
        return Directional(value, np.nan, -value, np.nan)
    t = value / se if se > 0 else np.copysign(np.inf, value) if value else 0.0
    return Directional(value, float(_st.t.sf(t, n - 1)), -value, float(_st.t.cdf(t, n - 1)))


# ---- power


def power(draw, decide, n: int, sims: int = 200, seed: int = 0) -> float:
    """Chance that ``decide(sample)`` is True for samples ``draw(rng, n)``: resampled studies of n
    points per arm (``draw`` resamples the observed runs; ``decide`` runs the claim's own test)."""
    rng = np.random.default_rng(seed)
    return float(np.mean([decide(draw(rng, n)) for _ in range(sims)]))


def points_needed(draw, decide, n_now: int, target: float = 0.8, sims: int = 200, seed: int = 0,
                  grid=(24, 32, 48, 64, 96, 128, 192, 256, 384, 512)) -> tuple[float, int | None]:
    """(power at ``n_now``, the fewest points per arm in ``grid`` at which power reaches ``target``;
    None when even the largest does not). Power grows with n, so the grid is bisected."""
    now = power(draw, decide, n_now, sims, seed)
    sizes = [g for g in grid if g > n_now]
    if now >= target:
        return now, n_now
    if not sizes or power(draw, decide, sizes[-1], sims, seed) < target:
        return now, None
    lo, hi = -1, len(sizes) - 1  # power(sizes[hi]) >= target; sizes[lo] (or n_now) below it
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power(draw, decide, sizes[mid], sims, seed) >= target else (mid, hi)
    return now, sizes[hi]


# ---- pycls's good range (descriptive: not a confidence interval)


def _boot_min_index(n: int, m: int, n_boot: int, rng) -> np.ndarray:
    """Rank (0 = lowest) of the minimum of ``m`` draws with replacement from ``n`` sorted values.

    Exact in distribution: P(rank >= j) = (1 - j/n)^m, sampled by inversion in O(n_boot).
    """
    u = rng.random(n_boot)
    return np.minimum((n * (1.0 - u ** (1.0 / m))).astype(np.int64), n - 1)


def bootstrap_best(errors, n_boot: int = 1000, frac: float = 0.25, seed: int = 0) -> float:
    """pycls's robust best: the median lowest error over resamples of ``frac`` of the runs (a point
    estimate; its percentile interval is a bootstrap of a minimum and is not given)."""
    x = np.sort(_finite(errors))
    if x.size == 0:
        return np.nan
    rng = np.random.default_rng(seed)
    return float(np.median(x[_boot_min_index(x.size, max(1, round(frac * x.size)), n_boot, rng)]))


def good_range(errors, values, n_boot: int = 2500, frac: float = 0.25, seed: int = 0) -> Interval:
    """pycls good range: 2.5/50/97.5 percentiles of the best run's ``values`` over ``n_boot``
    resamples of ``frac`` of the runs. Returned as (median, lo, hi): a description of where good
    runs lie, as pycls defines it, not a confidence interval."""
    e = np.asarray(errors, dtype=float).ravel()
    v = np.asarray(values, dtype=float).ravel()
    keep = np.isfinite(e) & np.isfinite(v)
    e, v = e[keep], v[keep]
    if e.size == 0:
        return Interval(np.nan, np.nan, np.nan)
    order = np.argsort(e, kind="stable")
    rng = np.random.default_rng(seed)
    picked = v[order][_boot_min_index(e.size, max(1, round(frac * e.size)), n_boot, rng)]
    lo, mid, hi = np.percentile(picked, [2.5, 50, 97.5])
    return Interval(float(mid), float(lo), float(hi))
