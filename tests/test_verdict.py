"""The verdict on the paper's claims (analysis.verdict): its rule, its numbers, its plain words."""

import numpy as np
import pandas as pd
import pytest

from analysis import records, report, stats, synthetic, verdict


def _study(swap: bool = False, near_chance: bool = False) -> pd.DataFrame:
    df = records.tidy(synthetic.trials(n_points=32, models=["vitp_1gf", "vitc_1gf"], seed=1))
    if swap:  # ViTp gets ViTc's runs and the other way round: the paper's claims turn over
        df["model"] = df["model"].map({"vitp_1gf": "vitc_1gf", "vitc_1gf": "vitp_1gf"}).astype("string")
    if near_chance:
        df["error"] = 99.0 - df["error"] / 10
    return df


def test_pairs_match_sizes():
    assert verdict.pairs(["vitp_1gf", "vitc_1gf", "vitp_4gf", "regnety_1gf", "vitc_mini", "vitp_mini"]) == [
        ("vitp_1gf", "vitc_1gf"), ("vitp_mini", "vitc_mini")]


def test_within_ci_takes_each_resamples_own_best():
    iv = stats.within_ci([10.0, 11.0, 20.0, 30.0], 2)
    assert iv.value == 0.5 and 0 < iv.lo <= 0.5 <= iv.hi <= 1
    assert stats.within_ci([5.0] * 8, 1) == (1.0, 1.0, 1.0)


def test_gap_difference_sign():
    a1, b1, a2, b2 = [30.0, 31], [36.0, 37], [29.0, 30], [29.5, 31]
    d = stats.gap_difference(a1, b1, a2, b2)
    assert d.value == pytest.approx(6.0 - 0.5) and d.lo <= d.value <= d.hi


def test_claims_reproduced_when_the_data_say_so():
    cl = verdict.findings(_study())["claims"]
    assert set(cl["claim"]) == {"robust", "better", "best", "sgd", "gap"} and len(cl) == 8
    assert (cl["verdict"] == "reproduced").all(), cl[["claim", "optimizer", "evidence"]]


def test_claims_turn_over_when_the_arms_swap():
    cl = verdict.findings(_study(swap=True))["claims"].set_index(["claim", "optimizer"])["verdict"]
    assert cl[("better", "adamw")] == cl[("best", "sgd")] == cl[("gap", "sgd − adamw")] == "not reproduced"


def test_identical_arms_are_inconclusive():
    df = _study()
    vitc = df[df["model"].eq("vitc_1gf")]
    df = pd.concat([vitc, vitc.assign(model="vitp_1gf")], ignore_index=True)
    cl = verdict.findings(df)["claims"]
    compared = cl[cl["claim"] != "sgd"]  # "sgd" is about ViTp alone, not a comparison of the arms
    assert (compared["verdict"] == "inconclusive").all()


def test_runs_near_chance_cannot_separate_and_say_why():
    f = verdict.findings(_study(near_chance=True))
    assert f["noise"] and f["lines"][0].startswith("This study cannot separate the models")
    assert "half of chance" in f["lines"][0]
    assert (f["claims"]["verdict"] == "inconclusive").all()


def test_markdown_holds_every_number_of_the_tables():
    f = verdict.findings(_study())
    md = verdict.markdown(f)
    w = f["within"].iloc[0]
    assert f"{w['within_4']:.2f} [{w['within_4_lo']:.2f}, {w['within_4_hi']:.2f}]" in md
    assert md.count("**reproduced**") == 8 and "SGD − AdamW [95% CI]" in md


def test_report_opens_with_findings():
    html = report.build(_study(), title="t")
    assert html.index('id="findings"') < html.index('id="summary"')
    assert 'id="verdict"' in html and "REPRODUCED: ViTc is more robust" in html


def test_gap_axis_is_linear_when_flops_are_close():
    from analysis import figures, summary

    df = records.tidy(synthetic.trials(n_points=8, models=["vitp_1gf", "vitc_1gf"]))
    df["gflops"] = np.where(df["model"].eq("vitp_1gf"), 0.00466, 0.0045)
    ax = figures.gap_figure(summary.optimizer_gap(df)).axes[0]
    assert ax.get_xscale() == "linear" and len(ax.get_xticks()) <= 6
