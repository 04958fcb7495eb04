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
from helpers import fake_result

from bench.cli import main
from bench.io import atomic_write_json
from bench.core import studies
from bench.core.layout import StudyDir
from bench.runner import storage
from bench.runner.specs import Overrides, expand

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--data", "synthetic:256", "--no-estimate", "--no-progress"]
STUDY = ["run", "--study", "lr_wd", "--models", "vitp_mini", "vitc_mini", "--epochs", "1", *TINY]
RUNNER = [sys.executable, "-m", "bench.cli", "run", "--study", "lr_wd"]  # a runner in its own process
env = {**os.environ, "PYTHONPATH": str(ROOT)}


def trials(results: Path, study="lr_wd"):
    store = storage.Store.open(StudyDir(results, study).journal, create=False)
    return [t for name, _ in store.summaries() for t in store.trials(name)]


def finish_on_disk(results: Path, n_points: int, study="lr_wd") -> dict:
    """result.json in the trial dir of every spec of STUDY with n_points points (as if trained)."""
    specs = expand(studies.load(study), Overrides(models=("vitp_mini", "vitc_mini"), trials=n_points, epochs=(1,),
                                                 data="synthetic:256"))
    errors = {s.key: 10.0 + s.point + 20 * (s.cfg.model == "vitc_mini") + 5 * (s.cfg.optimizer == "sgd") for s in specs}
    for s in specs:
        atomic_write_json(results / study / "trials" / s.key / "result.json", fake_result(s, error=errors[s.key]))
    return errors


def attempts(trial_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (trial_dir / "attempts.jsonl").read_text().splitlines()]


def wait_for(paths, n: int, runner, timeout=240):
    """Wait until ``paths()`` lists n files while the runner lives."""
    deadline = time.time() + timeout
    while len(list(paths())) < n:
        assert runner.poll() is None, runner.stderr.read() if runner.stderr else f"runner exited {runner.returncode}"
        assert time.time() < deadline, "timeout"
        time.sleep(0.2)


def job_tree(pid: str) -> list[str]:
    """A local job's processes: its shell, the submitit controller under it and the controller's tasks."""
    out, todo = [], [str(pid)]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += subprocess.run(["pgrep", "-P", p], capture_output=True, text=True).stdout.split()
    return out


def alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


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
    path = StudyDir(results, "lr_wd").journal
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
    path = StudyDir(results, "lr_wd").journal
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
    path = StudyDir(results, "lr_wd").journal
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
    assert "another `bench run` or `bench repair` holds this study" in capsys.readouterr().err
    assert not list((tmp_path / "results/lr_wd").glob("*.bak-*"))


@pytest.mark.slow
def test_kill_9_runner_and_trial(tmp_path):
    """kill -9 of the runner and of a training job mid-study: the rerun loses nothing, duplicates
    nothing, attaches to the job that survived and resumes the killed one from its checkpoint."""
    argv = [*RUNNER, "--models", "vitc_mini", "--optimizer", "adamw", "--trials", "2", "--epochs", "3",
            "--parallel", "2", *TINY]
    runner = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    trial_dirs = tmp_path / "results" / "lr_wd" / "trials"
    deadline = time.time() + 240
    while not list(trial_dirs.glob("*/checkpoint.pt")):
        assert time.time() < deadline and runner.poll() is None, "no epoch checkpoint appeared"
        time.sleep(0.2)
    runner.kill()
    runner.wait()
    victim = list(trial_dirs.glob("*/checkpoint.pt"))[0].parent
    for pid in job_tree(json.loads((victim / "job.json").read_text())["job_id"]):
        os.kill(int(pid), signal.SIGKILL)
    ts = trials(tmp_path / "results")
    assert len(ts) == 2 and {t.state for t in ts} == {TrialState.RUNNING}

    assert subprocess.run(argv, cwd=tmp_path, env=env).returncode == 0
    ts = trials(tmp_path / "results")
    assert len(ts) == 2 and {t.state for t in ts} == {TrialState.COMPLETE}  # the RUNNING trials were reused
    assert Counter(t.user_attrs["key"] for t in ts).most_common(1)[0][1] == 1
    resumed = attempts(victim)
    assert len(resumed) == 2 and resumed[1]["checkpoint"] is True
    log = Path(json.loads((victim / "job.json").read_text())["log"]).read_text()
    assert "resuming vitc_mini from epoch" in log and "epoch 1/3" not in log  # resumed, not restarted
    other = next(d for d in trial_dirs.iterdir() if d != victim)
    assert len(attempts(other)) == 1  # it kept training while no runner watched, and was recorded


