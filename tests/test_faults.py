"""The fault matrix: one test per fault, named for it, asserting what the user sees and what is kept.

Faults of the journal file need no training: the trial dirs hold the engine's ``result.json`` (the
source of truth) and the real runner records them. The others train the mini models on tiny data.
The storage server going away is in tests/test_postgres.py (it needs a PostgreSQL server).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from optuna.trial import TrialState
from test_runner import fake_result

from bench.cli import main
from bench.io import atomic_write_json
from bench.runner import storage, studies
from bench.runner.specs import Overrides, expand

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--data", "synthetic:256", "--no-estimate", "--no-progress"]
STUDY = ["run", "--study", "lr_wd", "--models", "vitp_mini", "vitc_mini", "--epochs", "1", *TINY]


def trials(results: Path, study="lr_wd"):
    store = storage.Store.open(storage.journal_path(results, study), create=False)
    return [t for name, _ in store.summaries() for t in store.trials(name)]


def finish_on_disk(results: Path, n_points: int, study="lr_wd") -> dict:
    """result.json in the trial dir of every spec of STUDY with n_points points (as if trained)."""
    specs = expand(studies.load(study), Overrides(models=("vitp_mini", "vitc_mini"), trials=n_points, epochs=(1,),
                                                 data="synthetic:256"))
    errors = {s.key: 10.0 + s.point + 20 * (s.model == "vitc_mini") + 5 * (s.optimizer == "sgd") for s in specs}
    for s in specs:
        atomic_write_json(results / study / "trials" / s.key / "result.json", fake_result(s, error=errors[s.key]))
    return errors


def assert_each_once(results: Path, errors: dict) -> None:
    """Every finished trial is recorded once, COMPLETE, with its result.json's error; nothing else."""
    ts = trials(results)
    assert Counter(t.user_attrs["key"] for t in ts) == Counter(list(errors))
    assert {t.user_attrs["key"]: t.value for t in ts if t.state == TrialState.COMPLETE} == errors


def test_torn_journal_tail(tmp_path, monkeypatch, capsys):
    """A writer killed mid-record leaves a torn last line; optuna would glue the next record to it.
    The runner moves the torn bytes to a side file, warns once, and goes on."""
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    errors = finish_on_disk(results, 1)
    assert main([*STUDY, "--trials", "1"]) == 0
    path = storage.journal_path(results, "lr_wd")
    torn = path.read_bytes().splitlines(keepends=True)[-1][:40]
    with open(path, "ab") as f:
        f.write(torn)  # the first 40 bytes of a record, no newline
    capsys.readouterr()

    errors = finish_on_disk(results, 2)  # two more points finished: the rerun appends their records
    assert main([*STUDY, "--trials", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count("ended in a torn record (40 bytes") == 1 and "Traceback" not in err
    (side,) = path.parent.glob("optuna.journal.torn-*")
    assert side.read_bytes() == torn
    assert path.read_bytes().endswith(b"\n")
    assert_each_once(results, errors)  # a fresh read: nothing glued, nothing lost, nothing twice
    assert main([*STUDY, "--trials", "2"]) == 0
    assert "finished 8, to record 0, running 0, to run 0" in capsys.readouterr().out


def test_corrupt_journal_record_then_repair(tmp_path, monkeypatch, capsys):
    """A bad record mid-file (garbage, or a torn record glued to the next one) stops every command
    with its line number and the repair command; `bench repair` rebuilds the journal from the
    readable records and the trial dirs, and keeps the original."""
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    errors = finish_on_disk(results, 2)
    assert main([*STUDY, "--trials", "2"]) == 0
    path = storage.journal_path(results, "lr_wd")
    lines = path.read_bytes().splitlines(keepends=True)
    mid = len(lines) // 2
    glued = lines[mid + 3][:25] + lines[mid + 4]  # torn record + the whole one appended after it
    damaged = [*lines[:mid], b"\x00garbage\n", *lines[mid + 1:mid + 3], glued, *lines[mid + 5:]]
    path.write_bytes(b"".join(damaged))
    capsys.readouterr()

    for argv in (["status", "--study", "lr_wd"], [*STUDY, "--trials", "2"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert f"optuna.journal line {mid + 1} is not a readable record ('\\x00garbage')" in err
        assert err.endswith("repair it with `bench repair --study lr_wd`") and "\n" not in err

    assert main(["repair", "--study", "lr_wd"]) == 0
    out = capsys.readouterr().out
    assert f"kept {len(damaged) - 1} readable records, dropped 1 unreadable line(s)" in out
    (backup,) = path.parent.glob("optuna.journal.bak-*")
    assert backup.read_bytes() == b"".join(damaged)
    assert_each_once(results, errors)
    assert main(["status", "--study", "lr_wd"]) == 0
    assert main([*STUDY, "--trials", "2"]) == 0
    assert "finished 8, to record 0, running 0, to run 0" in capsys.readouterr().out
    assert_each_once(results, errors)


def test_repair_records_finished_trials_whose_records_are_lost(tmp_path, monkeypatch, capsys):
    """Records lost with a garbage line (here: every completion) come back from the trial dirs."""
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    errors = finish_on_disk(results, 1)
    assert main([*STUDY, "--trials", "1"]) == 0
    path = storage.journal_path(results, "lr_wd")
    lines = path.read_bytes().splitlines(keepends=True)
    keep = [ln if b'"state":1' not in ln else b"{not json\n" for ln in lines]  # state 1: COMPLETE
    path.write_bytes(b"".join(keep))
    assert main(["repair", "--study", "lr_wd"]) == 0
    assert "4 recorded from their trial dirs" in capsys.readouterr().out
    assert_each_once(results, errors)


def test_repair_refuses_while_a_runner_holds_the_study(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    finish_on_disk(tmp_path / "results", 1)
    assert main([*STUDY, "--trials", "1"]) == 0
    import fcntl

    with open(tmp_path / "results/lr_wd/runner.lock", "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["repair", "--study", "lr_wd"]) == 2
    assert "a `bench run` is running this study" in capsys.readouterr().err
    assert not list((tmp_path / "results/lr_wd").glob("*.bak-*"))
