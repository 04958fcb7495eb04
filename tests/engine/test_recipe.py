"""The paper's recipe: decay groups, lr scaling, warmup + half-cosine values, optimizer flavours."""
import math

import pytest
import torch

from bench import models, recipe


def test_lr_scales_linearly_from_batch_2048():
    assert recipe.scaled_lr(1e-3, 2048) == pytest.approx(1e-3)
    assert recipe.scaled_lr(1e-3, 128) == pytest.approx(1e-3 / 16)


def test_no_decay_on_biases_and_norm_gains_but_on_pos_embed():
    model = models.create("vitc_mini", num_classes=10)
    groups = {g["weight_decay"]: g for g in recipe.param_groups(model, 0.3)}
    decay, no_decay = groups[0.3], groups[0.0]
    names = {id(p): n for n, p in model.named_parameters()}
    no_decay_names = {names[id(p)] for p in no_decay["params"]}
    decay_names = {names[id(p)] for p in decay["params"]}
    assert "pos_embed" in decay_names and "cls_token" in decay_names  # pycls decays them (timm does not)
    assert all(n.endswith(("bias", "weight")) for n in no_decay_names)
    assert "blocks.0.norm1.weight" in no_decay_names and "blocks.0.attn.qkv.bias" in no_decay_names
    assert "patch_embed.convs.0.bn.weight" in no_decay_names
    assert "blocks.0.attn.qkv.weight" in decay_names
    assert len(decay_names) + len(no_decay_names) == len(list(model.parameters()))


def test_optimizers_are_the_papers():
    model = models.create("vitp_mini", num_classes=10)
    adamw = recipe.build_optimizer(model, "adamw", 1e-3, 0.05)
    assert isinstance(adamw, torch.optim.AdamW) and adamw.defaults["betas"] == (0.9, 0.999)
    sgd = recipe.build_optimizer(model, "sgd", 0.1, 1e-5)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["momentum"] == 0.9
    assert sorted(g["weight_decay"] for g in sgd.param_groups) == [0.0, 1e-5]
    with pytest.raises(ValueError, match="adamw, sgd"):
        recipe.build_optimizer(model, "lamb", 0.1, 0.0)


def _lrs(epochs, steps_per_epoch, lr=1.0, r=recipe.RECIPES["paper"]):
    model = torch.nn.Linear(2, 2)
    opt = recipe.build_optimizer(model, "sgd", lr, 0.0)
    sched = recipe.build_scheduler(opt, r, lr, epochs, steps_per_epoch)
    out = []
    for t in range(epochs * steps_per_epoch):
        sched.step_update(t)
        out.append(opt.param_groups[0]["lr"])
    return out


def test_warmup_then_half_cosine_to_0005():
    lrs = _lrs(epochs=100, steps_per_epoch=10)  # 5 warmup epochs = 50 steps
    assert lrs[0] == pytest.approx(0.1)  # warmup starts at 0.1 x lr
    assert lrs[25] == pytest.approx(0.1 + 25 * 0.9 / 50)  # linear
    t, total = 500, 1000
    assert lrs[t] == pytest.approx(0.005 + 0.5 * (1 - 0.005) * (1 + math.cos(math.pi * t / total)))
    assert lrs[-1] == pytest.approx(0.005, abs=1e-4)  # final lr 0.005 x
    assert max(lrs) <= 1.0 and all(a >= b for a, b in zip(lrs[50:], lrs[51:]))  # monotone after warmup


def test_short_runs_warm_up_for_10_percent():
    assert recipe.warmup_steps(recipe.RECIPES["light"], epochs=50, steps_per_epoch=10) == 50  # 5 epochs
    assert recipe.warmup_steps(recipe.RECIPES["light"], epochs=10, steps_per_epoch=10) == 10  # 1 epoch
    assert recipe.warmup_steps(recipe.RECIPES["light"], epochs=2, steps_per_epoch=10) == 2


def test_profiles():
    paper, light = recipe.RECIPES["paper"], recipe.RECIPES["light"]
    assert (paper.mixup, paper.cutmix, paper.label_smoothing, paper.augment) == (0.8, 1.0, 0.1, "full")
    assert recipe.build_mixup(light, 10) is None and light.label_smoothing == 0.1 and light.ema
    mix = recipe.build_mixup(paper, 10)
    assert mix.mixup_alpha == 0.8 and mix.cutmix_alpha == 1.0 and mix.switch_prob == 0.5
    assert type(recipe.build_loss(paper, mix)).__name__ == "SoftTargetCrossEntropy"
    ema = recipe.build_ema(torch.nn.Linear(2, 2), paper, total_steps=8000, period=8)  # 1000 updates
    assert ema.decay == pytest.approx(1 - 1 / 50)
    assert recipe.ema_period(paper, steps_per_epoch=100) == 8 and recipe.ema_period(paper, steps_per_epoch=3) == 3
