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


def test_reference_study_verdict_is_recomputed_from_its_csv():
    """The verdict tables in results/reference/lr_wd_local/README.md are the CSVs' numbers: the block
    <!-- verdict --> of trials.csv (with its design.json), a block <!-- verdict NAME --> of NAME.csv."""
    from analysis import verdict

    text = (LOCAL / "README.md").read_text()
    assert [m.group(2) for m in verdict.BLOCK.finditer(text)] == ["", "rerun"]
    assert verdict.readme(text, LOCAL) == text


def test_reference_study_is_paired_and_complete():
    df = analysis.load_trials(LOCAL / "trials.csv")
    assert set(df["model"]) == {"vitp_mini", "vitc_mini", "regnety_mini"} and set(df["optimizer"]) == {"adamw", "sgd"}
    assert (df["state"] == "COMPLETE").all() and (df["sampling_seed"] == 0).all()
    search = df[df["seed"] < 1000]
    # paired: within a family every model has the same (lr, wd) at a point (families map one draw into their own range)
    per_point = search.groupby(["family", "optimizer", "point"])[["lr", "wd"]].nunique()
    assert (per_point == 1).all().all()
    assert set(search.groupby(["model", "optimizer"])["point"].nunique()) == {24}


def test_reference_study_pairs_families_by_draw():
    """regnety_mini's point i is vitp/vitc_mini's draw u_i, mapped into its own (calibrated) window:
    every family's (lr, wd) are the study's draws of its sampling seed in that family's window."""
    import numpy as np

    from bench.core import studies
    from bench.runner import sampling

    study = studies.load("lr_wd")
    budget = study.budget("local")
    df = analysis.load_trials(LOCAL / "trials.csv")
    for fam in ("vit", "regnety"):
        for opt in ("adamw", "sgd"):
            rows = df[(df["family"] == fam) & (df["optimizer"] == opt)]
            rows = rows.drop_duplicates("point").set_index("point").sort_index()
            drawn = sampling.points(0, 24, study.window(fam, opt).scaled(budget.lr_factor(fam, opt)))
            np.testing.assert_allclose(rows[["lr", "wd"]].to_numpy(), drawn, rtol=1e-12, err_msg=f"{fam} {opt}")


def test_reference_rerun_repeats_the_vit_arms_draw_for_draw():
    """rerun.csv: the ViT arms trained again (same code path, seeds and draws) on another machine."""
    ref = analysis.load_trials(LOCAL / "trials.csv")
    rerun = analysis.load_trials(LOCAL / "rerun.csv")
    assert set(rerun["model"]) == {"vitp_mini", "vitc_mini"} and (rerun["state"] == "COMPLETE").all()
    both = ref.merge(rerun, on=["model", "optimizer", "point", "seed"], suffixes=("", "_rerun"))
    assert len(both) == len(rerun) == 96
    assert (both["lr"] == both["lr_rerun"]).all() and (both["wd"] == both["wd_rerun"]).all()


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
    assert len(table) == 6 and set(table["points"]) == {8}
