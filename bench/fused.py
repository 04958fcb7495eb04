"""Fused trials: up to K trials that differ only in (lr, wd) trained in lockstep in one process.

The members of a fused group share model, optimizer, seed, epochs, data, recipe, batch size and
resolution (``fuse_key``), so they start from the same weights and see the same batches: each batch
is loaded, augmented (mixup/CutMix drawn once) and moved once. Their parameters and buffers are
stacked (``torch.func.stack_module_state``) and the K forwards and backwards run as one ``vmap`` of
``functional_call`` over the shared batch; BatchNorm running statistics stay per member (stacked
buffers, updated in place under vmap). The optimizer (:class:`StackedOptimizer`) is the maths of the
torch AdamW / Nesterov SGD that timm builds (``recipe.build_optimizer``), over stacked tensors with
lr and wd of shape [K]; the lr follows timm's cosine schedule (``recipe.build_scheduler`` at lr 1,
times each member's lr), the EMA ModelEmaV3's decay. A member whose loss turns non-finite is masked
out on the device at that step (``torch.where``: its NaNs reach no other member) and recorded as
diverged at that epoch.

:class:`FusedTrainer` is a ``bench.trial.Trainer`` of K members: the epoch loop, the evaluations,
the checkpoints (the unfused format, so fused and unfused runs resume each other's) and the results
are the engine's; it brings the stacked step, evaluation, precise BN (``bench.trial.precise_bn``
over the members' states, each shared batch fed to each) and per-member checkpoints. Not fused:
DDP (one process only) and ``--compile`` (ignored).
"""
from __future__ import annotations

import math
import warnings

import torch
from torch.func import functional_call, stack_module_state, vmap

from bench import recipe as recipes
from bench.core.identity import TrialConfig, TrialError, finished, fuse_key
from bench.core.layout import TrialDir
from bench.distributed import DistEnv
from bench.trial import Trainer, load_checkpoint, run_trial


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
    trials = [TrialDir(out) for _, out in items]
    results: dict[int, dict] = {}
    by_epoch: dict = {}
    for i, (cfg, _) in enumerate(items):
        done = finished(trials[i].path, cfg)
        if done is not None:
            results[i] = done
            continue
        trials[i].path.mkdir(parents=True, exist_ok=True)
        state = load_checkpoint(trials[i], cfg, torch.device("cpu"))
        by_epoch.setdefault(state["epoch"] if state else 0, []).append((i, state))
    data = None
    for epoch, members in sorted(by_epoch.items()):
        if len(members) == 1:
            (i, _), = members
            results[i] = run_trial(*items[i], log=log)
            continue
        ft = FusedTrainer([items[i][0] for i, _ in members], data=data)
        data = ft.data
        for k, (i, state) in enumerate(members):
            if state is not None:
                ft.load(state, k)
                log(f"resuming {items[i][0].model} (fused) from epoch {epoch} ({items[i][1]})")
        with warnings.catch_warnings():  # vmap's note, on every CPU step of attention, that it loops instead
            warnings.filterwarnings("ignore", message=VMAP_FALLBACK)  # (docs/performance.md: CPU runs unfused)
            for (i, _), r in zip(members, ft.train([trials[i] for i, _ in members], log)):
                results[i] = r
    return [results[i] for i in range(len(items))]


