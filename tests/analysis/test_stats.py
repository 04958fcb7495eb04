"""Maths of analysis.stats on vectors with known answers."""

import itertools

import numpy as np
import pytest
from scipy import stats as st

import analysis
from analysis import stats


def test_edf_known_values_and_ties():
    x, F = analysis.edf([3.0, 1.0, 2.0, 2.0])
    assert x.tolist() == [1, 2, 2, 3]
    assert F.tolist() == [0.25, 0.75, 0.75, 1.0]


def test_edf_drops_nan():
    x, F = analysis.edf([1.0, np.nan, 3.0, 3.0])
    assert x.tolist() == [1, 3, 3] and F.tolist() == [1 / 3, 1.0, 1.0]
    assert stats.edf_at([1, 2, 3], [0, 1, 2.5, 9]).tolist() == [0, 1 / 3, 2 / 3, 1]


def test_delta_and_scaled_delta():
    e = np.array([20.0, 22.0, 99.9])
    assert stats.delta(e).tolist() == [0, 2, pytest.approx(79.9)]
    assert stats.scaled_delta(e, 20.0, 99.9).tolist() == [0, pytest.approx(2 / 79.9), 1]


def test_float_rounding_never_moves_a_run_across_a_boundary():
    """46.300000000000004 - 42.3 = 4.0000000000000036 in floats: still within 4 points."""
    e = np.array([42.3, 46.300000000000004, 50.0])
    assert 46.300000000000004 - 42.3 > 4  # the trap itself
    assert stats.delta(e)[1] == 4.0
    assert stats.within(e, 42.3, 4) == pytest.approx(2 / 3)
    assert stats.within_ci(e, 4).value == pytest.approx(2 / 3)
    assert stats.edf_at(stats.delta(e), [4.0])[0] == pytest.approx(2 / 3)


def test_within_ci_is_clopper_pearson_on_the_other_runs():
    e = np.array([10.0, 11.0, 20.0, 30.0, 12.0, 40.0])
    iv = stats.within_ci(e, 2)  # the best + 2 of the other 5
    exact = st.binomtest(2, 5).proportion_ci(confidence_level=0.95, method="exact")
    assert iv.value == pytest.approx(3 / 6)
    assert iv.lo == pytest.approx((1 + 5 * exact.low) / 6) and iv.hi == pytest.approx((1 + 5 * exact.high) / 6)
    all_in = stats.within_ci([5.0] * 8, 1)
    assert all_in.value == 1.0 and all_in.hi == 1.0 and all_in.lo < 1.0


def test_ks_perm_statistics_are_scipys_one_sided_ones():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 1, 40), rng.normal(0.8, 1, 30)
    t = stats.ks_perm(a, b, n_perm=4000)
    assert t.d_a == pytest.approx(st.ks_2samp(a, b, alternative="greater").statistic)
    assert t.d_b == pytest.approx(st.ks_2samp(a, b, alternative="less").statistic)
    # continuous data: permutation p close to scipy's exact one-sided p
    assert t.p_a == pytest.approx(st.ks_2samp(a, b, alternative="greater", method="exact").pvalue, abs=0.01)
    assert t.p_b > 0.5


def test_ks_delta_follows_the_edfs_where_within_counts_disagree():
    """The audit's crossing EDFs: 4/24 ViTc runs and 3/24 ViTp runs within 4 points, every ViTp run
    within 8, 20 ViTc runs 15-20 points worse. The within-4 count favours ViTc; the EDFs do not."""
    vitc = np.r_[30.0, 31, 32, 33, np.linspace(45, 50, 20)]
    vitp = np.r_[40.0, 41, 42, np.linspace(44.5, 48, 21)]
    assert stats.within(vitc, vitc.min(), 4) > stats.within(vitp, vitp.min(), 4)
    t = stats.ks_delta(vitc, vitp)
    assert t.d_b > 0.7 and t.p_b < 0.001 and t.p_a > 0.5  # ViTp's Δ-EDF lies above: ViTc less robust


