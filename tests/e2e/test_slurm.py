"""``bench run --cluster slurm`` on the one-node Slurm cluster of .ci/slurm/start-slurm.sh: a job
array with a failing trial and a trial preempted mid-training that requeues and resumes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from bench.core.layout import StudyDir
from bench.runner import storage

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
ROOT = Path(__file__).resolve().parents[2]

STUDY = """
points = "random"
trials = 1
epochs = [3]
models = ["vitc_mini", "vitp_mini"]
optimizers = ["adamw"]
[ranges.vit]
adamw = { lr = [1e-4, 1e-3], wd = [0.01, 0.1] }
[budgets.local]
data = "synthetic:512"
batch_size = { default = 64, vitp_mini = 3 }   # vitp_mini: the engine refuses an odd batch
"""


@pytest.fixture(scope="module")
def slurm():
    required = os.environ.get("HPBENCH_REQUIRE_SLURM") == "1"
    up = shutil.which("sinfo") and subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0
    if not up:
        if required:
            pytest.fail("HPBENCH_REQUIRE_SLURM=1 but no Slurm cluster answers (start .ci/slurm/start-slurm.sh)")
        pytest.skip("no Slurm cluster (sinfo missing or not answering)")


def test_slurm_array_failure_and_requeue(slurm, tmp_path):
    (tmp_path / "sl.toml").write_text(STUDY)
    argv = [sys.executable, "-m", "bench.cli", "run", "--study", "sl.toml", "--cluster", "slurm",
            "--array-parallelism", "2", "--timeout", "60", "--no-estimate", "--no-progress"]
    runner = subprocess.Popen(argv, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    trial_dirs = tmp_path / "results" / "sl" / "trials"
    deadline = time.time() + 300
    while not list(trial_dirs.glob("vitc_mini*/checkpoint.pt")):
        assert time.time() < deadline and runner.poll() is None, runner.stdout.read() if runner.poll() else "timeout"
        time.sleep(0.2)
    victim = list(trial_dirs.glob("vitc_mini*/checkpoint.pt"))[0].parent
    # preemption as Slurm signals it: USR2 to the task -> TrialJob.checkpoint -> scontrol requeue.
    # (`job._interrupt()` uses `scancel --signal`, which on this Slurm 22.05 answers "Job can not be
    # altered now" for a running array task and retries, re-signalling the requeued job.)
    os.kill(json.loads((victim / "attempts.jsonl").read_text().splitlines()[0])["pid"], signal.SIGUSR2)
    out, _ = runner.communicate(timeout=300)
    assert runner.returncode == 1, out  # the vitp_mini trial failed

    jobs = {d.name: json.loads((d / "job.json").read_text())["job_id"] for d in trial_dirs.iterdir()}
    assert len(jobs) == 2 and len({j.split("_")[0] for j in jobs.values()}) == 1  # one array
    store = storage.Store.open(StudyDir(tmp_path / "results", "sl").journal)
    ts = [t for name, _ in store.summaries() for t in store.trials(name)]
    by_model = {m: [t for t in ts if t.user_attrs["model"] == m] for m in ("vitc_mini", "vitp_mini")}
    assert [t.state for t in by_model["vitc_mini"]] == [TrialState.COMPLETE]
    assert [t.state for t in by_model["vitp_mini"]] == [TrialState.FAIL]
    assert all("batch size must be even" in t.user_attrs["fail_reason"] for t in by_model["vitp_mini"])
    assert all("_" in t.user_attrs["job_id"] for t in by_model["vitc_mini"])

    attempts = [json.loads(line) for line in (victim / "attempts.jsonl").read_text().splitlines()]
    assert [a["restart"] for a in attempts] == [0, 1] and attempts[1]["checkpoint"] is True
    log = Path(json.loads((victim / "job.json").read_text())["log"]).read_text()
    assert "resuming vitc_mini from epoch" in log
    assert log.count("epoch 1/3") == 1 and log.count("epoch 3/3") == 1  # epochs resumed, not restarted
    (t,) = [t for t in by_model["vitc_mini"] if t.user_attrs["key"] == victim.name]
    assert len(t.user_attrs["curve"]) == 3
