"""One training run (a trial): the paper's recipe on one (model, optimizer, lr, wd), resumable.

``run_trial(cfg, out_dir)`` trains, checkpoints the trial folder's ``checkpoint.pt`` atomically
after every epoch, resumes from it when started again with the same config, and writes its
``result.json`` at the end (a finished trial returns that file at once; ``bench.core.layout.TrialDir``
names the files). A non-finite loss ends the trial as ``diverged`` with chance-level error: a
result, not a crash. Under torch.distributed env vars (WORLD_SIZE > 1) it trains with
DistributedDataParallel; only rank 0 writes.

The engine is public so that ``bench.fused`` plugs into it: :class:`Trainer` runs the epoch loop,
the evaluations, the checkpoints and the results of its members (one trial here; a subclass trains
several in lockstep, replacing ``step``, ``bn_models``, ``eval_models``, ``state`` and ``load``), with
:func:`evaluate`, :func:`precise_bn`, :func:`load_checkpoint`, :func:`seed_epoch` and :func:`peak_mem_mb`.
"""
from __future__ import annotations

import math
import os
import random
import resource
import socket
import time
import warnings
from functools import cached_property

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from bench import models, provenance, recipe as recipes
from bench.complexity import complexity
from bench.core.errors import UserError
from bench.core.identity import TrialConfig, TrialError, finished, same_run
from bench.core.layout import TrialDir
from bench.core.records import chance_error
from bench.data import DataBundle, DataError, load_data, make_loader
from bench.distributed import DistEnv
from bench.io import atomic_save, atomic_write_json

PRECISE_BN_EPOCH0 = 1_000_000  # the precise-BN batches of epoch e are those of this epoch + e: none trains on them


def seed_epoch(seed: int, epoch: int) -> None:
    """Every random source of an epoch derives from (seed, epoch) alone, so a resumed epoch replays exactly."""
    s = (seed * 1_000_003 + epoch) % 2**31
    random.seed(s)
    np.random.seed(s)  # timm's Mixup draws from numpy's global RNG
    torch.manual_seed(s)


