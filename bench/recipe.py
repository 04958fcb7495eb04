"""The paper's training recipe (section 6, appendix E) built from timm's utilities.

Two profiles: ``paper`` (everything on, as published and as pycls's configs train: mixup/CutMix,
AutoAugment, PCA lighting, precise BN statistics before every evaluation) and ``light`` (for tiny
CPU runs: no mixup/CutMix/AutoAugment/lighting/precise BN, crop+flip only; the optimizer, schedule,
label smoothing and EMA stay). Every difference from pycls is listed, with its reason, in
docs/recipe.md; the ones in this module:
- the lr is stepped per iteration (pycls sets it once per epoch), using timm's cosine scheduler, whose
  linear warmup replaces the first steps of the half-cosine instead of multiplying it;
- warmup is 5 epochs, or 10% of the run when that is shorter (a 2-epoch run warms up for 0.2 epochs);
- the EMA time constant is 5% of the run's steps, updated every 8 steps (pycls: alpha = 1e-5 x batch /
  epochs x 32, every 32 steps: a time constant of 7.8% of an ImageNet run at any length, and the
  weights copied during warmup).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch and timm are imported where used: the CLI reads OPTIMIZERS/RECIPES without them
    import torch
    from timm.data import Mixup
    from timm.scheduler import CosineLRScheduler
    from timm.utils import ModelEmaV3
    from torch import nn

from bench.core.paper import BATCH as BASE_BATCH  # the paper's lrs are for this batch; scaled linearly to the one used
from bench.core.identity import OPTIMIZERS, RECIPE_NAMES


@dataclass(frozen=True)
class Recipe:
    """Switchable parts of the recipe; ``RECIPES`` holds the named profiles."""

    warmup_epochs: float = 5.0
    warmup_fraction: float = 0.1  # at most this fraction of the run is warmup
    warmup_factor: float = 0.1  # warmup starts at 0.1 x lr
    final_factor: float = 0.005  # the cosine ends at 0.005 x lr
    label_smoothing: float = 0.1
    mixup: float = 0.8
    cutmix: float = 1.0
    augment: str = "full"  # "none" | "light" (crop+flip) | "full" (+AutoAugment)
    ema: bool = True
    ema_horizon: float = 0.05  # EMA time constant as a fraction of the run's steps
    ema_every: int = 8  # update the EMA every this many steps (pycls: 32), with the decay compounded
    precise_bn: int = 8192  # training images over which BN statistics are recomputed before each evaluation
    pca_lighting: float = 0.1  # std of AlexNet-style PCA colour jitter on training images (pycls: TRAIN.PCA_STD)


RECIPES = {
    "paper": Recipe(),
    "light": Recipe(mixup=0.0, cutmix=0.0, augment="light", precise_bn=0, pca_lighting=0.0),
}
assert tuple(RECIPES) == RECIPE_NAMES  # the study schema checks recipe names without importing torch


def scaled_lr(lr: float, batch_size: int) -> float:
    """The paper's lr is for batch 2048: scale linearly to the batch actually used."""
    return lr * batch_size / BASE_BATCH


def param_groups(model, weight_decay: float) -> list[dict]:
    """No weight decay on biases and norm gains (every 1-D parameter), as pycls: timm's
    ``param_groups_weight_decay`` with an empty no-decay list, so that unlike timm's default the
    position embedding and class token *are* decayed (pycls does)."""
    from timm.optim import param_groups_weight_decay

    return param_groups_weight_decay(model, weight_decay, no_weight_decay_list=())


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW (0.9, 0.999) or SGD (momentum 0.9, Nesterov) via timm, with the pycls decay groups."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; valid: {', '.join(OPTIMIZERS)}")
    from timm.optim import create_optimizer_v2

    extra = dict(betas=(0.9, 0.999)) if name == "adamw" else dict(momentum=0.9)
    # timm's "sgd" is Nesterov momentum; decay is set per group, so filtering is off
    return create_optimizer_v2(param_groups(model, weight_decay), opt=name, lr=lr, weight_decay=weight_decay,
                               filter_bias_and_bn=False, **extra)


def warmup_steps(recipe: Recipe, epochs: int, steps_per_epoch: int) -> int:
    """5 warmup epochs, capped at 10% of the run for short runs."""
    return int(round(min(recipe.warmup_epochs, recipe.warmup_fraction * epochs) * steps_per_epoch))


def build_scheduler(optimizer, recipe: Recipe, lr: float, epochs: int, steps_per_epoch: int) -> CosineLRScheduler:
    """Half-cosine from lr to 0.005 x lr over the whole run, stepped per iteration, linear warmup from 0.1 x lr."""
    from timm.scheduler import CosineLRScheduler

    return CosineLRScheduler(optimizer, t_initial=epochs * steps_per_epoch, lr_min=recipe.final_factor * lr,
                             warmup_t=warmup_steps(recipe, epochs, steps_per_epoch),
                             warmup_lr_init=recipe.warmup_factor * lr, warmup_prefix=False, t_in_epochs=False)


def build_mixup(recipe: Recipe, num_classes: int) -> Mixup | None:
    """Mixup 0.8 / CutMix 1.0, one of the two per batch (50/50), with label smoothing folded in."""
    from timm.data import Mixup

    if not (recipe.mixup or recipe.cutmix):
        return None
    return Mixup(mixup_alpha=recipe.mixup, cutmix_alpha=recipe.cutmix, switch_prob=0.5, mode="batch",
                 label_smoothing=recipe.label_smoothing, num_classes=num_classes)


def build_loss(recipe: Recipe, mixup: Mixup | None) -> nn.Module:
    """Soft-target CE after mixup (which carries the smoothing), else smoothed CE."""
    from timm.loss import SoftTargetCrossEntropy
    from torch import nn

    return SoftTargetCrossEntropy() if mixup else nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)


def ema_period(recipe: Recipe, steps_per_epoch: int) -> int:
    """Steps between EMA updates: ``ema_every``, but at least one update per epoch."""
    return max(1, min(recipe.ema_every, steps_per_epoch))


def build_ema(model: nn.Module, recipe: Recipe, total_steps: int, period: int) -> ModelEmaV3 | None:
    """EMA of the weights (and BN statistics) for evaluation; time constant = 5% of the run.

    Updated every ``period`` steps (pycls: every 32), so its decay is per update.
    """
    from timm.utils import ModelEmaV3

    if not recipe.ema:
        return None
    updates = total_steps / period
    decay = 1.0 - 1.0 / max(recipe.ema_horizon * updates, 1.0)
    return ModelEmaV3(model, decay=decay, use_warmup=True)