class StackedOptimizer:
    """torch's AdamW / Nesterov SGD, as timm builds them, over parameters stacked for K members, each
    with its own lr (on timm's cosine schedule) and wd; a masked member keeps its parameters and state."""

    def __init__(self, model: torch.nn.Module, params: dict, cfgs: list[TrialConfig], lrs: list[float], recipe,
                 steps_per_epoch: int):
        self.model, self.cfgs, self.lrs, self.adamw = model, cfgs, lrs, cfgs[0].optimizer == "adamw"
        device = next(iter(params.values())).device
        self.lr = torch.tensor(lrs, device=device)
        self.wd = torch.tensor([c.wd for c in cfgs], device=device)
        # the schedule's shape: timm's scheduler at lr 1 on an optimizer of its own
        self._unit_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        self._unit = recipes.build_scheduler(self._unit_opt, recipe, 1.0, cfgs[0].epochs, steps_per_epoch)
        ref = recipes.build_optimizer(model, cfgs[0].optimizer, 1.0, 1.0)  # timm's groups: which params decay
        self.hp = ref.defaults
        self._check_hp(cfgs[0].optimizer)
        names = {id(p): n for n, p in model.named_parameters()}
        self.decays = {names[id(p)]: g["weight_decay"] > 0 for g in ref.param_groups for p in g["params"]}
        self.state = ({"exp_avg": {n: torch.zeros_like(p) for n, p in params.items()},
                       "exp_avg_sq": {n: torch.zeros_like(p) for n, p in params.items()}} if self.adamw
                      else {"momentum_buffer": {n: torch.zeros_like(p) for n, p in params.items()}})

    def _check_hp(self, name: str) -> None:
        """The maths below is torch's AdamW / Nesterov SGD with these settings only."""
        want = (dict(amsgrad=False, maximize=False) if name == "adamw"
                else dict(momentum=0.9, dampening=0, nesterov=True, maximize=False))
        if any(self.hp.get(k) != v for k, v in want.items()):
            raise TrialError(f"fused {name}: timm built it with {self.hp}, which bench.fused does not implement")

    def factor_at(self, step: int) -> float:
        """The schedule at a global step, as a factor of the lr (timm's, warmup included)."""
        self._unit.step_update(step)
        return self._unit_opt.param_groups[0]["lr"]

    def lr_at(self, step: int) -> torch.Tensor:
        """The members' lrs [K] at a global step."""
        return self.lr * self.factor_at(step)

    @torch.no_grad()
    def update(self, params: dict, grads: dict, lr: torch.Tensor, alive: torch.Tensor, step: int) -> None:
        """One step of every member; masked members keep parameters and state."""
        for n, g in grads.items():
            if g is None:  # torch's optimizers skip a parameter without a gradient
                continue
            p = params[n]
            lr_ = _per_member(lr, p)
            wd = _per_member(self.wd, p) if self.decays[n] else None
            if self.adamw:
                b1, b2 = self.hp["betas"]
                m = self.state["exp_avg"][n].lerp(g, 1 - b1)
                v = self.state["exp_avg_sq"][n] * b2 + (1 - b2) * g * g
                denom = v.sqrt() / math.sqrt(1 - b2 ** step) + self.hp["eps"]
                q = p * (1 - lr_ * wd) if wd is not None else p
                new = {"exp_avg": m, "exp_avg_sq": v, None: q - (lr_ / (1 - b1 ** step)) * (m / denom)}
            else:
                d = g + wd * p if wd is not None else g
                buf = self.state["momentum_buffer"][n] * self.hp["momentum"] + d
                new = {"momentum_buffer": buf, None: p - lr_ * (d + self.hp["momentum"] * buf)}
            keep = _per_member(alive, p)
            for k, value in new.items():
                old = p if k is None else self.state[k][n]
                old.copy_(torch.where(keep, value, old))

    def _names(self, k: int):
        """Member k's own timm optimizer and its parameter names per group (its state_dict's index order)."""
        opt = recipes.build_optimizer(self.model, self.cfgs[k].optimizer, self.lrs[k], self.cfgs[k].wd)
        names = {id(p): n for n, p in self.model.named_parameters()}
        return opt, [names[id(p)] for g in opt.param_groups for p in g["params"]]

    def member_state(self, k: int, steps: int) -> dict:
        """Member k's optimizer state_dict, as its own torch optimizer would hold it after ``steps`` steps."""
        opt, flat = self._names(k)
        sd = opt.state_dict()
        step = torch.tensor(float(steps))
        sd["state"] = {i: {**({"step": step.clone()} if self.adamw else {}),
                           **{key: v[n][k].clone() for key, v in self.state.items()}}
                       for i, n in enumerate(flat)}
        return sd

    @torch.no_grad()
    def load_member(self, k: int, saved: dict) -> None:
        """Member k's state from a torch optimizer state_dict (fused or unfused)."""
        _, flat = self._names(k)
        for i, n in enumerate(flat):
            for key, v in self.state.items():
                if i in saved["state"]:
                    v[n][k].copy_(saved["state"][i][key])


