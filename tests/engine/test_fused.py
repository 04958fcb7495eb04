"""Fused trials (bench.fused) against the same trials run one by one (bench.trial.run_trial), on CPU in
fp32: per-epoch losses within 1e-4 relative, errors within one validation image. The validation
split is cut to 256 images so that the evaluations, not the few training steps, do not dominate."""
import dataclasses
import math

import pytest
import torch

from bench import fused, trial
from bench.data.core import TensorSplit
from bench.trial import TrialConfig, run_trial

VAL = 256
ONE_IMAGE = 100.0 / VAL
BASE = dict(epochs=2, batch_size=64, data="synthetic:256")


@pytest.fixture(autouse=True)
def small_val(monkeypatch):
    real = trial.load_data

    def load(spec, resolution):
        b = real(spec, resolution)
        return dataclasses.replace(b, val=TensorSplit(b.val.images[:VAL], b.val.labels[:VAL]), _device_cache={})

    monkeypatch.setattr(trial, "load_data", load)


def _quiet(*a):
    pass


def _deltas(got: dict, want: dict) -> tuple[float, float]:
    """(max relative train-loss difference, max error difference) over the curves; asserts the schema."""
    assert set(got) == set(want) and got["config"] == want["config"]
    assert [set(r) for r in got["curve"]] == [set(r) for r in want["curve"]]
    assert got["epochs_done"] == want["epochs_done"] and got["diverged"] == want["diverged"]
    loss = max((abs(a["train_loss"] - b["train_loss"]) / abs(b["train_loss"])
                for a, b in zip(got["curve"], want["curve"]) if b["train_loss"] is not None), default=0.0)
    err = max(abs(a[k] - b[k]) for a, b in zip(got["curve"], want["curve"]) for k in ("error", "raw_error"))
    return loss, err


def _check(cfgs, tmp_path, capsys=None, tag=""):
    got = fused.run_fused([(c, tmp_path / f"f{i}") for i, c in enumerate(cfgs)], log=_quiet)
    want = [run_trial(c, tmp_path / f"u{i}", log=_quiet) for i, c in enumerate(cfgs)]
    deltas = [_deltas(g, w) for g, w in zip(got, want)]
    print(f"{tag}: max rel loss diff {max(d[0] for d in deltas):.2e}, max error diff {max(d[1] for d in deltas):.3f}")
    for loss, err in deltas:
        assert loss <= 1e-4 and err <= ONE_IMAGE + 1e-9
    assert all((tmp_path / f"f{i}" / "result.json").exists() and not (tmp_path / f"f{i}" / "checkpoint.pt").exists()
               for i in range(len(cfgs)))
    return got, want


@pytest.mark.slow
@pytest.mark.parametrize("model,optimizer,points,recipe", [
    ("vitc_mini", "adamw", [(0.05, 0.05), (0.1, 0.0), (0.02, 0.3)], "light"),  # LayerNorm, attention; one wd = 0
    ("regnety_mini", "sgd", [(2.0, 5e-5), (4.0, 0.0), (1.0, 1e-4)], "light"),  # BatchNorm, SE
    ("vitc_mini", "adamw", [(0.05, 0.05), (0.1, 0.1)], "paper"),  # mixup/CutMix, precise BN of the conv stem's BN
])
def test_fused_equals_unfused(tmp_path, model, optimizer, points, recipe):
    extra = dict(resolution=16) if model == "regnety_mini" else {}
    extra.update(dict(epochs=1) if recipe == "paper" else {})
    cfgs = [TrialConfig(model=model, optimizer=optimizer, lr=lr, wd=wd, recipe=recipe, **{**BASE, **extra})
            for lr, wd in points]
    got, _ = _check(cfgs, tmp_path, tag=f"{model} {optimizer} {recipe}")
    assert len({r["curve"][-1]["train_loss"] for r in got}) == len(points)  # the members did train apart


