"""The tuned-point claims (analysis.tuned): training length, the optimizer gap across sizes, the stems."""
import numpy as np
import pandas as pd

from analysis import synthetic, tuned, verdict
from analysis.claims import Design
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
    v = _verdicts(_table(LADDER, slow={"vitp": 2.0}))
    assert v[("converge", "vitp vs vitc", "better optimizer")] == "reproduced"
    assert v[("sgd", "vitp", "sgd − adamw")] == v[("gap", "vitp vs vitc", "sgd − adamw")] == "reproduced"
    assert v[("regnety", "regnety", "sgd − adamw")] == "reproduced"  # synthetic RegNetY gap -0.1 and +0.3
    assert {k[1] for k in v if k[0] == "trend"} == {"vitp", "vitc", "regnety"}
    assert all(val == "described" for k, val in v.items() if k[0] == "trend")
    assert _verdicts(_table(LADDER, slow={"vitc": 2.0}))[("converge", "vitp vs vitc", "better optimizer")] == \
        "not reproduced"
    assert _verdicts(_table(LADDER))[("converge", "vitp vs vitc", "better optimizer")] == "inconclusive"


def test_gap_claims_turn_over_when_the_optimizers_swap():
    df = _table(LADDER)
    df["optimizer"] = df["optimizer"].map({"adamw": "sgd", "sgd": "adamw"}).astype("string")
    v = _verdicts(df)
    assert v[("sgd", "vitp", "sgd − adamw")] == v[("gap", "vitp vs vitc", "sgd − adamw")] == "not reproduced"


def test_a_regnety_gap_beyond_the_margin_is_not_near_zero():
    df = _table(LADDER)
    df.loc[df["model"].str.startswith("regnety") & df["optimizer"].eq("sgd"), "error"] += 3.0
    assert _verdicts(df)[("regnety", "regnety", "sgd − adamw")] == "not reproduced"


def test_cells_near_chance_are_left_out_of_the_gap_tests():
    df = _table(LADDER)
    near = df["model"].eq("vitp_1gf") & df["epochs"].eq(50)
    df.loc[near, "error"] = 80.0  # above half of chance (99.9 / 2)
    (c,) = [c for c in verdict.findings(df)["claims"] if c.claim == "sgd"]
    assert "2 cell(s) near chance left out" in c.evidence and c.n == 10
    near = tuned.gap_table(df).set_index(["model", "epochs"])["near chance"]  # drawn hollow in Fig. 3
    assert near[("vitp_1gf", 50)] and near.sum() == 1


def test_the_stem_order_and_sgds_penalty():
    v = _verdicts(_table(STEMS, epochs=(50,), seeds=3))
    assert v[("stem order", "stems at 4gf", "adamw")] == v[("stem order", "stems at 4gf", "sgd")] == "reproduced"
    assert v[("stem sgd", "stems at 4gf", "sgd − adamw")] == "reproduced"
    df = _table(STEMS, epochs=(50,), seeds=3)
    flip = {m: m2 for m, m2 in zip(STEMS, ["vitc_4gf", "vitp_4gf", "vitc_4gf_s4", "vitc_4gf_s3", "vitc_4gf_s2", "vitc_4gf_s1"])}
    df["model"] = df["model"].map(flip).astype("string")  # P <-> C, S1 <-> S4, S2 <-> S3: the order reversed
    assert _verdicts(df)[("stem order", "stems at 4gf", "adamw")] == "not reproduced"


def test_convergence_table_is_zero_at_the_longest_budget():
    c = tuned.cells(_table(LADDER))
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


def test_the_report_draws_a_tuned_study_as_the_paper_does():
    """A stem study: Table 3 one row per stem (C first, P last) with both optimizers; no EDFs of single
    points; the training-length figure says why it is missing. An optimizer study draws Fig. 2 and 3."""
    from analysis import report

    html = report.build(_table(STEMS, epochs=(50,), seeds=3), title="t")
    assert report.TUNED_ONLY.split(",")[0] in html
    table3 = html[html.index('id="stems"'):html.index('id="budget"')]
    at = [table3.index(f'data-v="{s}">') for s in ("C", "S1", "S2", "S3", "S4", "P")]
    assert at == sorted(at)
    assert "adamw error" in table3 and "sgd error" in table3 and "24.0 / 24.7" in table3  # paper's vitc_4gf
    assert "Not drawn: paper Fig. 2 compares training lengths" in html
    html = report.build(_table(LADDER), title="t")
    schedule = html[html.index('id="schedule"'):html.index('id="stems"')]
    assert "data:image/png;base64" in schedule and "Not drawn" not in schedule


def test_the_optimizer_study_claims_keep_their_level_under_the_null():
    """Simulated: the 9-model ladder x 2 optimizers x 3 budgets x 2 seeds, a per-(model, seed) offset
    (sd 2, shared by the budgets and optimizers) plus run noise (sd 1), ViTp and ViTc alike, no
    optimizer gap for either and RegNetY's gap exactly at the margin. Each claim's "reproduced" rate
    stays at its level: the convergence pairs of one seed share its longest-budget run and the
    signed-rank test treats them as independent, which this checks does not inflate it."""
    models = [f"{f}_{s}mf" for s in (1, 4, 18) for f in ("vitp", "vitc", "regnety")]
    base_df = _table(models)
    units, where = np.unique((base_df["model"] + base_df["seed"].astype(str)).to_numpy(), return_inverse=True)
    base = 30 + 10 * (200 / base_df["epochs"].to_numpy() - 1)
    base = base + tuned.MARGIN * (base_df["model"].str.startswith("regnety") & base_df["optimizer"].eq("sgd")).to_numpy()
    rng, reps, hits = np.random.default_rng(1), 300, {}
    for _ in range(reps):
        df = base_df.copy()
        df["error"] = base + rng.normal(0, 2, len(units))[where] + rng.normal(0, 1, len(df))
        for c in tuned.claims(df, Design()):
            hits[c.claim] = hits.get(c.claim, 0) + (c.verdict == "reproduced")
    bound = 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)
    assert all(hits.get(k, 0) / reps <= bound for k in ("converge", "sgd", "gap", "regnety")), hits
