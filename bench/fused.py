"""Fused trials: up to K trials that differ only in (lr, wd) trained in lockstep in one process.

The members of a fused group share model, optimizer, seed, epochs, data, recipe, batch size and
resolution (``fuse_key``), so they start from the same weights and see the same batches: each batch
is loaded, augmented (mixup/CutMix drawn once) and moved once. Their parameters and buffers are
stacked (``torch.func.stack_module_state``) and the K forwards and backwards run as one ``vmap`` of
``functional_call`` over the shared batch; BatchNorm running statistics stay per member (stacked
buffers, updated in place under vmap). The optimizer is the maths of the torch AdamW / Nesterov SGD
that timm builds (``recipe.build_optimizer``), over stacked tensors with lr and wd of shape [K]; the
lr follows timm's cosine schedule (``recipe.build_scheduler`` at lr 1, times each member's lr), the
EMA ModelEmaV3's decay. A member whose loss turns non-finite is masked out on the device at that
step (``torch.where``: its NaNs reach no other member) and recorded as diverged at that epoch.

Every member keeps its own trial dir: the checkpoint (the unfused ``Trainer.state()`` format, so
fused and unfused runs resume each other's) and a ``result.json`` made by ``bench.trial._result``.
Not fused: precise BN (a loop over the members on each shared batch), DDP (one process only) and
``--compile`` (ignored).
"""
from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch
from torch.func import functional_call, stack_module_state, vmap

from bench import recipe as recipes
from bench.core.identity import TrialConfig, TrialError, finished, fuse_key
from bench.distributed import DistEnv
from bench.io import atomic_save, atomic_write_json
from bench.trial import PRECISE_BN_EPOCH0, Trainer, _load_checkpoint, _peak_mem_mb, _result, _seed_epoch, run_trial


def groups(items: list, k: int) -> list[list]:
    """(config, out_dir) items in groups of at most ``k`` with one ``fuse_key``, in first-seen order."""
    by_key: dict = {}
    for item in items:
        by_key.setdefault(fuse_key(item[0]), []).append(item)
    return [g[i:i + k] for g in by_key.values() for i in range(0, len(g), max(1, k))]


VMAP_FALLBACK = "There is a performance drop because we have not yet implemented the batching rule"


def run_fused(items: list[tuple[TrialConfig, str]], *, log=print) -> list[dict]:
    """Train the trials of ``items`` (one ``fuse_key``) fused; returns their results in order.

    Finished members return their result. The others resume from their own checkpoints; members at
    different epochs train in separate groups, one per start epoch (a group of one unfused, by
    ``run_trial``)."""
    for cfg, _ in items:
        cfg.validate()
    if len({fuse_key(cfg) for cfg, _ in items}) > 1:
        raise TrialError("fused trials must differ only in lr and wd")
    if DistEnv.from_env().world_size > 1:
        raise TrialError("fused trials run in one process: no DDP (use --fuse 1)")
    results: dict[int, dict] = {}
    todo = []
    for i, (cfg, out) in enumerate(items):
        done = finished(out, cfg)
        if done is not None:
            results[i] = done
        else:
            Path(out).mkdir(parents=True, exist_ok=True)
            todo.append(i)
    data, by_epoch = None, {}
    for i in todo:
        cfg, out = items[i]
        state = _load_checkpoint(Path(out) / "checkpoint.pt", cfg, torch.device("cpu"))
        by_epoch.setdefault(state["epoch"] if state else 0, []).append((i, state))
    for epoch, members in sorted(by_epoch.items()):
        if len(members) == 1:
            (i, _), = members
            results[i] = run_trial(*items[i], log=log)
            continue
        ft = FusedTrainer([items[i][0] for i, _ in members], data=data)
        data = ft.t.data
        for k, (i, state) in enumerate(members):
            if state is not None:
                ft.load(k, state)
                log(f"resuming {items[i][0].model} (fused) from epoch {epoch} ({items[i][1]})")
        with warnings.catch_warnings():  # vmap's note, on every CPU step of attention, that it loops instead
            warnings.filterwarnings("ignore", message=VMAP_FALLBACK)  # (docs/performance.md: CPU runs unfused)
            for (i, _), r in zip(members, ft.train([Path(items[i][1]) for i, _ in members], log)):
                results[i] = r
    return [results[i] for i in range(len(items))]


