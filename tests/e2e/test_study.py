"""The study runner with real trainings of the mini models on tiny synthetic data (CPU)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from optuna.trial import TrialState

import analysis
from bench.core import records
from bench.cli import main
from bench.core.layout import StudyDir
from bench.runner import storage

pytestmark = pytest.mark.slow
TINY = ["--data", "synthetic:256", "--no-estimate", "--no-progress"]


def trials(tmp_path, study="lr_wd"):
    store = storage.Store.open(StudyDir(tmp_path / "results", study).journal)
    return [t for name, _ in store.summaries() for t in store.trials(name)]


def attempts(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "attempts.jsonl").read_text().splitlines()]


def test_records_contract_end_to_end(tmp_path, monkeypatch, capsys):
    """A real `bench run`, then `bench export`, `analysis.load_trials` and `bench report`: one table,
    every column equal between the three, and equal to what each trial's result.json says."""
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--study", "lr_wd", "--models", "vitp_mini", "vitc_mini", "--trials", "1", "--epochs", "1",
            "--parallel", "2", *TINY]
    assert main(argv) == 0
    ts = trials(tmp_path)
    assert len(ts) == 4 and {t.state for t in ts} == {TrialState.COMPLETE}
    assert {(t.user_attrs["model"], t.user_attrs["optimizer"]) for t in ts} == {
        (m, o) for m in ("vitp_mini", "vitc_mini") for o in ("adamw", "sgd")}
    for t in ts:
        a = t.user_attrs
        assert a["epochs"] == 1 and a["budget"] == "local" and a["data"] == "synthetic:256" and a["host"]
        assert len(a["curve"]) == 1 and 0 <= t.value <= 100 and a["job_id"].isdigit()
    # paired: both models got the same draw, mapped into the same (ViT) range
    assert len({(t.params["lr"], t.user_attrs["optimizer"]) for t in ts}) == 2
    capsys.readouterr()
    # rerun: nothing retrained, nothing duplicated
    tic = time.time()
    assert main(argv) == 0
    assert time.time() - tic < 15 and len(trials(tmp_path)) == 4
    assert "finished 4, to record 0, running 0, to run 0" in capsys.readouterr().out
    assert main(["status", "--study", "lr_wd"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(rows) == 4 and all(r[1:6] == ["1", "0", "0", "0", "0"] for r in rows)
    assert main(["export", "--study", "lr_wd", "--format", "parquet", "--out", "t.parquet"]) == 0
    df = pd.read_parquet("t.parquet")
    assert len(df) == 4 and set(df.state) == {"COMPLETE"} and df.error.notna().all()
    assert main(["export", "--study", "lr_wd"]) == 0
    exported = pd.read_csv("results/lr_wd/trials.csv")
    assert list(exported.columns) == list(records.COLUMNS) and len(exported) == 4
    loaded = analysis.load_trials("results/lr_wd")
    pd.testing.assert_frame_equal(analysis.load_trials("results/lr_wd/trials.csv"), loaded)
    pd.testing.assert_frame_equal(records.tidy(pd.read_parquet("t.parquet")), loaded)
    for r in loaded.to_dict("records"):  # the values are the engine's
        key = next(t.user_attrs["key"] for t in ts if t.number == r["trial_number"] and t.user_attrs["model"] == r["model"]
                   and t.user_attrs["optimizer"] == r["optimizer"])
        res = json.loads((tmp_path / "results/lr_wd/trials" / key / "result.json").read_text())
        assert (r["error"], r["raw_error"], r["chance"], r["family"]) == (res["error"], res["raw_error"], res["chance"], "vit")
        assert (r["epochs"], r["batch_size"], r["data"], r["state"]) == (1, 128, "synthetic:256", "COMPLETE")
    assert main(["report", "--study", "lr_wd"]) == 0
    html = Path("results/lr_wd/report.html").read_text()
    rows = _html_rows(html, "trial-table")
    assert len(rows) == 4  # the report's trial table shows the loaded table's values (data-v holds them raw)
    for r in loaded.to_dict("records"):
        assert any({str(r["error"]), str(r["raw_error"]), r["model"], r["optimizer"]} <= set(row) for row in rows)


def _html_rows(html: str, table_id: str) -> list[list[str]]:
    """The cells' data-v values, row by row, of one <table id=...> of the report."""
    from html.parser import HTMLParser

    class P(HTMLParser):
        inside, rows = False, []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "table":
                self.inside = a.get("id") == table_id
            elif self.inside and tag == "tr":
                self.rows.append([])
            elif self.inside and tag == "td":
                self.rows[-1].append(a.get("data-v", ""))

    p = P()
    p.feed(html)
    return [r for r in p.rows if r]


CALIBRATION_STUDY = """
description = "bench calibrate on tiny data"
points = "random"
seed = 0
trials = 2
epochs = [1]
models = ["vitc_mini", "regnety_mini"]
optimizers = ["adamw"]

[budgets.tiny]
data = "synthetic:256"
recipe = "light"
epoch_scale = 1.0
batch_size = 64
"""


def test_calibrate_records_its_own_grid(tmp_path, monkeypatch):
    """bench calibrate: an lr grid on the family's models with 2 seeds, grown until the minimum is bracketed
    or the growth limit is hit; a second family calibrated into the same storage records only its own trials."""
    monkeypatch.chdir(tmp_path)
    Path("tiny.toml").write_text(CALIBRATION_STUDY)
    base = ["calibrate", "--study", "tiny.toml", "--budget", "tiny", "--points", "3", "--seeds", "2",
            "--cluster", "debug", "--no-estimate", "--no-progress"]
    for family, model in (("vit", "vitc_mini"), ("regnety", "regnety_mini")):
        assert main([*base, "--families", family, "--out", f"{family}.json"]) == 0
        rec = json.loads(Path(f"{family}.json").read_text())
        (w,) = rec["windows"]
        assert (w["family"], w["optimizer"], w["models"]) == (family, "adamw", [model])
        assert 3 <= len(w["grid"]) <= 7 and w["runs"] == [2] * len(w["grid"])
        assert rec["trials"] == 2 * len(w["grid"])  # not the other family's trials in the same storage
        best = min(range(len(w["grid"])), key=lambda i: w["mean_error"]["family"][i])
        assert w["centre"] == w["grid"][best] and w["bracketed"] == (0 < best < len(w["grid"]) - 1)
        assert w["lr_scale"] == round(w["centre"] / w["paper_good_value"], 4)
    assert len(trials(tmp_path, "calibrate_tiny")) == sum(
        json.loads(Path(f"{f}.json").read_text())["trials"] for f in ("vit", "regnety"))


def test_until_decided_grows_by_looks_and_a_rerun_keeps_its_start(tmp_path, monkeypatch, capsys):
    """--until-decided trains the first look, then the doubled one, writes each look's verdicts to
    design.json, and ends each round with a summary line even without a progress bar; a rerun trains
    nothing and keeps the study's first start time."""
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--study", "lr_wd", "--models", "vitp_mini", "vitc_mini", "--optimizer", "adamw", "--trials", "2",
            "--until-decided", "--max-points", "4", "--epochs", "1", "--cluster", "debug", *TINY]
    assert main(argv) == 0
    out = capsys.readouterr().out
    design = json.loads((tmp_path / "results/lr_wd/design.json").read_text())
    assert design["looks"] == [2, 4] and [r["points"] for r in design["rounds"]] == [2, 4]
    assert "lr_wd: 4 of 4 trials finished" in out and "lr_wd: 8 of 8 trials finished" in out
    assert main(argv) == 0
    assert json.loads((tmp_path / "results/lr_wd/design.json").read_text())["started"] == design["started"]
    assert len(trials(tmp_path)) == 8