def test_ks_delta_ties_runs_at_chance_across_groups():
    """Diverged runs sit at chance - best, a different Δ in each group: counted beyond every finite Δ instead."""
    a = np.r_[20.0, 21, 22, 23, [90.0] * 6]
    b = a - 0.5
    b[-6:] = 90.0  # same shape, 0.5 points lower, the same diverged runs
    t = stats.ks_delta(a, b, chance=90.0)
    assert t.d_a == pytest.approx(0) and t.d_b == pytest.approx(0) and t.p_a == t.p_b == 1.0
    assert stats.ks_delta(a, b).d_a > 0  # without chance, the two atoms sit half a point apart


def test_signed_rank_is_one_sided_and_exact_under_zeros():
    a = np.arange(20.0)
    b = a + np.linspace(0.5, 1.5, 20)
    p = stats.signed_rank(a, b)
    assert p.n == 20 and p.median_diff == pytest.approx(1.0)
    assert p.p_pos == 2.0**-20 == p.p_min and p.p_neg == 1.0 and p.exact  # every sign positive: 1 of 2^20
    assert stats.signed_rank(a, a).p_pos == 1.0
    mixed = stats.signed_rank(a, a + np.r_[np.zeros(10), np.linspace(-1, 1, 10)])
    assert 0.2 < mixed.p_pos < 0.8 and 0.2 < mixed.p_neg < 0.8


@pytest.mark.parametrize("d", [
    [1.0, -2, 3, 4, 5, 6, -7, 8],  # no ties: scipy's exact test
    [1.0, 1, -1, 2, 2, 3, -3, 3, 0, 4],  # tied magnitudes and a zero
    [0.5, 0.5, 0.5, 0.5],  # n = 4, all ties: the smallest attainable p is 2^-4
])
def test_signed_rank_p_values_are_the_enumerated_null(d):
    """The exact p-values equal a brute-force enumeration of all 2^n sign flips of the tied ranks."""
    d = np.asarray(d)
    t = stats.signed_rank(np.zeros(d.size), d)
    nz = d[d != 0]
    ranks = st.rankdata(np.abs(nz))
    w = np.sum(ranks * np.sign(nz))
    null = np.array([np.dot(ranks, s) for s in itertools.product((-1, 1), repeat=nz.size)])
    assert t.p_pos == pytest.approx(np.mean(null >= w - 1e-9)) and t.p_neg == pytest.approx(np.mean(null <= w + 1e-9))
    assert t.p_min == 0.5**d.size and t.p_pos >= 0.5**nz.size
    if len(set(np.abs(d))) == d.size:
        assert t.p_pos == pytest.approx(st.wilcoxon(d, alternative="greater", method="exact").pvalue)


@pytest.mark.parametrize("n", [200, 1000])
def test_signed_rank_is_exact_at_the_largest_sizes(n):
    """Untied ranks up to EXACT_MAX: scipy's exact Wilcoxon p-value, each way (the counts reach 2^n)."""
    rng = np.random.default_rng(n)  # distinct magnitudes (the test rounds to 6 decimals before ranking)
    d = rng.permutation(np.arange(1, n + 1)) * np.where(rng.random(n) < 0.52, 1, -1)
    t = stats.signed_rank(np.zeros(n), d)
    assert t.exact and t.p_pos == pytest.approx(st.wilcoxon(d, alternative="greater", method="exact").pvalue, rel=1e-9)
    assert t.p_neg == pytest.approx(st.wilcoxon(d, alternative="less", method="exact").pvalue, rel=1e-9)


