"""`--storage postgresql://...` against a real PostgreSQL server (tests/conftest.py starts one):
a parallel local study, kill -9 of its runner and a rerun, and bad storage URLs as one line."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from optuna.trial import TrialState

from bench.cli import main
from bench.runner import storage

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--data", "synthetic:256", "--no-estimate", "--no-progress"]


def trials(url: str):
    store = storage.Store.open(url)
    return [t for name, _ in store.summaries() for t in store.trials(name)]


@pytest.mark.slow
def test_parallel_study_on_postgresql_then_kill_9_and_rerun(postgres, tmp_path):
    """Two trials at once record into PostgreSQL; the runner killed mid-study, the rerun attaches to
    (or records) its trials: each trial once, COMPLETE."""
    url = postgres.database()
    argv = [sys.executable, "-m", "bench.cli", "run", "--study", "lr_wd", "--models", "vitc_mini", "vitp_mini",
            "--optimizer", "adamw", "--trials", "1", "--epochs", "1", "--parallel", "2", "--storage", url, *TINY]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runner = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while len(list((tmp_path / "results/lr_wd/trials").glob("*/job.json"))) < 2:
        assert time.time() < deadline and runner.poll() is None, runner.stderr.read() if runner.poll() else "timeout"
        time.sleep(0.2)
    runner.kill()
    runner.wait()
    ts = trials(url)
    assert len(ts) == 2 and {t.state for t in ts} == {TrialState.RUNNING}

    out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    ts = trials(url)
    assert len(ts) == 2 and {t.state for t in ts} == {TrialState.COMPLETE}
    assert max(Counter(t.user_attrs["key"] for t in ts).values()) == 1
    assert all(len(t.user_attrs["curve"]) == 1 for t in ts)
    assert main(["status", "--storage", url]) == 0


@pytest.mark.parametrize("make_url,msg", [
    (lambda pg: "mysql+pymysql://bench:s3cret@127.0.0.1/db", "database driver is not installed (no module 'pymysql'"),
    (lambda pg: "postgresql://bench:s3cret@127.0.0.1:1/hpbench", "port 1 failed: Connection refused"),
    (lambda pg: pg.url.replace("bench:", "bench:x", 1).replace(pg.url.split(":")[2].split("@")[0], "s3cret"),
     'password authentication failed for user "bench"'),
])
def test_bad_storage_url_is_one_line_without_the_password(postgres, tmp_path, monkeypatch, capsys, make_url, msg):
    monkeypatch.chdir(tmp_path)
    url = make_url(postgres)
    assert "s3cret" in url
    for argv in (["status", "--storage", url],
                 ["run", "--study", "lr_wd", "--models", "vitc_mini", "--trials", "1", "--storage", url, *TINY]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"bench {argv[0]}: error: cannot open storage ") and msg in err
        assert "s3cret" not in err and "***@" in err and "\n" not in err
