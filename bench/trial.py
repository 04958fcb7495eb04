"""One training run (a trial): the paper's recipe on one (model, optimizer, lr, wd), resumable.

``run_trial(cfg, out_dir)`` trains, checkpoints ``out_dir/checkpoint.pt`` atomically after every
epoch, resumes from it when started again with the same config, and writes ``out_dir/result.json``
at the end (a finished trial returns that file at once).  A non-finite loss ends the trial as
``diverged`` with chance-level error: a result, not a crash.  Under torch.distributed env vars
(WORLD_SIZE > 1) it trains with DistributedDataParallel; only rank 0 writes.
"""
from __future__ import annotations

import math
import os
import random
import resource
import socket
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench import models, provenance, recipe as recipes
from bench.complexity import complexity
from bench.data import DataBundle, DataError, load_data, make_loader
from bench.distributed import DistEnv
from bench.core.identity import TrialConfig, TrialError, finished, same_run  # noqa: F401 (re-exported)
from bench.core.errors import UserError
from bench.io import atomic_save, atomic_write_json


PRECISE_BN_EPOCH0 = 1_000_000  # the precise-BN batches of epoch e are those of this epoch + e: none trains on them


def _seed_epoch(seed: int, epoch: int) -> None:
    """Every random source of an epoch derives from (seed, epoch) alone, so a resumed epoch replays exactly."""
    s = (seed * 1_000_003 + epoch) % 2**31
    random.seed(s)
    np.random.seed(s)  # timm's Mixup draws from numpy's global RNG
    torch.manual_seed(s)


def _peak_mem_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, amp: bool, dist: DistEnv) -> float:
    """Top-1 error (%) over the loader, all-reduced across ranks; one host sync at the end."""
    model.eval()
    counts = torch.zeros(2, device=device, dtype=torch.float64)
    for x, y in loader:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        counts[0] += (logits.argmax(1) == y).sum()
        counts[1] += y.numel()
    dist.all_reduce(counts)
    correct, total = counts.tolist()
    return 100.0 * (1.0 - correct / max(total, 1.0))