def test_signed_rank_beyond_the_exact_size_is_monte_carlo_with_its_floor():
    rng = np.random.default_rng(0)
    d = rng.normal(0.2, 1, 60)
    exact = stats.signed_rank(np.zeros(60), d)
    mc = stats.signed_rank(np.zeros(60), d, n_perm=20_000, exact_max=50)
    assert not mc.exact and mc.p_min == 1 / 20_001
    assert mc.p_pos == pytest.approx(exact.p_pos, abs=0.01)
    far = stats.signed_rank(np.zeros(60), np.abs(d) + 1, n_perm=999, exact_max=50)
    assert far.p_pos == far.p_min == 1 / 1000  # at the floor: shown as "< 0.001"
    from analysis.claims import fmt_p
    assert fmt_p(far.p_pos, far.p_min, far.exact) == "< 0.001" and fmt_p(exact.p_pos) == f"{exact.p_pos:.3g}"


def test_holm_steps_down_and_never_adjusts_below_the_raw_p():
    p = [0.01, 0.04, np.nan, 0.03, 0.2]
    adj, at = stats.holm(p, 0.05)
    assert adj[0] == pytest.approx(0.04) and adj[3] == pytest.approx(0.09) and adj[1] == pytest.approx(0.09)
    assert adj[4] == pytest.approx(0.2) and np.isnan(adj[2])
    assert at[0] == pytest.approx(0.0125) and at[3] == pytest.approx(0.05 / 3) and np.isnan(at[1])
    assert np.all(adj[np.isfinite(adj)] >= np.asarray(p)[np.isfinite(adj)])


def test_welch_contrast_is_scipys_welch_test():
    a, b = np.array([1.0, 2, 3, 4]), np.array([2.0, 3, 4, 6, 7])
    ci, p_pos, p_neg = stats.welch_contrast([a, b], (1, -1))
    ref = st.ttest_ind(a, b, equal_var=False, alternative="greater")
    assert ci.value == pytest.approx(a.mean() - b.mean()) and p_pos == pytest.approx(ref.pvalue)
    assert p_neg == pytest.approx(1 - ref.pvalue) and ci.lo < ci.value < ci.hi
    assert np.isnan(stats.welch_contrast([a, b[:1]], (1, -1))[1])


def test_paired_ks_null_swaps_within_draws():
    """The paired null: an arm shifted by a constant has the same Δs (D = 0, p = 1); a ViTc that
    keeps its runs near its best at every draw is found; an unknown null is refused."""
    rng = np.random.default_rng(0)
    base = 20 + 20 * rng.beta(1, 3, 48)
    a = base + rng.normal(0, 1, 48)
    t = stats.ks_delta(a - 7.0, a, null="paired")
    assert t.d_a == pytest.approx(0) and t.d_b == pytest.approx(0) and t.p_a == t.p_b == 1.0
    tight = base.min() + 0.3 * (base - base.min())  # the same draws, Δs a third as large
    t = stats.ks_delta(tight, a, null="paired")
    assert t.d_a > 0.3 and t.p_a < 0.01 and t.p_b > 0.5
    with pytest.raises(ValueError, match="unknown null"):
        stats.ks_delta(a, a, null="swap")


def test_expected_best_is_the_mean_min_of_k_without_replacement():
    e = np.array([30.0, 20.0, 25.0, 40.0, 35.0])
    assert stats.expected_best(e, 1) == pytest.approx(e.mean())
    assert stats.expected_best(e, 5) == 20.0
    for k in (2, 3):
        brute = np.mean([min(c) for c in itertools.combinations(e, k)])
        assert stats.expected_best(e, k) == pytest.approx(brute)
    mean, sd = stats.expected_best_curve(e, [1, 2, 5, 6])
    assert mean[0] == pytest.approx(e.mean()) and mean[2] == 20.0 and sd[2] == 0 and np.isnan(mean[3])


def test_leave_one_out_expected_best_matches_brute_force():
    x = np.array([3.0, 1.0, 2.0, 5.0, 4.0, 2.0])
    brute = [stats.expected_best(np.delete(x, i), 2) for i in range(x.size)]
    assert stats._loo_best(x, 2) == pytest.approx(brute)


