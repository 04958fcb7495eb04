"""Summaries, the HTML report and the ``bench plot`` / ``bench report`` commands, incl. bad input."""

import re

import numpy as np
import pandas as pd
import pytest
from helpers import empty_journal, write_journal

from analysis import report, summary, synthetic

MODELS = ["vitp_4gf", "vitc_4gf", "regnety_4gf"]


@pytest.fixture(scope="module")
def trials():
    return synthetic.trials(n_points=24, models=MODELS, seeds=2)


@pytest.fixture(scope="module")
def html(trials):
    return report.build(trials, title="t", source="src")


def external_urls(html: str) -> list[str]:
    """URLs that would make the browser fetch something (data: URIs removed first)."""
    body = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    return re.findall(r"(?:https?:|ftp:)?//[\w.-]+|\b(?:src|href)=\"(?!#|data:)[^\"]+\"|@import|url\(", body)


def bench(argv):
    """The `bench` entry point (one error style: a user error is one line on stderr, exit 2)."""
    from bench.cli import main

    return main(argv)


def test_summary_tables(trials):
    rob = summary.robustness(trials, ref="bootstrap")
    assert len(rob) == 6 and (rob["n"] == 48).all() and (rob["points"] == 24).all()
    assert ((rob["best"] <= rob["ref"]) & (rob["ref"] <= rob["median"])).all()
    assert "ref_lo" not in rob  # the robust best is a bootstrap of a minimum: no interval is given
    assert (rob["within_8"] >= rob["within_1"]).all()
    assert summary.has_replicates(trials)
    gap = summary.optimizer_gap(trials)
    vitp = gap[gap["model"].eq("vitp_4gf")].iloc[0]
    assert vitp["gap"] > 3 and vitp["lo"] <= vitp["gap"] <= vitp["hi"]
    assert set(summary.ks_table(trials)["pairs"]) == {24}


def test_convergence_and_budget():
    df = synthetic.trials(n_points=8, models=["vitc_1gf"], epochs=(50, 100, 200))
    conv = summary.convergence(df)
    assert sorted(conv["epochs"]) == [50, 100, 200] and conv.loc[conv["epochs"].eq(200), "delta"].item() == 0
    c = summary.budget_curves(df)[0]
    assert c["mean"][0] == pytest.approx(summary.point_means(df).query("optimizer == 'adamw' and epochs == 50")["error"].mean())


def test_paper_compare(trials):
    cmp = summary.paper_comparison(trials)
    t3 = cmp[cmp["what"].str.startswith("Table 3")]
    assert set(t3["model"]) == {"vitp_4gf", "vitc_4gf"}
    assert t3.loc[t3["model"].eq("vitp_4gf") & t3["optimizer"].eq("sgd"), "paper"].item() == 33.0
    assert summary.paper_comparison(trials.assign(budget="laptop")).empty


def test_report_sections_and_self_contained(html):
    for anchor in ("summary", "edf", "scatter", "gap", "schedule", "budget", "importance", "paper", "trials",
                   "studies", "environment"):  # fmt: skip
        assert f'id="{anchor}"' in html
    assert html.count("data:image/png;base64,") >= 8
    assert external_urls(html) == []
    assert "Table 3 best error" in html and "Reference: lowest error of the group" in html
    assert 'id="trial-table"' in html and "<script>" in html


def test_report_escapes_user_strings(trials):
    df = trials[trials["model"].eq("vitc_4gf") & trials["optimizer"].eq("sgd")]
    df = df.assign(model="<script>alert(1)</script>", study="<b>s</b>")
    html = report.build(df, title="<i>t</i>", source="<x>")
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html
    assert "<b>s</b>" not in html and "<i>t</i>" not in html


def test_report_caps_trial_rows(monkeypatch, trials):
    monkeypatch.setattr(report, "TRIAL_ROWS", 10)
    t = report._trials(trials)
    assert len(t["trials"]) == 10 and t["trials"][0]["error"] == trials["error"].min()
    assert "Showing the 10 lowest-error of 288" in t["trials_caption"]


