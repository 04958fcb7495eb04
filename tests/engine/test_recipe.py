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


def test_paper_recipe_has_pycls_precise_bn_and_lighting_and_light_has_neither():
    paper, light = recipe.RECIPES["paper"], recipe.RECIPES["light"]
    assert (paper.precise_bn, paper.pca_lighting) == (8192, 0.1)  # pycls BN.NUM_SAMPLES_PRECISE, TRAIN.PCA_STD
    assert (light.precise_bn, light.pca_lighting) == (0, 0.0)


def test_precise_bn_sets_the_mean_of_the_batch_statistics():
    """pycls's compute_precise_bn_stats: running mean/var = the average of the batches' mean/var."""
    from bench.distributed import DistEnv
    from bench.trial import precise_bn

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                              torch.nn.Conv2d(4, 2, 1), torch.nn.BatchNorm2d(2))
    batches = [torch.randn(8, 3, 6, 6) * (1 + i) + i for i in range(3)]
    net.eval()
    precise_bn(net, batches, DistEnv())
    assert not net.training and net[1].momentum == 0.1  # the mode and the momentum are put back
    with torch.no_grad():
        feats = [net[0](x) for x in batches]
    means = torch.stack([f.mean(dim=(0, 2, 3)) for f in feats]).mean(0)
    vars_ = torch.stack([f.var(dim=(0, 2, 3), unbiased=True) for f in feats]).mean(0)
    torch.testing.assert_close(net[1].running_mean, means, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net[1].running_var, vars_, rtol=1e-5, atol=1e-6)
    ln = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    before = {k: v.clone() for k, v in ln.state_dict().items()}
    precise_bn(ln, [torch.randn(4, 3)], DistEnv())
    assert all(torch.equal(before[k], v) for k, v in ln.state_dict().items())


def test_pca_lighting_shifts_each_image_by_a_seeded_colour():
    from bench.data import load_data, make_loader

    b = load_data("synthetic:64", 32, n_val=16)
    kw = dict(device=torch.device("cpu"), epoch=3, seed=1, augment="light")
    plain = [x for x, _ in make_loader(b, "train", 16, **kw)]
    lit = [x for x, _ in make_loader(b, "train", 16, lighting=0.1, **kw)]
    again = [x for x, _ in make_loader(b, "train", 16, lighting=0.1, **kw)]
    assert all(torch.equal(a, c) for a, c in zip(lit, again))  # a pure function of (seed, epoch, batch)
    shift = lit[0] - plain[0]
    per_image = shift.mean(dim=(2, 3))  # [B, 3]: one colour per image, the same at every pixel
    torch.testing.assert_close(shift, per_image[:, :, None, None].expand_as(shift), rtol=0, atol=1e-5)
    assert 0.001 < per_image.abs().mean() < 0.2 and not torch.allclose(per_image[0], per_image[1])
    val = [x for x, _ in make_loader(b, "val", 16, **{**kw, "augment": "none"}, lighting=0.1)]
    assert torch.equal(val[0], next(iter(make_loader(b, "val", 16, **{**kw, "augment": "none"})))[0])
