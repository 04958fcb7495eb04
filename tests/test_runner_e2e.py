"""The study runner with real trainings of the mini models on tiny synthetic data (CPU)."""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from optuna.trial import TrialState

from bench.cli import main
from bench.runner import storage

pytestmark = pytest.mark.slow
TINY = ["--data", "synthetic:256", "--no-estimate", "--no-progress"]


def trials(tmp_path, study="lr_wd"):
    store = storage.Store.open(storage.journal_path(tmp_path / "results", study))
    return [t for name, _ in store.summaries() for t in store.trials(name)]


def attempts(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "attempts.jsonl").read_text().splitlines()]


def test_local_study_records_resumes_and_exports(tmp_path, monkeypatch, capsys):
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
    assert len(pd.read_csv("results/lr_wd/trials.csv")) == 4


FAILING = """
points = "random"
trials = 1
epochs = [1]
models = ["vitp_mini", "vitc_mini"]
[ranges.vit]
adamw = { lr = [1e-4, 1e-3], wd = [0.01, 0.1] }
sgd = { lr = [1e5, 1e6], wd = [1e-5, 1e-4] }
[budgets.local]
data = "synthetic:256"
batch_size = { default = 64, vitc_mini = 3 }
"""


def test_failed_and_diverged_trials_in_process(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text(FAILING)
    argv = ["run", "--study", "bad.toml", "--cluster", "debug", *TINY]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert out.count("FAILED vitc_mini") == 2 and "batch size must be even" in out
    ts = {(t.user_attrs["model"], t.user_attrs["optimizer"]): t for t in trials(tmp_path, "bad")}
    assert ts["vitp_mini", "adamw"].state == TrialState.COMPLETE
    diverged = ts["vitp_mini", "sgd"]
    assert diverged.state == TrialState.COMPLETE and diverged.user_attrs["diverged"] is True
    assert diverged.value == diverged.user_attrs["chance"] == 90.0
    failed = ts["vitc_mini", "adamw"]
    assert failed.state == TrialState.FAIL and "batch size must be even" in failed.user_attrs["fail_reason"]
    assert main(["status", "--study", "bad"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["bad/vitp_mini/sgd/local", "1", "1", "0", "0", "0", "90.00"] in rows
    assert ["bad/vitc_mini/adamw/local", "0", "0", "0", "0", "1", "-"] in rows
    # rerun: the two failed trials run again (new FAIL records), the finished ones do not
    assert main(argv) == 1
    states = Counter((t.user_attrs["model"], t.state) for t in trials(tmp_path, "bad"))
    assert states == {("vitp_mini", TrialState.COMPLETE): 2, ("vitc_mini", TrialState.FAIL): 4}
    df = pd.read_csv(tmp_path / "results/bad/trials.csv") if main(["export", "--study", "bad"]) == 0 else None
    assert len(df) == 6 and sorted(df.state.unique()) == ["COMPLETE", "FAIL"] and df.diverged.sum() == 1


def test_seeds_and_confirm(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base = ["run", "--study", "lr_wd", "--models", "vitc_mini", "--optimizer", "adamw", "--epochs", "1",
            "--cluster", "debug", *TINY]
    assert main([*base, "--trials", "3"]) == 0
    assert main([*base, "--trials", "3", "--confirm", "1", "--seeds", "2"]) == 0
    ts = trials(tmp_path)
    search = {t.user_attrs["point"]: t.value for t in ts if t.user_attrs["seed"] == 0}
    confirm = [t for t in ts if t.user_attrs["seed"] >= 1000]
    assert len(search) == 3 and len(confirm) == 2
    assert {t.user_attrs["point"] for t in confirm} == {min(search, key=search.get)}
    assert {t.user_attrs["seed"] for t in confirm} == {1000, 1001}
    assert main([*base, "--trials", "3", "--confirm", "1", "--seeds", "2"]) == 0  # idempotent
    assert len(trials(tmp_path)) == 5


def test_ddp_trial_with_two_gloo_processes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--study", "lr_wd", "--models", "vitc_mini", "--optimizer", "sgd", "--trials", "1",
                 "--epochs", "1", "--tasks-per-trial", "2", *TINY]) == 0
    (t,) = trials(tmp_path)
    assert t.state == TrialState.COMPLETE
    (d,) = (tmp_path / "results/lr_wd/trials").iterdir()
    assert json.loads((d / "result.json").read_text())["world_size"] == 2
    assert attempts(d)[0]["tasks"] == 2