@pytest.mark.slow
def test_ctrl_c_in_a_terminal_leaves_the_jobs_training(tmp_path):
    """Ctrl-C in a terminal is SIGINT to the runner's whole process group, its jobs included: the runner
    stops with one line, the jobs train on, and the rerun records them without retraining."""
    argv = [*RUNNER, "--models", "vitc_mini", "--optimizer", "adamw", "--trials", "2", "--epochs", "8",
            "--parallel", "2", "--trials-per-job", "1", *TINY]
    runner = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)  # its own group: the terminal's foreground group
    trial_dirs = tmp_path / "results" / "lr_wd" / "trials"
    wait_for(lambda: trial_dirs.glob("*/checkpoint.pt"), 1, runner)
    jobs = {p.parent: json.loads(p.read_text())["job_id"] for p in trial_dirs.glob("*/job.json")}
    trees = {d: job_tree(j) for d, j in jobs.items()}
    assert len(jobs) == 2 and all(os.getpgid(int(p)) == runner.pid for t in trees.values() for p in t)  # the group
    os.killpg(runner.pid, signal.SIGINT)
    training = [d for d in trees if not (d / "result.json").exists()]
    assert runner.wait(timeout=60) == 130
    out = runner.stdout.read()
    assert "submitted jobs keep running" in out and "Traceback" not in out
    assert sum("interrupted" in line for line in out.splitlines()) == 1, out  # one line, as docs/storage.md says
    time.sleep(1)
    assert training and all(alive(p) or (d / "result.json").exists() for d in training for p in trees[d])
    deadline = time.time() + 240
    while len(list(trial_dirs.glob("*/result.json"))) < 2:
        assert time.time() < deadline, "the jobs did not finish"
        time.sleep(0.5)
    assert subprocess.run(argv, cwd=tmp_path, env=env).returncode == 0
    ts = trials(tmp_path / "results")
    assert len(ts) == 2 and {t.state for t in ts} == {TrialState.COMPLETE}
    assert all(len(attempts(d)) == 1 for d in trial_dirs.iterdir())  # recorded, not retrained


@pytest.mark.slow
def test_corrupt_checkpoint(tmp_path, monkeypatch):
    """A torn checkpoint.pt in a trial dir (a kill mid-save on a filesystem without atomic rename):
    the trial warns, keeps it as checkpoint.corrupt, trains from scratch and is recorded."""
    monkeypatch.chdir(tmp_path)
    (spec,) = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("adamw",), trials=1,
                                                     epochs=(1,), data="synthetic:256"))
    ckpt = tmp_path / "results/lr_wd/trials" / spec.key / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"PK\x03\x04 torn")
    with pytest.warns(UserWarning, match="checkpoint .* is unreadable .*kept as .corrupt, starting over"):
        assert main(["run", "--study", "lr_wd", "--models", "vitc_mini", "--optimizer", "adamw", "--trials", "1",
                     "--epochs", "1", "--cluster", "debug", *TINY]) == 0
    assert ckpt.with_suffix(".corrupt").read_bytes() == b"PK\x03\x04 torn" and not ckpt.exists()
    (t,) = trials(tmp_path / "results")
    assert t.state == TrialState.COMPLETE and len(t.user_attrs["curve"]) == 1


