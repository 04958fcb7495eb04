"""The committed reference data (results/reference/) still loads and means what its README says."""
from pathlib import Path

import analysis

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "results" / "reference"


def test_quickstart_reference_loads_as_a_paired_study():
    df = analysis.load_trials(REFERENCE / "quickstart_lr_wd.csv")
    assert len(df) == 16 and set(df["model"]) == {"vitp_mini", "vitc_mini"} and set(df["optimizer"]) == {"adamw", "sgd"}
    assert (df["state"] == "COMPLETE").all() and df["error"].between(0, 90).all()
    # paired: every point has the same (lr, wd) for both models
    per_point = df.groupby(["optimizer", "point"])[["lr", "wd"]].nunique()
    assert (per_point == 1).all().all()


LOCAL = REFERENCE / "lr_wd_local"


def test_reference_study_is_paired_and_complete():
    df = analysis.load_trials(LOCAL / "trials.csv")
    assert set(df["model"]) == {"vitp_mini", "vitc_mini"} and set(df["optimizer"]) == {"adamw", "sgd"}
    assert (df["state"] == "COMPLETE").all() and (df["sampling_seed"] == 0).all()
    search = df[df["seed"] < 1000]
    # paired: every model has the same (lr, wd) at a point
    per_point = search.groupby(["optimizer", "point"])[["lr", "wd"]].nunique()
    assert (per_point == 1).all().all()
    assert set(search.groupby(["model", "optimizer"])["point"].nunique()) == {48}
    # the confirm step: the 2 best points of each arm, 2 new seeds each
    confirm = df[df["seed"] >= 1000]
    assert set(confirm.groupby(["model", "optimizer"]).size()) == {4}


def test_reference_study_points_are_the_study_draws():
    """Point i is draw u_i of the sampling seed, mapped into the study's (calibrated) window, so the
    grown study's first 24 points are the 24-point study's."""
    import numpy as np

    from bench.core import studies

    resolved = studies.resolve(studies.load("lr_wd"), studies.Overrides(budget="local", trials=48))
    df = analysis.load_trials(LOCAL / "trials.csv")
    for opt in ("adamw", "sgd"):
        rows = df[(df["family"] == "vit") & (df["optimizer"] == opt)]
        rows = rows.drop_duplicates("point").set_index("point").sort_index()
        drawn = resolved.lr_wd("vitp_mini", opt)
        np.testing.assert_allclose(rows[["lr", "wd"]].to_numpy(), drawn, rtol=1e-12, err_msg=opt)


def test_reference_study_was_grown_until_decided():
    import json

    design = json.loads((LOCAL / "design.json").read_text())
    assert design["looks"] == [24, 48] and [r["points"] for r in design["rounds"]] == [24, 48]


def test_reference_tables_load_unchanged():
    """Behaviour unchanged: each committed table is already tidy (export -> load is the identity)."""
    import pandas as pd

    from bench.core import records

    for csv in sorted(REFERENCE.rglob("*.csv")):
        if "calibration" in csv.parts:
            continue
        raw = pd.read_csv(csv)
        assert list(raw.columns) == list(records.COLUMNS), csv
        pd.testing.assert_frame_equal(analysis.load_trials(csv), records.tidy(raw))


def test_committed_own_model_example_pairs_with_the_reference():
    """results/examples/: a user's model on the reference's first draws, compared without retraining it."""
    from analysis import reference

    mine = analysis.load_trials(ROOT / "results/examples/regnetx_002_vs_lr_wd_local/trials.csv")
    ref = reference.load("lr_wd_local")
    assert reference.mismatches(mine, ref) == []
    df, ref_models, _ = reference.overlay(mine, ref, "lr_wd_local")
    table = reference.compare(df, ["regnetx_002"], ref_models)
    assert len(table) == 4 and set(table["points"]) == {8}  # vitp_mini, vitc_mini x 2 optimizers


TUNED = {"stem_local": ("stem", 6, {3}, 4), "optimizer_local": ("optimizer", 9, {2, 4, 8}, 2)}


def _tuned_reference(name):
    import pytest

    folder = REFERENCE / name
    if not (folder / "trials.csv").exists():
        pytest.fail(f"{folder}/trials.csv is missing")
    return folder, analysis.load_trials(folder / "trials.csv")


def test_tuned_reference_verdicts_are_recomputed_from_their_csvs():
    from analysis import verdict

    for name in TUNED:
        folder, _ = _tuned_reference(name)
        text = (folder / "README.md").read_text()
        assert [m.group(2) for m in verdict.BLOCK.finditer(text)] == [""], name
        assert verdict.readme(text, folder) == text, name


def test_tuned_references_are_complete_at_their_studys_tuned_points():
    """Every model x optimizer x seed x budget of the study's local budget, each at the (lr, wd) its
    study resolves for it (the calibration's tuned values; the stems borrow vitc_4mf's)."""
    import numpy as np

    from bench.core import studies

    for name, (study_name, n_models, epochs, seeds) in TUNED.items():
        _, df = _tuned_reference(name)
        study = studies.load(study_name)
        resolved = studies.resolve(study, studies.Overrides(budget="local"))
        assert (df["state"] == "COMPLETE").all(), name
        assert df["model"].nunique() == n_models and set(df["model"]) == set(resolved.models), name
        assert set(df["epochs"]) == epochs and set(df.groupby(["model", "optimizer", "epochs"]).size()) == {seeds}, name
        for (model, opt), g in df.groupby(["model", "optimizer"]):
            np.testing.assert_allclose(g[["lr", "wd"]].drop_duplicates().to_numpy(), [resolved.tuned(model, opt)],
                                       rtol=1e-6, err_msg=f"{name} {model} {opt}")
