"""Maths of analysis.stats on vectors with known answers."""

import numpy as np
import pytest
from scipy import stats as st

import analysis
from analysis import stats


def test_edf_known_values_and_ties():
    x, F = analysis.edf([3.0, 1.0, 2.0, 2.0])
    assert x.tolist() == [1, 2, 2, 3]
    assert F.tolist() == [0.25, 0.75, 0.75, 1.0]
    assert np.all((F > 0) & (F <= 1))


def test_edf_drops_nan():
    x, F = analysis.edf([1.0, np.nan, 3.0, 3.0])
    assert x.tolist() == [1, 3, 3] and F.tolist() == [1 / 3, 1.0, 1.0]
    assert stats.edf_at([1, 2, 3], [0, 1, 2.5, 9]).tolist() == [0, 1 / 3, 2 / 3, 1]


def test_delta_and_scaled_delta():
    e = np.array([20.0, 22.0, 99.9])
    assert stats.delta(e).tolist() == [0, 2, pytest.approx(79.9)]
    x, F = analysis.edf(stats.delta(e))
    assert x[0] == 0 and F[-1] == 1
    assert stats.scaled_delta(e, 20.0, 99.9).tolist() == [0, pytest.approx(2 / 79.9), 1]


def test_ks_matches_scipy_and_max_edf_distance():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 80), rng.normal(0.5, 1, 60)
    t = stats.ks(a, b)
    ref = st.ks_2samp(a, b)
    assert t.statistic == pytest.approx(ref.statistic) and t.pvalue == pytest.approx(ref.pvalue)
    grid = np.sort(np.r_[a, b])
    assert t.statistic == pytest.approx(np.abs(stats.edf_at(a, grid) - stats.edf_at(b, grid)).max())


def test_paired_wilcoxon():
    a = np.arange(20.0)
    b = a + np.linspace(0.5, 1.5, 20)
    p = stats.paired(a, b)
    assert p.n == 20 and p.median_diff == pytest.approx(1.0)
    assert p.pvalue == pytest.approx(st.wilcoxon(b - a).pvalue)
    assert stats.paired(a, a).pvalue == 1.0


def test_expected_best_known_answers():
    e = np.array([30.0, 20.0, 25.0, 40.0])
    assert analysis.expected_best(e, 1) == pytest.approx(e.mean())
    assert analysis.expected_best(e, 10_000) == pytest.approx(20.0, abs=1e-6)
    # n=2 by enumeration over all ordered pairs with replacement
    assert analysis.expected_best(e, 2) == pytest.approx(np.mean(np.minimum.outer(e, e)))
    mean, sd = stats.expected_best_curve(e, [1, 2, 4, 8])
    assert np.all(np.diff(mean) < 0) and sd[0] == pytest.approx(e.std())


def test_bootstrap_reproducible_with_seed():
    e = np.random.default_rng(0).normal(30, 2, 200)
    assert stats.bootstrap_best(e, seed=3) == stats.bootstrap_best(e, seed=3)
    b = stats.bootstrap_best(e, seed=3)
    assert e.min() <= b.lo <= b.value <= b.hi
    grid = np.linspace(25, 35, 50)
    lo1, hi1 = stats.edf_band(e, grid, seed=7)
    lo2, hi2 = stats.edf_band(e, grid, seed=7)
    assert np.array_equal(lo1, lo2) and np.array_equal(hi1, hi2)
    F = stats.edf_at(e, grid)
    assert np.all(lo1 <= F + 1e-12) and np.all(F <= hi1 + 1e-12)
    # band width ~ binomial standard error
    mid = np.argmin(np.abs(F - 0.5))
    assert hi1[mid] - lo1[mid] == pytest.approx(2 * 1.96 * np.sqrt(0.25 / 200), rel=0.25)


def test_boot_min_index_matches_explicit_resampling():
    rng = np.random.default_rng(0)
    n, m = 40, 10
    fast = stats._boot_min_index(n, m, 20000, rng)
    slow = rng.integers(0, n, size=(20000, m)).min(axis=1)
    assert np.bincount(fast, minlength=n)[:5] / 20000 == pytest.approx(np.bincount(slow, minlength=n)[:5] / 20000, abs=0.015)


def test_good_range_finds_the_optimum():
    rng = np.random.default_rng(0)
    lr = 10 ** rng.uniform(-4, -2, 400)
    err = 30 + 10 * np.log10(lr / 1e-3) ** 2 + rng.normal(0, 0.2, 400)
    r = stats.good_range(err, lr, seed=0)
    assert r.lo <= 1e-3 <= r.hi and r.hi / r.lo < 10
    assert r == stats.good_range(err, lr, seed=0)


def test_gap_ci():
    rng = np.random.default_rng(0)
    a, b = rng.normal(30, 1, 64), rng.normal(35, 1, 64)
    g = stats.gap(a, b, seed=1)
    assert g.value == pytest.approx(b.min() - a.min())
    assert g.lo <= g.value <= g.hi and 2 < g.lo and g.hi < 8
    assert g == stats.gap(a, b, seed=1)
    z = stats.gap([1.0, 1.0], [1.0, 1.0])
    assert (z.value, z.lo, z.hi) == (0, 0, 0)


def test_within_and_delta_auc():
    e = np.array([10.0, 11.0, 13.0, 20.0])
    assert stats.within(e, 10.0, 1) == 0.5 and stats.within(e, 10.0, 8) == 0.75
    # integral of F over [0, 4] = (4 + 3 + 1 + 0) / 4 = 2 -> / 4
    assert stats.delta_auc(e, 10.0, 4.0) == pytest.approx(0.5)
    assert stats.delta_auc(np.full(5, 10.0), 10.0, 4.0) == 1.0