@pytest.mark.slow
def test_two_runners_on_one_study(tmp_path, monkeypatch, capsys):
    """A second `bench run` of a study that a runner is running is refused in one line; the first
    finishes undisturbed."""
    args = ["--models", "vitc_mini", "--optimizer", "adamw", "--trials", "1", "--epochs", "2", *TINY]
    first = subprocess.Popen([*RUNNER, *args], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (tmp_path / "results/lr_wd/trials").glob("*/job.json"), 1, first)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--study", "lr_wd", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("bench run: error: another `bench run` or `bench repair` holds this study "
                   "(results/lr_wd/runner.lock is locked): wait for it or stop it before running it")
    assert first.wait(timeout=300) == 0
    (t,) = trials(tmp_path / "results")
    assert t.state == TrialState.COMPLETE


@pytest.mark.slow
def test_storage_server_goes_away(postgres, tmp_path):
    """PostgreSQL stops mid-study: the runner exits with one line (its jobs keep training); once the
    server is back, the rerun records every trial, once."""
    url = postgres.database()
    argv = [*RUNNER, "--models", "vitc_mini", "--optimizer", "adamw", "--trials", "2", "--epochs", "2",
            "--parallel", "2", "--storage", url, *TINY]
    runner = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    wait_for(lambda: (tmp_path / "results/lr_wd/trials").glob("*/checkpoint.pt"), 1, runner)
    postgres.stop()
    try:
        assert runner.wait(timeout=300) == 2
    finally:
        postgres.start()
    err = runner.stderr.read().strip()
    assert err.startswith("bench run: error: storage postgresql://bench:***@127.0.0.1:")
    assert "stopped answering" in err and "rerun the same command" in err and "\n" not in err

    out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    store = storage.Store.open(url)
    ts = [t for name, _ in store.summaries() for t in store.trials(name)]
    assert len(ts) == 2 and {t.state for t in ts} == {TrialState.COMPLETE}
    assert max(Counter(t.user_attrs["key"] for t in ts).values()) == 1


@pytest.mark.slow  # submitit notices the kill in ~15 s
def test_a_job_killed_without_a_result_is_failed_with_that_not_its_last_stderr_line(tmp_path):
    """kill -9 of a job whose stderr ends in a warning: the trial's fail reason says the job ended
    without a result (it was the warning's last line)."""
    import submitit

    from bench.runner import orchestrate

    ex = submitit.LocalExecutor(folder=tmp_path)
    ex.update_parameters(timeout_min=2)
    job = ex.submit(submitit.helpers.CommandFunction(
        ["bash", "-c", "echo 'UserWarning: not yet implemented the batching rule' >&2; "
                       "echo '  x = F.scaled_dot_product_attention(' >&2; sleep 60"]))
    deadline = time.time() + 60
    while "scaled_dot" not in (job.stderr() or "") and time.time() < deadline:
        time.sleep(0.2)
    os.kill(int(job.job_id), signal.SIGKILL)
    while not job.done() and time.time() < deadline:
        time.sleep(0.2)
    reason = orchestrate._job_error(job)
    assert reason.startswith("the job's process ended without a result (state: ") and "scaled_dot" not in reason


@pytest.mark.slow
def test_a_fused_cpu_run_prints_no_vmap_warning(tmp_path, capfd):
    from bench import fused
    from bench.core.identity import TrialConfig

    cfgs = [TrialConfig(model="vitc_mini", optimizer="adamw", lr=lr, wd=0.05, epochs=1, batch_size=32,
                        data="synthetic:64", resolution=32, device="cpu") for lr in (0.01, 0.02)]
    fused.run_fused([(c, tmp_path / str(i)) for i, c in enumerate(cfgs)], log=lambda *a: None)
    assert "batching rule" not in capfd.readouterr().err
