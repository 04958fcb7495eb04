"""The trial engine on real (tiny) CPU trainings: results, divergence, resume identity, bad input."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bench.cli import main
from bench.trial import TrialConfig, TrialError, run_trial

TINY = dict(model="vitc_mini", optimizer="adamw", lr=4e-3, wd=0.05, batch_size=64, data="synthetic:256")


@pytest.mark.slow
def test_trial_result_and_idempotent_rerun(tmp_path):
    cfg = TrialConfig(epochs=2, **TINY)
    r = run_trial(cfg, tmp_path)
    assert not r["diverged"] and r["epochs_done"] == 2 and len(r["curve"]) == 2
    assert 0 <= r["error"] <= 100 and r["error"] == min(c["error"] for c in r["curve"])
    assert r["chance"] == 90.0 and r["gflops"] > 0 and r["img_per_s"] > 0
    assert {"train_loss", "error", "raw_error", "img_per_s", "seconds", "peak_mem_mb"} <= set(r["curve"][0])
    assert (tmp_path / "result.json").exists() and not (tmp_path / "checkpoint.pt").exists()
    again = run_trial(cfg, tmp_path)  # finished: returned from disk, not retrained
    assert again == json.loads((tmp_path / "result.json").read_text()) and again["error"] == r["error"]


@pytest.mark.slow
def test_absurd_lr_diverges_to_chance(tmp_path):
    r = run_trial(TrialConfig(epochs=3, **{**TINY, "optimizer": "sgd", "lr": 1e7}), tmp_path)
    assert r["diverged"] and r["error"] == r["raw_error"] == 90.0
    assert r["epochs_done"] == 1  # ended at once


def _train_cmd(out, epochs=3):
    return [sys.executable, "-m", "bench.cli", "train", "--model", "vitc_mini", "--lr", "4e-3", "--wd", "0.05",
            "--epochs", str(epochs), "--batch-size", "32", "--data", "synthetic:256", "--out", str(out), "--json"]


@pytest.mark.slow
def test_resume_after_kill_mid_epoch_is_identical(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref = subprocess.run(_train_cmd(tmp_path / "ref"), env=env, capture_output=True, text=True, check=True)
    expected = json.loads(ref.stdout.strip().splitlines()[-1])

    out = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "checkpoint.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "checkpoint.pt").exists() and not (out / "result.json").exists()
    resumed = subprocess.run(_train_cmd(out), env=env, capture_output=True, text=True, check=True)
    assert "resuming vitc_mini from epoch" in resumed.stderr
    got = json.loads(resumed.stdout.strip().splitlines()[-1])
    for key in ("error", "raw_error", "final_error", "epochs_done", "diverged"):
        assert got[key] == expected[key], key
    assert [c["train_loss"] for c in got["curve"]] == [c["train_loss"] for c in expected["curve"]]


def test_checkpoint_of_another_config_is_refused(tmp_path):
    from bench.io import atomic_save
    atomic_save({"config": {"model": "other"}}, tmp_path / "checkpoint.pt")
    with pytest.raises(TrialError, match="another trial configuration"):
        run_trial(TrialConfig(epochs=1, **TINY), tmp_path)


@pytest.mark.parametrize("field,value,message", [
    ("model", "vitc_3gf", "valid models"), ("optimizer", "lamb", "optimizer must be"),
    ("lr", -1.0, "lr must be"), ("epochs", 0, "epochs must be"), ("batch_size", 7, "even"),
])
def test_bad_config(field, value, message):
    with pytest.raises(TrialError, match=message):
        TrialConfig(**{**TINY, "epochs": 1, field: value}).validate()


def test_bench_train_bad_input_is_one_line(tmp_path, capsys):
    code = main(["train", "--model", "nope", "--lr", "1e-3", "--wd", "0.1", "--epochs", "1", "--out", str(tmp_path)])
    assert code == 2 and "valid models" in capsys.readouterr().err
    code = main(["train", "--model", "vitc_mini", "--lr", "1e-3", "--wd", "0.1", "--epochs", "1",
                 "--data", f"cifar10:{tmp_path}/missing", "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert code == 2 and "missing" in err and "Traceback" not in err


def test_how_a_trial_runs_is_not_what_it_is(tmp_path):
    """device and compile are execution options: a result made on a GPU, compiled or not, is the same run's."""
    from bench.core.identity import finished, same_run
    from bench.io import atomic_write_json

    plain = TrialConfig(epochs=1, **TINY)
    fast = TrialConfig(epochs=1, **TINY, device="cuda", compile=True)
    assert plain.identity() == fast.identity() and "compile" not in plain.identity() and "device" not in plain.identity()
    atomic_write_json(tmp_path / "result.json", {"config": fast.identity(), "error": 12.0})
    assert same_run(fast.identity(), plain) and finished(tmp_path, plain)["error"] == 12.0


def test_the_paper_recipe_trains_with_precise_bn_and_lighting(tmp_path):
    """The paper recipe (mixup/CutMix, AutoAugment, PCA lighting, precise BN before each evaluation) runs
    end to end on a conv-stem ViT, and its precise BN stream leaves the training stream alone."""
    from bench.trial import Trainer

    cfg = TrialConfig(model="vitc_1mf", optimizer="adamw", lr=1e-3, wd=0.05, epochs=1, batch_size=32,
                      data="synthetic:128", recipe="paper")
    r = run_trial(cfg, tmp_path / "t", log=lambda *a: None)
    assert math.isfinite(r["error"]) and not r["diverged"]
    t = Trainer(cfg)
    before = [x.clone() for x, _ in t.loader("train", 0)]
    t.precise_bn()
    assert all(torch.equal(a, b) for a, (b, _) in zip(before, t.loader("train", 0)))