class FusedTrainer:
    """The stacked training state of K trials and their lockstep epoch loop."""

    def __init__(self, cfgs: list[TrialConfig], data=None):
        self.cfgs, K = cfgs, len(cfgs)
        self.t = t = Trainer(cfgs[0], data=data)  # data, loaders, the initial model, mixup, loss, EMA decay
        self.device, self.K = t.device, K
        self.base_lr = [recipes.scaled_lr(c.lr, c.batch_size) for c in cfgs]
        dev = dict(device=self.device)
        self.lr = torch.tensor(self.base_lr, **dev)
        self.wd = torch.tensor([c.wd for c in cfgs], **dev)
        # the schedule's shape: timm's scheduler at lr 1 on an optimizer of its own
        self._unit_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        self.unit = recipes.build_scheduler(self._unit_opt, t.recipe, 1.0, cfgs[0].epochs, t.steps_per_epoch)
        ref = recipes.build_optimizer(t.model, cfgs[0].optimizer, 1.0, 1.0)  # timm's groups: which params decay
        self.hp = ref.defaults
        self._check_hp(cfgs[0].optimizer)
        names = {id(p): n for n, p in t.model.named_parameters()}
        self.decays = {names[id(p)]: g["weight_decay"] > 0 for g in ref.param_groups for p in g["params"]}
        params, buffers = stack_module_state([t.model] * K)
        self.params, self.buffers = params, buffers
        zeros = {n: torch.zeros_like(p) for n, p in params.items()}
        self.opt_state = ({"exp_avg": zeros, "exp_avg_sq": {n: torch.zeros_like(p) for n, p in params.items()}}
                          if cfgs[0].optimizer == "adamw" else {"momentum_buffer": zeros})
        self.ema = ({n: v.detach().clone() for n, v in self._model_state().items()} if t.ema is not None else None)
        self.alive = torch.ones(K, dtype=torch.bool, **dev)
        self.epoch, self.curves = t.epoch, [[] for _ in cfgs]

    def _check_hp(self, name: str) -> None:
        """The optimizer maths below is torch's AdamW / Nesterov SGD with these settings only."""
        hp = self.hp
        want = (dict(amsgrad=False, maximize=False) if name == "adamw"
                else dict(momentum=0.9, dampening=0, nesterov=True, maximize=False))
        if any(hp.get(k) != v for k, v in want.items()):
            raise TrialError(f"fused {name}: timm built it with {hp}, which bench.fused does not implement")

    def _model_state(self) -> dict:
        """The stacked state_dict (parameters and buffers, in the model's state_dict order)."""
        both = {**self.params, **self.buffers}
        return {n: both[n] for n in self.t.model.state_dict()}

    def _view(self, v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return v.view(self.K, *[1] * (like.ndim - 1))

    def _forward(self, state, x):
        return vmap(lambda s, x: functional_call(self.t.model, s, (x,)), in_dims=(0, None))(state, x)

    def step(self, x: torch.Tensor, y: torch.Tensor, global_step: int) -> torch.Tensor:
        """One step of every member; returns the [K] losses (NaN for the masked ones), no host sync."""
        t = self.t
        self.unit.step_update(global_step)
        lr = self.lr * self._unit_opt.param_groups[0]["lr"]
        if t.mixup is not None:
            x, y = t.mixup(x, y)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=t.cuda):
            logits = self._forward((self.params, self.buffers), x)
            losses = vmap(t.loss_fn, in_dims=(0, None))(logits.float(), y)
        alive = self.alive & torch.isfinite(losses)
        names = list(self.params)
        grads = torch.autograd.grad(torch.where(alive, losses, 0.0).sum(), [self.params[n] for n in names],
                                    allow_unused=True)
        with torch.no_grad():
            self._update(dict(zip(names, grads)), lr, alive, global_step + 1)
            self.alive = alive
            if self.ema is not None and (global_step + 1) % t.ema_every == 0:
                decay = t.ema.get_decay((global_step + 1) // t.ema_every)
                for n, v in self._model_state().items():
                    self.ema[n].lerp_(v, 1.0 - decay) if v.is_floating_point() else self.ema[n].copy_(v)
        return torch.where(alive, losses.detach(), math.nan)

    def _update(self, grads: dict, lr: torch.Tensor, alive: torch.Tensor, step: int) -> None:
        """torch's AdamW / Nesterov-SGD step per member; masked members keep parameters and state."""
        adamw = self.cfgs[0].optimizer == "adamw"
        for n, g in grads.items():
            if g is None:  # torch's optimizers skip a parameter without a gradient
                continue
            p = self.params[n]
            lr_ = self._view(lr, p)
            wd = self._view(self.wd, p) if self.decays[n] else None
            new = {}
            if adamw:
                b1, b2 = self.hp["betas"]
                m = self.opt_state["exp_avg"][n].lerp(g, 1 - b1)
                v = self.opt_state["exp_avg_sq"][n] * b2 + (1 - b2) * g * g
                denom = v.sqrt() / math.sqrt(1 - b2 ** step) + self.hp["eps"]
                q = p * (1 - lr_ * wd) if wd is not None else p
                new = {"exp_avg": m, "exp_avg_sq": v, None: q - (lr_ / (1 - b1 ** step)) * (m / denom)}
            else:
                d = g + wd * p if wd is not None else g
                buf = self.opt_state["momentum_buffer"][n] * self.hp["momentum"] + d
                new = {"momentum_buffer": buf, None: p - lr_ * (d + self.hp["momentum"] * buf)}
            keep = self._view(alive, p)
            for k, value in new.items():
                old = p if k is None else self.opt_state[k][n]
                old.copy_(torch.where(keep, value, old))

    def train_epoch(self) -> tuple[list[float], int, list[bool]]:
        """Train one epoch: per member (mean loss, diverged), and the images each saw."""
        t = self.t
        _seed_epoch(self.cfgs[0].seed, self.epoch)
        t.model.train()
        loss_sum = torch.zeros(self.K, device=self.device)
        images, base = 0, self.epoch * t.steps_per_epoch
        for i, (x, y) in enumerate(t._loader("train", self.epoch)):
            loss_sum += self.step(x, y, base + i)
            images += x.shape[0]
        mean = (loss_sum / max(t.steps_per_epoch, 1)).tolist()
        return mean, images, [not math.isfinite(v) for v in mean]

    @torch.no_grad()
    def evaluate(self, state: dict) -> list[float]:
        """Top-1 error (%) of every member over the val loader."""
        self.t.model.eval()
        correct, total = torch.zeros(self.K, device=self.device, dtype=torch.float64), 0
        for x, y in self.t._loader("val", self.epoch):
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.t.cuda):
                logits = self._forward(state, x)
            correct += (logits.argmax(-1) == y).sum(1)
            total += y.numel()
        return (100.0 * (1.0 - correct / max(total, 1))).tolist()

    @torch.no_grad()
    def precise_bn(self) -> None:
        """``bench.trial.precise_bn`` per member for the model and the EMA: each shared batch is
        fed to the members one by one (cumulative BN averages cannot run under vmap)."""
        t = self.t
        bns = {n: m for n, m in t.model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}
        if not t.recipe.precise_bn or not bns:
            return
        n_batches = max(1, round(t.recipe.precise_bn / t.rank_batch))
        momenta = {n: m.momentum for n, m in bns.items()}
        t.model.train()
        for state in (self._model_state(), *((self.ema,) if self.ema is not None else ())):
            for n, m in bns.items():
                m.momentum = None
                state[f"{n}.running_mean"].zero_(), state[f"{n}.running_var"].fill_(1)
                state[f"{n}.num_batches_tracked"].zero_()
            loader = t._loader("train", PRECISE_BN_EPOCH0 + self.epoch)
            for _, (x, _) in zip(range(n_batches), loader):
                for k in range(self.K):
                    functional_call(t.model, {n: v[k] for n, v in state.items()}, (x,))
        for n, m in bns.items():
            m.momentum = momenta[n]

    def train(self, outs: list[Path], log) -> list[dict]:
        """Train every member to its end (or divergence), checkpointing each after every epoch; writes
        and returns the members' results."""
        t, cfg = self.t, self.cfgs[0]
        chance = 100.0 * (1.0 - 1.0 / t.data.num_classes)
        active = [not any(r.get("diverged") for r in c) for c in self.curves]
        results: list = [None] * self.K
        start = time.perf_counter()
        while self.epoch < cfg.epochs and any(active):
            if t.cuda:
                torch.cuda.reset_peak_memory_stats(self.device)
            tic = time.perf_counter()
            losses, images, diverged = self.train_epoch()
            train_s = time.perf_counter() - tic
            if not all(d for d, a in zip(diverged, active) if a):
                self.precise_bn()
                raw = self.evaluate(self._model_state())
                ema = self.evaluate(self.ema) if self.ema is not None else raw
            seconds, peak = time.perf_counter() - tic, _peak_mem_mb(self.device)
            self.epoch += 1
            for k in (k for k in range(self.K) if active[k]):
                c = self.cfgs[k]
                row = dict(epoch=self.epoch, train_loss=None if diverged[k] else losses[k],
                           img_per_s=images / train_s, diverged=diverged[k])
                row.update(dict(error=chance, raw_error=chance) if diverged[k] else dict(raw_error=raw[k], error=ema[k]))
                row.update(seconds=seconds, peak_mem_mb=peak)
                self.curves[k].append(row)
                log(f"{c.model} {c.optimizer} lr={c.lr:.3g} wd={c.wd:.3g} epoch {self.epoch}/{c.epochs} (fused x{self.K}): "
                    f"loss {losses[k]:.4f} err {row['error']:.2f} (raw {row['raw_error']:.2f}) "
                    f"{row['img_per_s']:.0f} img/s{' DIVERGED' if diverged[k] else ''}")
                if self.epoch < c.epochs and not diverged[k]:
                    atomic_save(self.state(k), outs[k] / "checkpoint.pt")
                else:
                    results[k] = self._finish(k, outs[k], chance, diverged[k], time.perf_counter() - start)
                    active[k] = False
        return results

    def _finish(self, k: int, out: Path, chance: float, diverged: bool, seconds: float) -> dict:
        t = self.t
        member = SimpleNamespace(cfg=self.cfgs[k], resolution=t.resolution, data=t.data, curve=self.curves[k],
                                 lr=self.base_lr[k], device=self.device, dist=t.dist)
        result = _result(member, chance, diverged, seconds)
        atomic_write_json(out / "result.json", result)
        (out / "checkpoint.pt").unlink(missing_ok=True)
        return result

    def _opt_names(self, k: int) -> list[list[str]]:
        """Parameter names per group of member k's own timm optimizer (its state_dict's index order)."""
        opt = recipes.build_optimizer(self.t.model, self.cfgs[k].optimizer, self.base_lr[k], self.cfgs[k].wd)
        names = {id(p): n for n, p in self.t.model.named_parameters()}
        return opt, [[names[id(p)] for p in g["params"]] for g in opt.param_groups]

    def state(self, k: int) -> dict:
        """Member k's checkpoint, as ``Trainer.state()`` writes it (its optimizer in torch's format)."""
        opt, groups_ = self._opt_names(k)
        sd = opt.state_dict()
        flat = [n for g in groups_ for n in g]
        step = torch.tensor(float(self.epoch * self.t.steps_per_epoch))
        sd["state"] = {i: {**({"step": step.clone()} if "exp_avg" in self.opt_state else {}),
                           **{key: v[n][k].clone() for key, v in self.opt_state.items()}}
                       for i, n in enumerate(flat)}
        one = lambda s: {n: v[k].detach().clone() for n, v in s.items()}  # noqa: E731 (copies: no shared storage)
        return dict(config=self.cfgs[k].identity(), epoch=self.epoch, curve=self.curves[k],
                    model=one(self._model_state()), optimizer=sd, ema=one(self.ema) if self.ema is not None else None)

    @torch.no_grad()
    def load(self, k: int, state: dict) -> None:
        """Member k from a checkpoint (fused or unfused); all members must be at one epoch."""
        if self.epoch and state["epoch"] != self.epoch:
            raise TrialError("fused members must resume from one epoch")
        for n, v in self._model_state().items():
            v[k].copy_(state["model"][n])
        _, groups_ = self._opt_names(k)
        saved = state["optimizer"]["state"]
        for i, n in enumerate(n for g in groups_ for n in g):
            for key, v in self.opt_state.items():
                if i in saved:
                    v[n][k].copy_(saved[i][key])
        if self.ema is not None:
            for n, v in self.ema.items():
                v[k].copy_(state["ema"][n])
        self.epoch, self.curves[k] = state["epoch"], state["curve"]