def test_best_contrast_interval_and_its_floor():
    rng = np.random.default_rng(0)
    a, b = rng.normal(30, 2, 48), rng.normal(35, 2, 48)
    iv = stats.best_contrast([b, a], (1, -1))
    assert iv.value == pytest.approx(stats.expected_best(b) - stats.expected_best(a))
    assert iv.lo < iv.value < iv.hi and iv.lo > 0
    t = stats.contrast_test([b, a], (1, -1))
    assert t.p_a < 0.001 and t.p_a + t.p_b == pytest.approx(1)
    short = stats.best_contrast([a[:20]], (1,))
    assert np.isfinite(short.value) and np.isnan(short.lo)  # fewer than MIN_POINTS: no interval
    assert np.isnan(stats.contrast_test([a[:20], b[:20]], (1, -1)).p_a)


def test_points_needed_grows_as_the_effect_shrinks():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 1, 200)

    def draw_for(shift):
        return lambda r, n: [r.choice(base, n), r.choice(base, n) + shift]

    def decide(sample):
        return stats.contrast_test(sample, (1, -1)).p_b < 0.05  # b's expected best higher

    big = stats.points_needed(draw_for(1.5), decide, 24, sims=50)
    small = stats.points_needed(draw_for(0.3), decide, 24, sims=50)
    assert big[0] > 0.8 and big[1] == 24
    assert small[0] < big[0] and (small[1] is None or small[1] > 24)


def test_good_range_finds_the_optimum():
    rng = np.random.default_rng(0)
    lr = 10 ** rng.uniform(-4, -2, 400)
    err = 30 + 10 * np.log10(lr / 1e-3) ** 2 + rng.normal(0, 0.2, 400)
    r = stats.good_range(err, lr, seed=0)
    assert r.lo <= 1e-3 <= r.hi and r.hi / r.lo < 10
    assert r == stats.good_range(err, lr, seed=0)


def test_bootstraps_reproducible_with_seed():
    e = np.random.default_rng(0).normal(30, 2, 200)
    assert stats.bootstrap_best(e, seed=3) == stats.bootstrap_best(e, seed=3)
    assert e.min() <= stats.bootstrap_best(e, seed=3) <= np.median(e)
    grid = np.linspace(25, 35, 50)
    lo1, hi1 = stats.edf_band(e, grid, seed=7)
    lo2, hi2 = stats.edf_band(e, grid, seed=7)
    assert np.array_equal(lo1, lo2) and np.array_equal(hi1, hi2)
    F = stats.edf_at(e, grid)
    assert np.all(lo1 <= F + 1e-12) and np.all(F <= hi1 + 1e-12)
    mid = np.argmin(np.abs(F - 0.5))  # band width ~ binomial standard error
    assert hi1[mid] - lo1[mid] == pytest.approx(2 * 1.96 * np.sqrt(0.25 / 200), rel=0.25)


def test_boot_min_index_matches_explicit_resampling():
    rng = np.random.default_rng(0)
    n, m = 40, 10
    fast = stats._boot_min_index(n, m, 20000, rng)
    slow = rng.integers(0, n, size=(20000, m)).min(axis=1)
    assert np.bincount(fast, minlength=n)[:5] / 20000 == pytest.approx(np.bincount(slow, minlength=n)[:5] / 20000, abs=0.015)


def test_within_and_delta_auc():
    e = np.array([10.0, 11.0, 13.0, 20.0])
    assert stats.within(e, 10.0, 1) == 0.5 and stats.within(e, 10.0, 8) == 0.75
    # integral of F over [0, 4] = (4 + 3 + 1 + 0) / 4 = 2 -> / 4
    assert stats.delta_auc(e, 10.0, 4.0) == pytest.approx(0.5)
    assert stats.delta_auc(np.full(5, 10.0), 10.0, 4.0) == 1.0