@pytest.mark.parametrize("case", ["empty", "one_model", "all_diverged", "all_failed"])
def test_report_bad_input(trials, case):
    df = trials[trials["model"].eq("vitc_4gf") & trials["optimizer"].eq("sgd")].copy()
    if case == "empty":
        df = df.iloc[:0]
    elif case == "all_diverged":
        df["diverged"], df["error"] = True, 99.9
    elif case == "all_failed":
        df["state"], df["error"] = "FAIL", np.nan
    html = report.build(df)
    expected = {"empty": "no finished results", "one_model": "Only one model", "all_diverged": "Every trial diverged",
                "all_failed": "All trials failed"}[case]  # fmt: skip
    assert expected in html and external_urls(html) == []


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory, trials):
    root = tmp_path_factory.mktemp("cli")
    df = trials[trials["model"].isin(["vitp_4gf", "vitc_4gf"]) & trials["seed"].eq(0)]
    write_journal(df, root / "results" / "synth" / "optuna.journal", failed=1)
    empty_journal(root / "results" / "empty" / "optuna.journal")
    (root / "studies").mkdir()  # today's study file says something else than the one the trials ran with
    (root / "studies" / "synth.toml").write_text('name = "synth"\nmodels = ["<changed since>"]\n')
    (root / "results" / "synth" / "study.toml").write_text('name = "synth"\nmodels = ["<vitp_4gf>"]\n')
    return root


@pytest.fixture
def results(results_dir, monkeypatch):
    monkeypatch.chdir(results_dir)
    return results_dir


@pytest.mark.parametrize("kind,ext,extra", [("edf", "png", []), ("edf", "svg", ["--delta"]), ("scatter", "pdf", []),
                                            ("gap", "png", []), ("budget", "png", ["--optimizer", "sgd"])])  # fmt: skip
def test_cli_plot(results, kind, ext, extra):
    out = results / f"f.{ext}"
    assert bench(["plot", kind, "--study", "synth", "--out", str(out), *extra]) == 0
    assert out.stat().st_size > 1000


def test_cli_report(results, capsys):
    assert bench(["report"]) == 0
    html = (results / "results" / "report.html").read_text()
    assert "&lt;vitp_4gf&gt;" in html and "synth/study.toml (as the trials ran with it)" in html
    assert "changed since" not in html and external_urls(html) == []
    assert "Studies: <b>empty, synth</b>" in html and "4 failed" in html
    assert bench(["report", "--study", "empty"]) == 0
    assert "no finished results" in (results / "results" / "empty" / "report.html").read_text()


@pytest.mark.parametrize(
    "argv,message",
    [
        (["plot", "edf", "--study", "nope"], "unknown study nope; valid: empty, synth"),
        (["plot", "edf", "--study", "synth", "--models", "vitx"], "unknown model vitx; valid: vitc_4gf, vitp_4gf"),
        (["plot", "edf", "--study", "synth", "--optimizer", "lion"], "unknown optimizer lion; valid: adamw, sgd"),
        (["plot", "edf", "--study", "synth", "--out", "x.jpg"], "unsupported figure format .jpg"),
        (["plot", "edf", "--study", "empty"], "no finished results"),
        (["plot", "schedule", "--study", "synth"], "several epoch counts"),
        (["plot", "edf", "--table", "missing.csv"], "no table at missing.csv"),
        (["report", "--study", "nope"], "unknown study nope"),
        (["report", "--results", "nowhere"], "nowhere not found"),
        (["report", "--storage", "nosuchdriver://x"], "cannot open storage"),
    ],
)
def test_cli_user_errors(results, capsys, argv, message):
    assert bench(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_cli_table_source(results, trials):
    trials.to_csv(results / "t.csv", index=False)
    assert bench(["plot", "schedule", "--table", "t.csv"]) == 2
    df = pd.concat([trials, trials.assign(epochs=100, error=trials["error"] - 1)])
    df.to_parquet(results / "t.parquet")
    assert bench(["plot", "schedule", "--table", "t.parquet", "--out", "s.png"]) == 0