@pytest.mark.slow
def test_a_diverging_member_leaves_the_others_alone(tmp_path):
    cfgs = [TrialConfig(model="vitc_mini", optimizer="sgd", lr=lr, wd=1e-5, **BASE) for lr in (1.0, 1e7, 2.0)]
    got, _ = _check(cfgs, tmp_path, tag="vitc_mini sgd, one diverging")
    assert [r["diverged"] for r in got] == [False, True, False]
    assert got[1]["epochs_done"] == 1 and got[1]["error"] == got[1]["chance"] == 90.0
    assert all(math.isfinite(r["curve"][-1]["train_loss"]) for r in (got[0], got[2]))


@pytest.mark.slow
def test_an_interrupted_fused_run_resumes_per_member(tmp_path, monkeypatch):
    """Killed after epoch 1: one member is then finished unfused from its fused checkpoint, one starts
    over (its checkpoint lost), two resume fused; each ends as its uninterrupted unfused run."""
    cfgs = [TrialConfig(model="vitc_mini", optimizer="adamw", lr=lr, wd=0.05, **{**BASE, "epochs": 3})
            for lr in (0.02, 0.05, 0.1, 0.2)]
    outs = [tmp_path / f"f{i}" for i in range(4)]
    calls, real_epoch = [], fused.FusedTrainer.train_epoch

    def dies_in_epoch_2(self):
        calls.append(self.epoch)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill -9 between two checkpoints
        return real_epoch(self)

    monkeypatch.setattr(fused.FusedTrainer, "train_epoch", dies_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        fused.run_fused(list(zip(cfgs, outs)), log=_quiet)
    monkeypatch.setattr(fused.FusedTrainer, "train_epoch", real_epoch)
    assert all(torch.load(o / "checkpoint.pt", weights_only=False)["epoch"] == 1 for o in outs)
    first = run_trial(cfgs[0], outs[0], log=_quiet)  # the unfused engine resumes a fused checkpoint
    (outs[3] / "checkpoint.pt").unlink()
    lines = []
    got = fused.run_fused(list(zip(cfgs, outs)), log=lines.append)
    assert got[0] == first
    assert sum("resuming vitc_mini (fused) from epoch 1" in line for line in lines) == 2
    want = [run_trial(c, tmp_path / f"u{i}", log=_quiet) for i, c in enumerate(cfgs)]
    for g, w in zip(got, want):
        assert [r["epoch"] for r in g["curve"]] == [1, 2, 3]  # no epoch twice
        loss, err = _deltas(g, w)
        assert loss <= 1e-4 and err <= ONE_IMAGE + 1e-9


def test_schedule_and_ema_follow_timm(tmp_path):
    """The members' lrs are timm's CosineLRScheduler values (warmup included) for their own lr."""
    cfgs = [TrialConfig(model="vitc_mini", optimizer="adamw", lr=lr, wd=0.05, **{**BASE, "epochs": 10})
            for lr in (0.01, 0.3)]
    ft = fused.FusedTrainer(cfgs)
    steps = 10 * ft.steps_per_epoch
    assert 0 < trial.recipes.warmup_steps(ft.recipe, 10, ft.steps_per_epoch) < steps
    for k, c in enumerate(cfgs):
        t = trial.Trainer(c, data=ft.data)
        for s in range(steps):
            t.scheduler.step_update(s)
            ours = ft.lrs[k] * ft.optim.factor_at(s)
            assert ours == pytest.approx(t.optimizer.param_groups[0]["lr"], rel=1e-12)
    assert ft.ema.use_warmup and ft.ema.decay == t.ema.decay  # the EMA decay is ModelEmaV3's own


def test_groups_fuse_only_trials_that_differ_in_lr_and_wd():
    a = [TrialConfig(model="vitc_mini", optimizer="adamw", lr=lr, wd=0.1, epochs=2) for lr in (1e-3, 2e-3, 3e-3)]
    b = TrialConfig(model="vitc_mini", optimizer="adamw", lr=1e-3, wd=0.1, epochs=2, seed=1)
    items = [(a[0], "0"), (b, "b"), (a[1], "1"), (a[2], "2")]
    assert fused.groups(items, 2) == [[(a[0], "0"), (a[1], "1")], [(a[2], "2")], [(b, "b")]]
    with pytest.raises(trial.TrialError, match="differ only"):
        fused.run_fused([(a[0], "x"), (b, "y")])
