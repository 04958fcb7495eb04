"""The tuned-point claims (analysis.tuned): training length, the optimizer gap across sizes, the stems."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from analysis import summary, synthetic, tuned, verdict
from bench.core import records

LADDER = ["vitp_1gf", "vitc_1gf", "regnety_1gf", "vitp_4gf", "vitc_4gf", "regnety_4gf"]
STEMS = ["vitp_4gf", "vitc_4gf", "vitc_4gf_s1", "vitc_4gf_s2", "vitc_4gf_s3", "vitc_4gf_s4"]


def _table(models, epochs=(50, 100, 200), seeds=2, slow=None) -> pd.DataFrame:
    """One tuned point per model and optimizer; ``slow`` (family -> points) adds that much error at the
    shorter budgets, shrinking with the budget: a family that converges slower."""
    df = records.tidy(synthetic.trials(n_points=1, models=models, seeds=seeds, epochs=epochs, seed=0))
    for fam, extra in (slow or {}).items():
        hit = df["model"].str.startswith(fam)
        df.loc[hit, "error"] += extra * (max(epochs) / df.loc[hit, "epochs"] - 1)
    return df


def _verdicts(df) -> dict:
    return {(c.claim, c.pair, c.optimizer): c.verdict for c in verdict.findings(df)["claims"]}


def test_the_optimizer_study_claims_follow_the_data():
    v = _verdicts(_table(LADDER, seeds=5))
    assert v[("converge vitc", "vitp vs vitc", "better optimizer")] == "reproduced"  # ViTc at 100 below ViTp at 200
    assert v[("sgd", "vitp", "sgd − adamw")] == v[("gap", "vitp vs vitc", "sgd − adamw")] == "reproduced"
    assert v[("regnety", "regnety", "sgd − adamw")] == "reproduced"  # synthetic RegNetY gap -0.1 and -0.2
    assert {k[1] for k in v if k[0] == "trend"} == {"vitp", "vitc", "regnety"}
    assert all(val == "described" for k, val in v.items() if k[0] == "trend")
    worse = _table(LADDER, seeds=5)
    worse.loc[worse["model"].str.startswith("vitc"), "error"] += 10.0  # ViTc at half the budget above ViTp
    assert _verdicts(worse)[("converge vitc", "vitp vs vitc", "better optimizer")] == "not reproduced"


def test_convergence_is_not_judged_before_the_longest_budget_plateaus():
    """ViTc still 4 points better at 200 than at 100 epochs (seed noise 0.3): no verdict on convergence,
    the time-to-target test shown, and its verdict without the rule; the learning curves fitted."""
    f = verdict.findings(_table(LADDER, seeds=5, slow={"vitc": 4.0}), power=False)
    (c,) = [c for c in f["claims"] if c.claim == "converge vitc"]
    assert c.verdict == tuned.PLATEAU and c.blocked and c.without.verdict in ("reproduced", "inconclusive")
    assert "vitc improves by +4" in c.evidence and "time to target: ViTc at 100 epochs against ViTp at 200" in c.evidence
    assert not np.isfinite(c.p_adjusted)  # a rule decides it: not in Holm's family
    curves = f["curves"].set_index("model")  # ViTc: e(t) ≈ e - 4 + 800 / t, within 1 point of e∞ near 800 epochs
    r = curves.loc["vitc_4gf"]
    assert set(curves.index) == set(LADDER) and r["b"] == pytest.approx(1, rel=0.2)
    assert 600 < r["within"] < 1200 and r["lo"] <= r["within"] <= r["hi"]


def test_a_learning_curve_recovers_its_asymptote_and_says_when_it_cannot():
    t = np.array([2.0, 4, 8, 16])
    fit = tuned._fit(t, 10 + 40 * t**-1.5)
    assert fit == pytest.approx((10, 40, 1.5), rel=0.02)
    assert tuned._epochs_within(fit) == pytest.approx(40 ** (1 / 1.5), rel=0.05)
    assert tuned._fit(t[:3], np.array([60.0, 50, 30])) is None  # the last step larger: not bending


def test_gap_claims_turn_over_when_the_optimizers_swap():
    df = _table(LADDER, seeds=5)
    df["optimizer"] = df["optimizer"].map({"adamw": "sgd", "sgd": "adamw"}).astype("string")
    v = _verdicts(df)
    assert v[("sgd", "vitp", "sgd − adamw")] == v[("gap", "vitp vs vitc", "sgd − adamw")] == "not reproduced"


def test_one_rung_over_several_budgets_has_the_gap_claims():
    """optimizer_cifar10 trains one rung (4 MF) at three budgets: its cells are budget x seed; a stem
    study (one rung, one budget) leaves the SGD penalty to the stem claims."""
    one = [m for m in LADDER if m.endswith("_4gf")]
    v = _verdicts(_table(one, seeds=3))
    assert v[("sgd", "vitp", "sgd − adamw")] == v[("gap", "vitp vs vitc", "sgd − adamw")] == "reproduced"
    assert ("regnety", "regnety", "sgd − adamw") in v and not any(k[0] == "trend" for k in v)
    assert not {"sgd", "gap"} & {k[0] for k in _verdicts(_table(STEMS, epochs=(50,), seeds=3))}


def test_a_regnety_gap_beyond_the_margin_is_not_near_zero():
    df = _table(LADDER, seeds=5)
    df.loc[df["model"].str.startswith("regnety") & df["optimizer"].eq("sgd"), "error"] += 3.0
    f = verdict.findings(df, power=False)
    (c,) = [c for c in f["claims"] if c.claim == "regnety"]
    assert c.verdict == "not reproduced" and c.n == 10 and "at 200 epochs (the longest budget)" in c.evidence
    m, sd, dof = tuned.margin(summary.tuned_cells(df))
    assert m == pytest.approx(1.96 * np.sqrt(2) * sd) and dof == 2 * 2 * 4 and 0.1 < sd < 0.6


def test_cells_near_chance_are_left_out_of_the_gap_tests():
    df = _table(LADDER)
    near = df["model"].eq("vitp_1gf") & df["epochs"].eq(50)
    df.loc[near, "error"] = 80.0  # above half of chance (99.9 / 2)
    (c,) = [c for c in verdict.findings(df, power=False)["claims"] if c.claim == "sgd"]
    assert "2 cell(s) near chance left out" in c.evidence and c.n == 10 and c.without.n == 12
    near = tuned.gap_table(df).set_index(["model", "epochs"])["near chance"]  # drawn hollow in Fig. 3
    assert near[("vitp_1gf", 50)] and near.sum() == 1


def test_too_few_cells_are_undecidable_and_say_what_would_decide():
    """Four cells left: the exact signed-rank test cannot go below 2^-4 = 0.0625, so no outcome could
    decide the claim; the verdict says so, with the power now and the cells that would decide it."""
    df = _table(["vitp_1gf", "vitc_1gf", "vitp_4gf", "vitc_4gf"], epochs=(50, 200))
    df.loc[df["epochs"].eq(50) & df["model"].str.startswith("vitp"), "error"] = 80.0
    f = verdict.findings(df)
    (c,) = [c for c in f["claims"] if c.claim == "sgd"]
    assert c.n == 4 and c.p_min == 0.0625 and c.verdict == "undecidable at this size"
    assert c.power == 0 and c.n_needed and c.n_needed > 4 and "smallest attainable p" in c.cost
    (line,) = [x for x in f["lines"] if x.startswith("UNDECIDABLE") and "SGD − AdamW gap is positive" in x]
    assert "is 0.0625, not below α = 0.05: no outcome could decide it" in line


def test_holm_decides_a_family_and_the_raw_p_alone_does_not():
    """Two claims at raw p 0.03 and 0.04 in a family of three: Holm's first step asks 0.05 / 3."""
    from analysis.claims import Claim, judge

    def claim(p):
        return Claim("x", "a", "b", "", 1.0, p, 1 - p, "", 20)
    cl = judge([claim(0.03), claim(0.04), claim(0.6)], 0.05, power=False)
    assert [c.verdict for c in cl] == ["inconclusive"] * 3
    assert cl[0].p_adjusted == pytest.approx(0.09) and cl[1].p_adjusted == pytest.approx(0.09)
    cl = judge([claim(0.01), claim(0.02), claim(0.6)], 0.05, power=False)
    assert [c.verdict for c in cl] == ["reproduced", "reproduced", "inconclusive"]


