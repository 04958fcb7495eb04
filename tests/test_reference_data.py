"""The committed reference data (results/reference/) still loads and means what its README says."""
from pathlib import Path

import analysis

REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"


def test_quickstart_reference_loads_as_a_paired_study():
    df = analysis.load_trials(REFERENCE / "quickstart_lr_wd.csv")
    assert len(df) == 16 and set(df["model"]) == {"vitp_mini", "vitc_mini"} and set(df["optimizer"]) == {"adamw", "sgd"}
    assert (df["state"] == "COMPLETE").all() and df["error"].between(0, 90).all()
    # paired: every point has the same (lr, wd) for both models
    per_point = df.groupby(["optimizer", "point"])[["lr", "wd"]].nunique()
    assert (per_point == 1).all().all()
