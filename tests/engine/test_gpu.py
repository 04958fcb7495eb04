"""CUDA-only checks (skipped without a GPU; run by scripts/gpu_check.sh): bf16 + channels_last
training, the divergence check's cadence, DDP over NCCL through run_trial, JPEG decoding on the GPU."""
from __future__ import annotations

import math

import pytest
import torch

from bench.data import load_data, make_loader
from bench.distributed import DistEnv
from bench.trial import Trainer, TrialConfig, run_trial

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

TINY = dict(model="vitc_mini", optimizer="adamw", lr=4e-3, wd=0.05, epochs=1, batch_size=64, data="synthetic:512",
            device="cuda")


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("HPBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "hpcache"))


def test_bf16_channels_last_steps_are_finite_and_learn():
    t = Trainer(TrialConfig(**TINY))
    conv = [p for p in t.model.parameters() if p.ndim == 4]
    assert conv and all(p.is_cuda and p.is_contiguous(memory_format=torch.channels_last) for p in conv)
    dtypes = []
    head = t.model.get_classifier()
    hook = head.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    before = [p.detach().clone() for p in t.model.parameters()]
    loader = make_loader(t.data, "train", 64, device=t.device, epoch=0, seed=0)
    losses = [t.step(x, y, i).item() for i, (x, y) in zip(range(6), loader)]
    hook.remove()
    assert dtypes and set(dtypes) == {torch.bfloat16}  # autocast is on
    assert all(math.isfinite(v) for v in losses)
    assert any(not torch.equal(a, b) for a, b in zip(before, t.model.parameters()))


def test_divergence_is_caught_at_the_first_check_on_cuda(tmp_path):
    cfg = TrialConfig(**{**TINY, "optimizer": "sgd", "lr": 1e7, "batch_size": 8, "data": "synthetic:1024"})
    t = Trainer(cfg)
    assert t.check_every == 50 and t.steps_per_epoch > t.check_every
    _, images, diverged = t.train_epoch()
    assert diverged and images == t.check_every * t.rank_batch  # stopped at step 50, not at the epoch's end
    r = run_trial(TrialConfig(**{**TINY, "optimizer": "sgd", "lr": 1e7, "epochs": 2}), tmp_path)
    assert r["diverged"] and r["epochs_done"] == 1


def test_ddp_over_nccl_through_run_trial(tmp_path, monkeypatch):
    for k, v in dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="29517").items():
        monkeypatch.setenv(k, v)
    # DistEnv treats one process as not distributed; flip only that switch so the real NCCL group,
    # DDP wrapper, all-reduces and barriers of a 1-GPU job run.
    monkeypatch.setattr(DistEnv, "enabled", property(lambda self: True))
    wrapped = []
    real_wrap = DistEnv.wrap
    monkeypatch.setattr(DistEnv, "wrap", lambda self, m: wrapped.append(real_wrap(self, m)) or wrapped[-1])
    r = run_trial(TrialConfig(**{**TINY, "epochs": 2}), tmp_path)
    assert type(wrapped[0]).__name__ == "DistributedDataParallel"
    assert not r["diverged"] and r["epochs_done"] == 2 and r["world_size"] == 1
    assert not torch.distributed.is_initialized()  # the session tore the group down


def test_jpeg_decode_on_gpu_matches_cpu(tmp_path):
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(6):
                small = torch.rand(1, 3, 6, 8, generator=g) * 255
                arr = torch.nn.functional.interpolate(small, size=(375, 500), mode="bicubic").clamp(0, 255)
                Image.fromarray(arr[0].permute(1, 2, 0).to(torch.uint8).numpy()).save(tmp_path / split / c / f"{i}.JPEG")
    b = load_data(f"imagefolder:{tmp_path}", 64)
    for split in ("train", "val"):
        kw = dict(epoch=0, seed=0, augment="light", workers=2)
        gpu = [(x.cpu(), y.cpu()) for x, y in make_loader(b, split, 4, device="cuda", decode="auto", **kw)]
        cpu = [(x, y) for x, y in make_loader(b, split, 4, device="cpu", decode="cpu", **kw)]
        assert len(gpu) == len(cpu) > 0
        for (xg, yg), (xc, yc) in zip(gpu, cpu):
            assert torch.equal(yg, yc) and xg.shape == xc.shape
            assert (xg - xc).abs().mean() < 0.15  # normalised units: the same crops, another decoder and filter


def test_compiled_forward_trains_like_eager():
    cfg = dict(TINY, batch_size=32)
    eager, compiled = Trainer(TrialConfig(**cfg)), Trainer(TrialConfig(**cfg, compile=True))
    assert compiled.forward is not compiled.net and eager.forward is eager.net
    loader = make_loader(eager.data, "train", 32, device=eager.device, epoch=0, seed=0)
    for i, (x, y) in zip(range(3), loader):
        a, b = eager.step(x, y, i).item(), compiled.step(x, y, i).item()
        assert math.isfinite(b) and abs(a - b) <= 0.02 * abs(a)  # same maths, bf16 rounding apart