def peak_mem_mb(device: torch.device) -> float:
    """Peak memory of this epoch: the GPU's allocations, else the process's resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, amp: bool, dist: DistEnv, forward=None,
             members: int = 1) -> list[float]:
    """Top-1 error (%) over the loader, all-reduced across ranks; one host sync at the end. ``forward(x)``
    (default: the model) gives [B, C] logits, or [members, B, C] for several models at once: one error each."""
    model.eval()
    forward = forward or model
    counts = torch.zeros(members + 1, device=device, dtype=torch.float64)  # hits per member, then images
    for x, y in loader:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            logits = forward(x)
        counts[:-1] += (logits.argmax(-1) == y).sum(-1)
        counts[-1] += y.numel()
    dist.all_reduce(counts)
    *correct, total = counts.tolist()
    return [100.0 * (1.0 - c / max(total, 1.0)) for c in correct]


@torch.no_grad()
def precise_bn(model: nn.Module, batches, dist: DistEnv, states: list[dict] | None = None) -> None:
    """pycls's precise BN statistics: every BatchNorm's running mean and variance replaced by the
    average of its batch statistics over ``batches`` (forward passes in train mode), averaged over
    ranks. Models without BatchNorm are left as they are. ``states``: the state dicts of several
    models of ``model``'s architecture (bench.fused's members) to recompute instead of its own, each
    batch fed to every one."""
    bns = {n: m for n, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    if not bns:
        return
    own = states is None
    states = [dict(model.named_buffers())] if own else states
    was_training, momenta = model.training, {n: bn.momentum for n, bn in bns.items()}
    for n, bn in bns.items():
        bn.momentum = None  # a cumulative average of the batches' statistics
        for s in states:  # BatchNorm's reset_running_stats, on each state
            s[f"{n}.running_mean"].zero_(), s[f"{n}.running_var"].fill_(1), s[f"{n}.num_batches_tracked"].zero_()
    model.train()
    for x in batches:
        for s in states:
            model(x) if own else functional_call(model, s, (x,))
    for n, bn in bns.items():
        bn.momentum = momenta[n]
        for buf in (s[f"{n}.{b}"] for s in states for b in ("running_mean", "running_var")):
            dist.all_reduce(buf)
            buf /= dist.world_size
    model.train(was_training)


def load_checkpoint(trial: TrialDir, cfg: TrialConfig, device: torch.device) -> dict | None:
    """The trial's checkpoint (None: none, or an unreadable one, kept as .corrupt); another config's is an error."""
    path = trial.checkpoint
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


class Trainer:
    """The training state of one trial (a member) and the epoch loop of its members (the hot path)."""

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
        # channels_last on every device: convolutions run 1.4x faster on CPU too (regnety_4mf, one thread;
        # ViTs alike within noise; docs/performance.md)
        self.model.to(self.device, memory_format=torch.channels_last)
        self.steps_per_epoch = len(self.loader("train", 0))
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
        # the members: their configs, lrs (scaled to the batch) and curves
        self.cfgs, self.lrs, self.curves = [cfg], [self.lr], [[]]
        self.epoch = 0

    def loader(self, split: str, epoch: int):
        """The split's batches of an epoch on this rank (training ones augmented by the recipe)."""
        return make_loader(self.data, split, self.rank_batch if split == "train" else 2 * self.rank_batch,
                           device=self.device, epoch=epoch, seed=self.cfg.seed,
                           augment=self.recipe.augment if split == "train" else "none",
                           lighting=self.recipe.pca_lighting if split == "train" else 0.0,
                           workers=min(8, os.cpu_count() or 1) if self.cuda else 0,
                           rank=self.dist.rank, world_size=self.dist.world_size)

    def bn_batches(self):
        """This epoch's precise-BN images: ``recipe.precise_bn`` training images of a stream of their own
        (seeded apart from training's), a fresh pass at each call."""
        n = max(1, round(self.recipe.precise_bn / (self.rank_batch * self.dist.world_size)))
        return (x for _, (x, _) in zip(range(n), self.loader("train", PRECISE_BN_EPOCH0 + self.epoch)))

    def step(self, x: torch.Tensor, y: torch.Tensor, global_step: int) -> torch.Tensor:
        """One optimisation step; returns the loss as a device tensor (no host sync)."""
        self.scheduler.step_update(global_step)
        if self.mixup is not None:
            x, y = self.mixup(x, y)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            loss = self.loss_fn(self.forward(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.ema is not None and (global_step + 1) % self.ema_every == 0:
            self.ema.update(self.model, step=(global_step + 1) // self.ema_every)
        return loss.detach()

    def train_epoch(self) -> tuple[list[float], int, list[bool]]:
        """Train one epoch: each member's mean loss and whether it diverged, and the images seen on this
        rank; the epoch ends early once every member has diverged."""
        seed_epoch(self.cfg.seed, self.epoch)
        self.net.train()
        loss_sum = torch.zeros(len(self.cfgs), device=self.device)
        images, base = 0, self.epoch * self.steps_per_epoch
        for i, (x, y) in enumerate(self.loader("train", self.epoch)):
            loss_sum += self.step(x, y, base + i)
            images += x.shape[0]
            if (i + 1) % self.check_every == 0 and all(self._diverged(loss_sum)):
                return [math.nan] * len(self.cfgs), images, [True] * len(self.cfgs)
        return (loss_sum / max(self.steps_per_epoch, 1)).tolist(), images, self._diverged(loss_sum)

    def _diverged(self, loss_sum: torch.Tensor) -> list[bool]:
        flags = (~torch.isfinite(loss_sum)).float()
        self.dist.all_reduce(flags)
        return [bool(f) for f in flags.tolist()]

    def bn_models(self) -> list[tuple[nn.Module, list[dict] | None]]:
        """What precise BN recomputes, as (module, the members' states or None: its own): the model, the EMA."""
        return [(m, None) for m in (self.model, *((self.ema.module,) if self.ema is not None else ()))]

    def eval_models(self) -> list[tuple[nn.Module, object]]:
        """What is evaluated, as (module, forward or None: its own): the model, then the EMA (if any)."""
        return [(m, None) for m in (self.net, *((self.ema.module,) if self.ema is not None else ()))]

    def precise_bn(self) -> None:
        """Before an evaluation: the BN statistics of ``bn_models`` recomputed on ``bn_batches``."""
        if not self.recipe.precise_bn:
            return
        for model, states in self.bn_models():
            precise_bn(model, self.bn_batches(), self.dist, states)

    def errors(self) -> tuple[list[float], list[float]]:
        """Each member's validation error (%), raw model and EMA model (the raw one's without an EMA),
        after precise BN."""
        self.precise_bn()
        raw, *ema = [evaluate(model, self.loader("val", self.epoch), self.device, self.cuda, self.dist, forward,
                              members=len(self.cfgs)) for model, forward in self.eval_models()]
        return raw, ema[0] if ema else raw

    def state(self, k: int = 0) -> dict:
        """Member k's checkpoint."""
        return dict(config=self.cfgs[k].identity(), epoch=self.epoch, curve=self.curves[k], model=self.model.state_dict(),
                    optimizer=self.optimizer.state_dict(),
                    ema=self.ema.module.state_dict() if self.ema is not None else None)

    def load(self, state: dict, k: int = 0) -> None:
        """Member k from its checkpoint."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None:
            self.ema.module.load_state_dict(state["ema"])
        self.epoch, self.curves[k] = state["epoch"], state["curve"]

    def train(self, trials: list[TrialDir], log) -> list[dict]:
        """Train every member to its end (or divergence), checkpointing each in its trial folder after
        every epoch; a member's result is written there when it ends. Returns the results in order."""
        chance = chance_error(self.data.num_classes)
        active = [not any(r.get("diverged") for r in curve) for curve in self.curves]
        results: list = [None] * len(self.cfgs)
        start = time.perf_counter()
        while self.epoch < self.cfg.epochs and any(active):
            if self.cuda:
                torch.cuda.reset_peak_memory_stats(self.device)
            tic = time.perf_counter()
            losses, images, diverged = self.train_epoch()
            train_s = time.perf_counter() - tic
            # the headline error is the EMA model's, as pycls's sweeps rank runs (test_ema_epoch)
            raw, ema = self.errors() if not all(d for d, a in zip(diverged, active) if a) else (None, None)
            seconds, peak = time.perf_counter() - tic, peak_mem_mb(self.device)
            self.epoch += 1
            for k in [k for k, a in enumerate(active) if a]:
                row = dict(epoch=self.epoch, train_loss=None if diverged[k] else losses[k],
                           img_per_s=images * self.dist.world_size / train_s, diverged=diverged[k])
                row.update(dict(error=chance, raw_error=chance) if diverged[k] else dict(raw_error=raw[k], error=ema[k]))
                row.update(seconds=seconds, peak_mem_mb=peak)
                self.curves[k].append(row)
                log(self._line(k, row, losses[k]))
                if self.epoch < self.cfg.epochs and not diverged[k]:
                    if self.dist.is_main:
                        atomic_save(self.state(k), trials[k].checkpoint)
                else:
                    results[k] = self._finish(k, trials[k], chance, diverged[k], time.perf_counter() - start)
                    active[k] = False
            self.dist.barrier()
        return results

    def _line(self, k: int, row: dict, loss: float) -> str:
        c, fused = self.cfgs[k], f" (fused x{len(self.cfgs)})" if len(self.cfgs) > 1 else ""
        return (f"{c.model} {c.optimizer} lr={c.lr:.3g} wd={c.wd:.3g} epoch {self.epoch}/{c.epochs}{fused}: "
                f"loss {loss:.4f} err {row['error']:.2f} (raw {row['raw_error']:.2f}) "
                f"{row['img_per_s']:.0f} img/s{' DIVERGED' if row['diverged'] else ''}")

    @cached_property
    def _complexity(self) -> dict:
        return complexity(self.cfg.model, self.resolution, num_classes=self.data.num_classes)

    def _finish(self, k: int, trial: TrialDir, chance: float, diverged: bool, seconds: float) -> dict:
        """Member k's result, written to its trial folder (whose checkpoint goes)."""
        curve, cfg, cx = self.curves[k], self.cfgs[k], self._complexity
        result = dict(
            config=cfg.identity(), error=chance if diverged else min(r["error"] for r in curve),
            raw_error=chance if diverged else min(r["raw_error"] for r in curve), final_error=curve[-1]["error"],
            diverged=diverged, epochs_done=len(curve), seconds=sum(r["seconds"] for r in curve), run_seconds=seconds,
            img_per_s=float(np.mean([r["img_per_s"] for r in curve])), num_classes=self.data.num_classes, chance=chance,
            gflops=cx["flops"] / 1e9, params_m=cx["params"] / 1e6, acts_m=cx["acts"] / 1e6,
            resolution=self.resolution, batch_size=cfg.batch_size, lr_used=self.lrs[k], data=cfg.data,
            device=str(self.device), world_size=self.dist.world_size, host=socket.gethostname(), curve=curve,
            provenance=provenance.of(cfg.data),
        )
        if self.dist.is_main:
            atomic_write_json(trial.result, result)
            trial.checkpoint.unlink(missing_ok=True)
        return result


def run_trial(cfg: TrialConfig, out_dir, *, log=print) -> dict:
    """Train ``cfg`` (resuming from its trial folder ``out_dir``), return the result dict; see the module docstring."""
    cfg.validate()
    trial = TrialDir(out_dir)
    done = finished(trial.path, cfg)
    if done is not None:
        return done
    dist = DistEnv.from_env()
    with dist.session():
        if dist.is_main:
            trial.path.mkdir(parents=True, exist_ok=True)
        trainer = Trainer(cfg, dist)
        state = load_checkpoint(trial, cfg, trainer.device)
        if state is not None:
            trainer.load(state)
            log(f"resuming {cfg.model} from epoch {trainer.epoch} ({trial.checkpoint})")
        (result,) = trainer.train([trial], log)
    return result