def test_the_stem_trend_and_p_against_c_apart():
    v = _verdicts(_table(STEMS, epochs=(50,), seeds=3))
    assert v[("stem trend", "stems at 4gf", "adamw")] == v[("stem trend", "stems at 4gf", "sgd")] == "reproduced"
    assert v[("stem P vs C", "stems at 4gf", "adamw")] == "undecidable at this size"  # 3 seeds: p >= 1/8
    assert {k[0] for k in v} == {"stem trend", "stem P vs C", "stem sgd trend", "stem sgd P vs C"}
    df = _table(STEMS, epochs=(50,), seeds=3)
    flip = {m: m2 for m, m2 in zip(STEMS, ["vitp_4gf", "vitc_4gf_s4", "vitc_4gf_s3", "vitc_4gf_s2", "vitc_4gf_s1", "vitc_4gf"])}
    df["model"] = df["model"].map(flip).astype("string")  # C <-> S4, S1 <-> S3: the trend reversed
    assert _verdicts(df)[("stem trend", "stems at 4gf", "adamw")] == "not reproduced"


def test_convergence_table_is_zero_at_the_longest_budget():
    c = summary.tuned_cells(_table(LADDER))
    conv = tuned.convergence(c[c["stem"].eq("")])
    assert np.allclose(conv.loc[conv["epochs"].eq(conv["longest"]), "delta"], 0)
    assert set(conv["model"]) == set(LADDER)