class FusedTrainer(Trainer):
    """The stacked training state of K trials: bench.trial's engine with their batched step."""

    def __init__(self, cfgs: list[TrialConfig], data=None):
        super().__init__(cfgs[0], data=data)  # data, loaders, the initial model, mixup, loss, EMA decay
        K = len(cfgs)
        self.cfgs, self.curves = list(cfgs), [[] for _ in cfgs]
        self.lrs = [recipes.scaled_lr(c.lr, c.batch_size) for c in cfgs]
        self.params, self.buffers = stack_module_state([self.model] * K)
        self.optim = StackedOptimizer(self.model, self.params, self.cfgs, self.lrs, self.recipe, self.steps_per_epoch)
        self.ema_state = ({n: v.detach().clone() for n, v in self._stacked().items()} if self.ema is not None else None)
        self.alive = torch.ones(K, dtype=torch.bool, device=self.device)

    def _stacked(self) -> dict:
        """The stacked state_dict (parameters and buffers, in the model's state_dict order)."""
        both = {**self.params, **self.buffers}
        return {n: both[n] for n in self.model.state_dict()}

    def _members(self, stacked: dict) -> list[dict]:
        """Each member's state: views into the stacked tensors."""
        return [{n: v[k] for n, v in stacked.items()} for k in range(len(self.cfgs))]

    def _forward(self, stacked, x: torch.Tensor) -> torch.Tensor:
        """The members' logits [K, B, C] on one batch (``stacked``: a state dict, or (params, buffers))."""
        return vmap(lambda s, x: functional_call(self.model, s, (x,)), in_dims=(0, None))(stacked, x)

    def step(self, x: torch.Tensor, y: torch.Tensor, global_step: int) -> torch.Tensor:
        """One step of every member; returns the [K] losses (NaN for the masked ones), no host sync."""
        lr = self.optim.lr_at(global_step)
        if self.mixup is not None:
            x, y = self.mixup(x, y)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            logits = self._forward((self.params, self.buffers), x)
            losses = vmap(self.loss_fn, in_dims=(0, None))(logits.float(), y)
        alive = self.alive & torch.isfinite(losses)
        names = list(self.params)
        grads = torch.autograd.grad(torch.where(alive, losses, 0.0).sum(), [self.params[n] for n in names],
                                    allow_unused=True)
        self.optim.update(self.params, dict(zip(names, grads)), lr, alive, global_step + 1)
        with torch.no_grad():
            self.alive = alive
            if self.ema is not None and (global_step + 1) % self.ema_every == 0:
                decay = self.ema.get_decay((global_step + 1) // self.ema_every)
                for n, v in self._stacked().items():
                    self.ema_state[n].lerp_(v, 1.0 - decay) if v.is_floating_point() else self.ema_state[n].copy_(v)
        return torch.where(alive, losses.detach(), math.nan)

    def _both(self) -> list[dict]:
        """The stacked states of the members' models and (if any) EMAs."""
        return [self._stacked(), *((self.ema_state,) if self.ema is not None else ())]

    def bn_models(self) -> list[tuple[torch.nn.Module, list[dict]]]:
        """Precise BN of every member's model and EMA: the template model run on each member's state."""
        return [(self.model, self._members(stacked)) for stacked in self._both()]

    def eval_models(self) -> list[tuple[torch.nn.Module, object]]:
        """Every member's model and EMA evaluated at once: [K, B, C] logits from the stacked states."""
        return [(self.model, lambda x, s=stacked: self._forward(s, x)) for stacked in self._both()]

    def state(self, k: int = 0) -> dict:
        """Member k's checkpoint, as ``Trainer.state()`` writes it (its optimizer in torch's format)."""
        one = lambda s: {n: v[k].detach().clone() for n, v in s.items()}  # noqa: E731 (copies: no shared storage)
        return dict(config=self.cfgs[k].identity(), epoch=self.epoch, curve=self.curves[k],
                    model=one(self._stacked()), optimizer=self.optim.member_state(k, self.epoch * self.steps_per_epoch),
                    ema=one(self.ema_state) if self.ema is not None else None)

    @torch.no_grad()
    def load(self, state: dict, k: int = 0) -> None:
        """Member k from a checkpoint (fused or unfused); all members must be at one epoch."""
        if self.epoch and state["epoch"] != self.epoch:
            raise TrialError("fused members must resume from one epoch")
        for n, v in self._stacked().items():
            v[k].copy_(state["model"][n])
        self.optim.load_member(k, state["optimizer"])
        if self.ema is not None:
            for n, v in self.ema_state.items():
                v[k].copy_(state["ema"][n])
        self.epoch, self.curves[k] = state["epoch"], state["curve"]


def _per_member(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A [K] tensor shaped to broadcast over a stacked [K, ...] tensor."""
    return v.view(len(v), *[1] * (like.ndim - 1))
