"""Pure statistics on error vectors: EDFs, bootstraps, tests, expected best, good ranges.

Errors are top-1 errors in percent; lower is better. Every random function takes a
``seed`` and draws from one ``numpy.random.Generator``, so results are reproducible.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats as _st


class Interval(NamedTuple):
    """A point estimate with a (lo, hi) confidence interval."""

    value: float
    lo: float
    hi: float


class Test(NamedTuple):
    """A test statistic and its p-value."""

    statistic: float
    pvalue: float


class Paired(NamedTuple):
    """Per-point differences (b - a) and the Wilcoxon signed-rank test on them."""

    n: int
    median_diff: float
    mean_diff: float
    statistic: float
    pvalue: float


def _finite(errors) -> np.ndarray:
    x = np.asarray(errors, dtype=float).ravel()
    return x[np.isfinite(x)]


def edf(errors, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Empirical distribution function of ``errors``.

    Returns sorted ``x`` and ``F`` with ``F[i]`` = (weighted) fraction of trials with
    error <= x[i], i.e. F(e) = fraction with error < e just to the right of each step.
    ``F`` lies in (0, 1] and ends at 1; tied values share the same F. Non-finite errors
    (failed trials) are dropped; diverged trials must already carry the chance error.
    """
    x = np.asarray(errors, dtype=float).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    keep = np.isfinite(x)
    x, w = x[keep], w[keep]
    if x.size == 0:
        return x, x.copy()
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    cum = np.cumsum(w) / w.sum()
    last_of_tie = np.searchsorted(x, x, side="right") - 1
    return x, cum[last_of_tie]


def edf_at(errors, grid, weights=None) -> np.ndarray:
    """Evaluate the EDF (fraction <= g) of ``errors`` at each point of ``grid``."""
    x, F = edf(errors, weights)
    k = np.searchsorted(x, np.asarray(grid, dtype=float), side="right")
    return np.concatenate([[0.0], F])[k]


def delta(errors, best: float | None = None) -> np.ndarray:
    """Error minus the reference best (the minimum unless ``best`` is given)."""
    x = np.asarray(errors, dtype=float)
    return x - (np.nanmin(x) if best is None else best)