def test_the_stem_order_test_keeps_its_level_under_seed_effects_and_finds_a_real_order():
    """Simulated: 6 stems x 4 seeds, a shared per-seed offset (sd 3) plus run noise (sd 1). With no stem
    effect the within-seed permutation test rejects at most at its level; with +0.5 per stem rank it
    rejects almost always."""
    rng = np.random.default_rng(0)
    rank, seed = np.tile(np.arange(6), 4), np.repeat(np.arange(4), 6)
    reps = 300

    def rate(effect):
        hits = 0
        for i in range(reps):
            y = rng.normal(0, 3, 4)[seed] + rng.normal(0, 1, 24) + effect * rank
            hits += tuned._spearman(rank, y, 999, strata=seed, seed=i)[1] < 0.05
        return hits / reps

    assert rate(0.0) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)
    assert rate(0.5) >= 0.9


def test_equivalence_to_an_estimated_margin_holds_its_level_at_the_boundary():
    """RegNetY's margin is estimated from 6 cells of 2 seeds: taken as known, the equivalence test at a
    true gap exactly at the margin says 'within' far more often than α; with the margin's uncertainty
    (tuned.equivalence) it stays below α, and a true gap of zero is still found."""
    rng, reps, sigma = np.random.default_rng(0), 400, np.sqrt(5)
    true_margin = tuned.MARGIN_Z * np.sqrt(2) * sigma
    naive = honest = found = 0
    for _ in range(reps):
        sd = np.sqrt(np.mean(rng.normal(0, sigma, (6, 2)).var(axis=1, ddof=1)))
        m = tuned.MARGIN_Z * np.sqrt(2) * sd
        for gap, at_boundary in ((true_margin, True), (0.0, False)):
            g = rng.normal(gap, np.sqrt(2), 6)
            mean, se = g.mean(), g.std(ddof=1) / np.sqrt(6)
            if at_boundary:
                naive += max(st.t.sf((mean + m) / se, 5), st.t.cdf((mean - m) / se, 5)) < 0.05
                honest += tuned.equivalence(mean, se, 5, m, 6)[0] < 0.05
            else:
                found += tuned.equivalence(mean, se, 5, m, 6)[0] < 0.05
    assert naive / reps > 0.1 and honest / reps <= 0.05 and found / reps > 0.5