@torch.no_grad()
def precise_bn(model: nn.Module, batches, dist: DistEnv) -> None:
    """pycls's precise BN statistics: every BatchNorm's running mean and variance replaced by the
    average of its batch statistics over ``batches`` (forward passes in train mode), averaged over
    ranks. Models without BatchNorm are left as they are."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    was_training = model.training
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average of the batches' statistics
    model.train()
    for x in batches:
        model(x)
    for bn, m in zip(bns, momenta):
        bn.momentum = m
        for buf in (bn.running_mean, bn.running_var):
            dist.all_reduce(buf)
            buf /= dist.world_size
    model.train(was_training)


class Trainer:
    """The training state of one trial and its per-epoch loop (the hot path)."""

    def __init__(self, cfg: TrialConfig, dist: DistEnv = DistEnv(), data: DataBundle | None = None):
        self.cfg, self.dist = cfg, dist
        self.device = dist.device(cfg.device)
        self.cuda = self.device.type == "cuda"
        self.recipe = recipes.RECIPES[cfg.recipe]
        self.resolution = cfg.resolution or models.default_resolution(cfg.model)
        try:
            self.data = data or load_data(cfg.data, self.resolution)
        except (UserError, DataError) as e:
            raise TrialError(str(e)) from None
        if cfg.batch_size % (2 * dist.world_size):
            raise TrialError(f"batch size {cfg.batch_size} must split into even per-rank batches over {dist.world_size} ranks")
        self.rank_batch = cfg.batch_size // dist.world_size
        torch.manual_seed(cfg.seed)
        self.model = models.create(cfg.model, num_classes=self.data.num_classes, img_size=self.resolution)
        self.model.to(self.device, memory_format=torch.channels_last if self.cuda else torch.contiguous_format)
        self.steps_per_epoch = len(self._loader("train", 0))
        if self.steps_per_epoch == 0:
            raise TrialError(f"batch size {cfg.batch_size} is larger than the training set of {cfg.data!r}")
        self.lr = recipes.scaled_lr(cfg.lr, cfg.batch_size)
        self.optimizer = recipes.build_optimizer(self.model, cfg.optimizer, self.lr, cfg.wd)
        self.scheduler = recipes.build_scheduler(self.optimizer, self.recipe, self.lr, cfg.epochs, self.steps_per_epoch)
        self.mixup = recipes.build_mixup(self.recipe, self.data.num_classes)
        self.loss_fn = recipes.build_loss(self.recipe, self.mixup)
        self.ema_every = recipes.ema_period(self.recipe, self.steps_per_epoch)
        self.ema = recipes.build_ema(self.model, self.recipe, cfg.epochs * self.steps_per_epoch, self.ema_every)
        self.net = dist.wrap(self.model)
        # the training forward; compiled, it fuses the elementwise work and cuts kernel launches (GPU)
        self.forward = torch.compile(self.net) if cfg.compile else self.net
        # divergence is read from the running loss sum: every step on CPU (free), every 50 on CUDA
        self.check_every = 50 if self.cuda else 1
        self.epoch, self.curve = 0, []

    def _loader(self, split: str, epoch: int):
        return make_loader(self.data, split, self.rank_batch if split == "train" else 2 * self.rank_batch,
                           device=self.device, epoch=epoch, seed=self.cfg.seed,
                           augment=self.recipe.augment if split == "train" else "none",
                           lighting=self.recipe.pca_lighting if split == "train" else 0.0,
                           workers=min(8, os.cpu_count() or 1) if self.cuda else 0,
                           rank=self.dist.rank, world_size=self.dist.world_size)

    def step(self, x: torch.Tensor, y: torch.Tensor, global_step: int) -> torch.Tensor:
        """One optimisation step; returns the loss as a device tensor (no host sync)."""
        self.scheduler.step_update(global_step)
        if self.mixup is not None:
            x, y = self.mixup(x, y)
        if self.cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            loss = self.loss_fn(self.forward(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None and (global_step + 1) % self.ema_every == 0:
            self.ema.update(self.model, step=(global_step + 1) // self.ema_every)
        return loss.detach()

    def train_epoch(self) -> tuple[float, int, bool]:
        """Train one epoch: (mean loss, images seen on this rank, diverged)."""
        _seed_epoch(self.cfg.seed, self.epoch)
        self.net.train()
        loss_sum = torch.zeros((), device=self.device)
        images, base = 0, self.epoch * self.steps_per_epoch
        for i, (x, y) in enumerate(self._loader("train", self.epoch)):
            loss_sum += self.step(x, y, base + i)
            images += x.shape[0]
            if (i + 1) % self.check_every == 0 and self._diverged(loss_sum):
                return math.nan, images, True
        mean = (loss_sum / max(self.steps_per_epoch, 1)).item()
        return mean, images, self._diverged(loss_sum)

    def precise_bn(self) -> None:
        """Before an evaluation: the model's and the EMA's BN statistics recomputed on the recipe's
        ``precise_bn`` training images (a stream of its own, seeded apart from training's)."""
        if not self.recipe.precise_bn:
            return
        n = max(1, round(self.recipe.precise_bn / (self.rank_batch * self.dist.world_size)))
        for model in (self.model, *((self.ema.module,) if self.ema is not None else ())):
            loader = self._loader("train", PRECISE_BN_EPOCH0 + self.epoch)
            precise_bn(model, (x for _, (x, _) in zip(range(n), loader)), self.dist)

    def _diverged(self, loss_sum: torch.Tensor) -> bool:
        flag = (~torch.isfinite(loss_sum)).float().reshape(1)
        self.dist.all_reduce(flag)
        return bool(flag.item())

    def state(self) -> dict:
        return dict(config=self.cfg.identity(), epoch=self.epoch, curve=self.curve, model=self.model.state_dict(),
                    optimizer=self.optimizer.state_dict(),
                    ema=self.ema.module.state_dict() if self.ema is not None else None)

    def load(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.module.load_state_dict(state["ema"])
        self.epoch, self.curve = state["epoch"], state["curve"]


def _load_checkpoint(path: Path, cfg: TrialConfig, device: torch.device) -> dict | None:
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # a torn or corrupt file: keep it for inspection, start over
        path.replace(path.with_suffix(".corrupt"))
        warnings.warn(f"checkpoint {path} is unreadable ({type(e).__name__}); kept as .corrupt, starting over")
        return None
    if not same_run(state.get("config"), cfg):
        raise TrialError(f"{path} belongs to another trial configuration ({state.get('config')}); "
                         "use another --out directory or delete it")
    return state


def run_trial(cfg: TrialConfig, out_dir, *, log=print) -> dict:
    """Train ``cfg`` (resuming from ``out_dir``), return the result dict; see the module docstring."""
    cfg.validate()
    out = Path(out_dir)
    result_path, ckpt_path = out / "result.json", out / "checkpoint.pt"
    done = finished(out, cfg)
    if done is not None:
        return done
    dist = DistEnv.from_env()
    with dist.session():
        if dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
        trainer = Trainer(cfg, dist)
        state = _load_checkpoint(ckpt_path, cfg, trainer.device)
        if state is not None:
            trainer.load(state)
            log(f"resuming {cfg.model} from epoch {trainer.epoch} ({ckpt_path})")
        result = _train(trainer, ckpt_path, log)
        if dist.is_main:
            atomic_write_json(result_path, result)
            ckpt_path.unlink(missing_ok=True)
        dist.barrier()
    return result


def _train(t: Trainer, ckpt_path: Path, log) -> dict:
    cfg, dist = t.cfg, t.dist
    chance = 100.0 * (1.0 - 1.0 / t.data.num_classes)
    diverged = any(row.get("diverged") for row in t.curve)
    start = time.perf_counter()
    while t.epoch < cfg.epochs and not diverged:
        if t.cuda:
            torch.cuda.reset_peak_memory_stats(t.device)
        tic = time.perf_counter()
        loss, images, diverged = t.train_epoch()
        train_s = time.perf_counter() - tic
        row = dict(epoch=t.epoch + 1, train_loss=None if diverged else loss, img_per_s=images * dist.world_size / train_s, diverged=diverged)
        if diverged:
            row.update(error=chance, raw_error=chance)
        else:  # the headline error is the EMA model's, as pycls's sweeps rank runs (test_ema_epoch)
            t.precise_bn()
            row["raw_error"] = evaluate(t.net, t._loader("val", t.epoch), t.device, t.cuda, dist)
            row["error"] = (evaluate(t.ema.module, t._loader("val", t.epoch), t.device, t.cuda, dist)
                            if t.ema is not None else row["raw_error"])
        row.update(seconds=time.perf_counter() - tic, peak_mem_mb=_peak_mem_mb(t.device))
        t.curve.append(row)
        t.epoch += 1
        log(f"{cfg.model} {cfg.optimizer} lr={cfg.lr:.3g} wd={cfg.wd:.3g} epoch {t.epoch}/{cfg.epochs}: "
            f"loss {loss:.4f} err {row['error']:.2f} (raw {row['raw_error']:.2f}) "
            f"{row['img_per_s']:.0f} img/s{' DIVERGED' if diverged else ''}")
        if dist.is_main and t.epoch < cfg.epochs and not diverged:
            atomic_save(t.state(), ckpt_path)
        dist.barrier()
    return _result(t, chance, diverged, time.perf_counter() - start)


def _result(t: Trainer, chance: float, diverged: bool, seconds: float) -> dict:
    cx = complexity(t.cfg.model, t.resolution, num_classes=t.data.num_classes)
    curve = t.curve
    error = chance if diverged else min(r["error"] for r in curve)
    raw_error = chance if diverged else min(r["raw_error"] for r in curve)
    return dict(
        config=t.cfg.identity(), error=error, raw_error=raw_error, final_error=curve[-1]["error"], diverged=diverged,
        epochs_done=len(curve), seconds=sum(r["seconds"] for r in curve), run_seconds=seconds,
        img_per_s=float(np.mean([r["img_per_s"] for r in curve])), num_classes=t.data.num_classes, chance=chance,
        gflops=cx["flops"] / 1e9, params_m=cx["params"] / 1e6, acts_m=cx["acts"] / 1e6,
        resolution=t.resolution, batch_size=t.cfg.batch_size, lr_used=t.lr, data=t.cfg.data,
        device=str(t.device), world_size=t.dist.world_size, host=socket.gethostname(), curve=curve,
        provenance=provenance.of(t.cfg.data),
    )