def scaled_delta(errors, best: float, chance: float) -> np.ndarray:
    """Δ scaled by the headroom to chance: (e - best) / (chance - best); NaN if best == chance."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.asarray(errors, dtype=float) - best) / (chance - best)


def edf_band(errors, grid, n_boot: int = 1000, level: float = 0.95, seed: int = 0, weights=None):
    """Pointwise bootstrap band (lo, hi) of the EDF on ``grid``.

    Unweighted: the resampled counts between grid points are exactly
    Multinomial(n, EDF increments), so the bootstrap costs O(n_boot * len(grid)).
    Weighted: trials are resampled by index (chunked over resamples).
    """
    rng = np.random.default_rng(seed)
    x = np.asarray(errors, dtype=float).ravel()
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float).ravel()
    keep = np.isfinite(x)
    x, w = x[keep], w[keep]
    grid = np.asarray(grid, dtype=float)
    if weights is None:
        F = np.concatenate([[0.0], edf_at(x, grid), [1.0]])
        p = np.clip(np.diff(F), 0, None)
        counts = rng.multinomial(x.size, p / p.sum(), size=n_boot)
        boot = np.cumsum(counts, axis=1)[:, :-1] / x.size
    else:
        bins = np.searchsorted(grid, x, side="left")  # trial counts for grid points >= x
        boot = np.empty((n_boot, grid.size))
        chunk = max(1, 2_000_000 // max(x.size, 1))
        for s in range(0, n_boot, chunk):
            b = min(chunk, n_boot - s)
            idx = rng.integers(0, x.size, size=(b, x.size))
            rows = np.repeat(np.arange(b), x.size)
            mass = np.zeros((b, grid.size + 1))
            np.add.at(mass, (rows, bins[idx].ravel()), w[idx].ravel())
            boot[s : s + b] = np.cumsum(mass, axis=1)[:, :-1] / mass.sum(axis=1, keepdims=True)
    a = (1 - level) / 2
    lo, hi = np.quantile(boot, [a, 1 - a], axis=0)
    return lo, hi


def ks(a, b) -> Test:
    """Two-sample Kolmogorov-Smirnov statistic and p-value between two error samples
    (scipy's exact p-value up to 1000 runs per sample, asymptotic beyond: exact is slow)."""
    a, b = _finite(a), _finite(b)
    res = _st.ks_2samp(a, b, method="auto" if max(a.size, b.size) <= 1000 else "asymp")
    return Test(float(res.statistic), float(res.pvalue))


def paired(a, b) -> Paired:
    """Wilcoxon signed-rank test on per-point differences ``b - a`` (aligned arrays)."""
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return Paired(0, np.nan, np.nan, np.nan, np.nan)
    if np.all(d == 0):
        return Paired(d.size, 0.0, 0.0, 0.0, 1.0)
    res = _st.wilcoxon(d)
    return Paired(d.size, float(np.median(d)), float(d.mean()), float(res.statistic), float(res.pvalue))


def _boot_min_index(n: int, m: int, n_boot: int, rng) -> np.ndarray:
    """Rank (0 = lowest) of the minimum of ``m`` draws with replacement from ``n`` sorted values.

    Exact in distribution: P(rank >= j) = (1 - j/n)^m, sampled by inversion in O(n_boot).
    """
    u = rng.random(n_boot)
    return np.minimum((n * (1.0 - u ** (1.0 / m))).astype(np.int64), n - 1)


def bootstrap_best(errors, n_boot: int = 1000, frac: float = 0.25, level: float = 0.95, seed: int = 0) -> Interval:
    """Robust best error: median (and CI) of the lowest error in bootstrap resamples.

    Each resample draws ``frac`` of the runs with replacement, as pycls's good range does.
    """
    x = np.sort(_finite(errors))
    if x.size == 0:
        return Interval(np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    mins = x[_boot_min_index(x.size, max(1, round(frac * x.size)), n_boot, rng)]
    a = (1 - level) / 2
    return Interval(float(np.median(mins)), *map(float, np.quantile(mins, [a, 1 - a])))


def good_range(errors, values, n_boot: int = 2500, frac: float = 0.25, seed: int = 0) -> Interval:
    """pycls good range: 2.5/50/97.5 percentiles of the best run's ``values`` over
    ``n_boot`` resamples of ``frac`` of the runs. Returned as (median, lo, hi)."""
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


def gap(a, b, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """Gap between best errors, min(b) - min(a), with a bootstrap CI (each sample resampled
    with replacement at full size, independently)."""
    xa, xb = np.sort(_finite(a)), np.sort(_finite(b))
    if xa.size == 0 or xb.size == 0:
        return Interval(np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    ga = xa[_boot_min_index(xa.size, xa.size, n_boot, rng)]
    gb = xb[_boot_min_index(xb.size, xb.size, n_boot, rng)]
    q = (1 - level) / 2
    lo, hi = np.quantile(gb - ga, [q, 1 - q])
    return Interval(float(xb[0] - xa[0]), float(lo), float(hi))


def _best_of_n_weights(N: int, ns) -> np.ndarray:
    """Weights w[k, i] = P(best of n_k draws is the i-th value, sorted worst to best)."""
    i = np.arange(1, N + 1) / N
    ns = np.atleast_1d(np.asarray(ns, dtype=float))[:, None]
    return i**ns - (i - 1.0 / N) ** ns


def expected_best_curve(errors, ns) -> tuple[np.ndarray, np.ndarray]:
    """Expected best error after n random trials (Dodge et al. 2019) and its std, per n."""
    v = np.sort(_finite(errors))[::-1]  # worst to best
    if v.size == 0:
        nan = np.full(np.size(ns), np.nan)
        return nan, nan
    w = _best_of_n_weights(v.size, ns)
    mean = w @ v
    var = np.clip(w @ v**2 - mean**2, 0, None)
    return mean, np.sqrt(var)


def expected_best(errors, n: int) -> float:
    """Expected best (lowest) error after ``n`` random trials drawn with replacement.

    E = sum_i v_(i) [(i/N)^n - ((i-1)/N)^n] with v sorted worst to best; n=1 gives the
    mean and large n tends to the minimum.
    """
    return float(expected_best_curve(errors, [n])[0][0])


def within(errors, best: float, points: float) -> float:
    """Fraction of runs whose error is within ``points`` of ``best`` (e - best <= points)."""
    x = _finite(errors)
    return float(np.mean(x - best <= points)) if x.size else np.nan


def delta_auc(errors, best: float, cutoff: float) -> float:
    """Area under the Δ-EDF from 0 to ``cutoff``, divided by ``cutoff`` (1 = all runs at best).

    Closed form: integral of F_Δ over [0, c] = mean(max(c - Δ, 0)) for Δ >= 0 (Δ clipped at 0).
    """
    d = np.clip(_finite(errors) - best, 0, None)
    return float(np.mean(np.clip(cutoff - d, 0, None)) / cutoff) if d.size else np.nan


def within_ci(errors, points: float, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """Fraction of runs within ``points`` of the lowest error, with a bootstrap CI: each resample
    (full size, with replacement) takes its own lowest error as the reference, as the paper's Δ does."""
    x = _finite(errors)
    if x.size == 0:
        return Interval(np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    boot = x[rng.integers(0, x.size, (n_boot, x.size))]
    frac = np.mean(boot - boot.min(axis=1, keepdims=True) <= points, axis=1)
    q = (1 - level) / 2
    return Interval(within(x, x.min(), points), *map(float, np.quantile(frac, [q, 1 - q])))


def gap_difference(a1, b1, a2, b2, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> Interval:
    """(min b1 - min a1) - (min b2 - min a2): how much larger model 1's gap is than model 2's,
    with a bootstrap CI (the four samples resampled independently at full size)."""
    xs = [np.sort(_finite(v)) for v in (a1, b1, a2, b2)]
    if any(x.size == 0 for x in xs):
        return Interval(np.nan, np.nan, np.nan)
    rng = np.random.default_rng(seed)
    m = [x[_boot_min_index(x.size, x.size, n_boot, rng)] for x in xs]
    q = (1 - level) / 2
    lo, hi = np.quantile((m[1] - m[0]) - (m[3] - m[2]), [q, 1 - q])
    return Interval(float((xs[1][0] - xs[0][0]) - (xs[3][0] - xs[2][0])), float(lo), float(hi))
