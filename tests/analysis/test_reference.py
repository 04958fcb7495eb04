"""Pairing with a committed reference study (analysis.reference): when a study pairs, why not
when it does not, the overlay and the paired comparison."""
import numpy as np
import pandas as pd
import pytest

from analysis import reference, synthetic
from bench.core.records import COLUMNS

REF_MODELS = ["vitp_4gf", "vitc_4gf"]


def _ref(**kw):
    return synthetic.trials(n_points=24, models=REF_MODELS, study="lr_wd", **kw)


def _mine(model="regnety_4gf", **kw):
    return synthetic.trials(n_points=8, models=[model], study="lr_wd", **kw)


def test_a_model_of_another_family_pairs_by_draw():
    mine, ref = _mine(), _ref()
    assert set(mine["family"]) == {"regnety"} and not set(mine["family"]) & set(ref["family"])
    assert reference.mismatches(mine, ref) == []


def test_same_family_pairs_at_the_same_lr_and_wd():
    assert reference.mismatches(_mine("vitc_1gf"), _ref()) == []


@pytest.mark.parametrize("change,reason", [
    (dict(seed=1), "different sampling seed: 1 here, 0 in the reference"),
    (dict(epochs=(100,)), "different epochs: 100 here, 50 in the reference"),
])
def test_different_draws_or_epochs_are_named(change, reason):
    assert reason in reference.mismatches(_mine(**change), _ref())


def test_different_data_and_resolution_are_named():
    mine = _mine().assign(data="synthetic:2000", resolution=32)
    why = reference.mismatches(mine, _ref())
    assert "different data: synthetic:2000 here, synthetic in the reference" in why
    assert "different resolution: 32 here, 224 in the reference" in why


def test_different_ranges_of_a_shared_family_are_named():
    mine = _mine("vitc_1gf")
    mine.loc[mine["optimizer"].eq("adamw"), "lr"] *= 2  # e.g. another lr_scale for the vit family
    why = reference.mismatches(mine, _ref())
    assert len(why) == 1 and why[0].startswith("different ranges for vit/adamw: point 0 is lr")


def test_records_without_a_sampling_seed_pair_only_through_a_shared_family():
    mine, ref = _mine().assign(sampling_seed=pd.NA), _ref().assign(sampling_seed=pd.NA)
    assert "cannot tell whether the draws are the reference's" in reference.mismatches(mine, ref)[0]
    assert reference.mismatches(_mine("vitc_1gf").assign(sampling_seed=pd.NA), ref) == []


def test_overlay_refuses_with_the_reasons_and_keeps_the_users_own_runs():
    with pytest.raises(reference.ReferenceError, match="does not pair with reference lr_wd_local: different sampling seed"):
        reference.overlay(_mine(seed=1), _ref(), "lr_wd_local")
    mine = synthetic.trials(n_points=8, models=["regnety_4gf", "vitc_4gf"], study="mine", budget="local")
    table, ref_models, notes = reference.overlay(mine, _ref(), "lr_wd_local")
    assert ref_models == ["vitp_4gf"] and notes == ["vitc_4gf: your runs are shown, not the reference's"]
    assert len(table) == len(mine) + 2 * 24 and set(table["study"]) == {"mine"} and set(table["budget"]) == {"local"}
    assert list(table.columns) == list(COLUMNS)


def test_compare_finds_a_model_that_is_better_at_the_same_draws():
    ref = _ref()
    better = ref[ref["model"].eq("vitc_4gf")].assign(model="mine")
    better["error"] = np.where(better["diverged"], better["error"], better["error"] - 3.0)
    df, ref_models, _ = reference.overlay(better, ref, "ref")
    t = reference.compare(df, ["mine"], ref_models)
    assert len(t) == 4 and list(t.columns) == reference.COMPARE_COLS
    row = t[(t["reference"] == "vitc_4gf") & (t["optimizer"] == "adamw")].iloc[0]
    assert row["points"] == 24 and row["error"] == "lower" and row["p_lower"] < 0.05
    assert row["median_diff"] == pytest.approx(-3.0, abs=0.01) and row["best_diff"] == pytest.approx(-3.0, abs=0.01)
    assert row["robustness"] == "no significant difference"  # the same shape, shifted
    assert any(line.startswith("mine vs vitc_4gf (adamw, 24 paired points): error at the same draws lower")
               for line in reference.lines(t))


def test_compare_near_chance_is_inconclusive():
    ref = _ref()
    bad = ref[ref["model"].eq("vitc_4gf")].assign(model="mine", error=99.0)
    df, ref_models, _ = reference.overlay(bad, ref, "ref")
    assert set(reference.compare(df, ["mine"], ref_models)["error"]) == {"inconclusive (near chance)"}


def test_unknown_reference_lists_the_committed_ones():
    with pytest.raises(reference.ReferenceError, match="unknown reference 'nope'; valid: .*lr_wd_local"):
        reference.locate("nope")


def test_committed_reference_carries_its_draws():
    ref = reference.load("lr_wd_local")
    assert set(ref["sampling_seed"]) == {0} and reference.for_budget("lr_wd", "local")[0] == "lr_wd_local"
    assert reference.mismatches(ref[ref["model"].eq("vitc_mini")], ref[ref["model"].eq("vitp_mini")]) == []
