"""The paper's models: complexity against Tables 1-2, stems, init, shapes, registry."""
import json
import math

import pytest
import timm
import torch
from torch import nn

import bench
from bench import models
from bench.core import paper
from bench.cli import main
from bench.models import ConvStem


def _close(measured, published, rel):
    """Within ``rel`` of the table, or within half a unit of its last digit (0.1) where that is coarser."""
    return abs(measured - published) <= max(rel * published, 0.05)


@pytest.mark.parametrize("name", list(paper.COMPLEXITY))
def test_complexity_matches_paper(name):
    cx = bench.complexity(name)
    gflops, params_m, acts_m = paper.COMPLEXITY[name]
    assert _close(cx["params"] / 1e6, params_m, 0.01), cx
    assert _close(cx["flops"] / 1e9, gflops, 0.02), cx
    assert _close(cx["acts"] / 1e6, acts_m, 0.03), cx


def test_complexity_counts_attention_matmuls():
    # vitp_1gf at 224: 197 tokens, width 192, 12 blocks -> 2*197*197*192 MACs of attention per block
    base = bench.complexity("vitp_1gf")["flops"]
    no_attn = base - 12 * 2 * 197 * 197 * 192
    linear_only = 12 * 197 * (192 * 576 + 192 * 192 + 2 * 192 * 576) + 196 * 768 * 192 + 192 * 1000
    assert no_attn == linear_only


def test_complexity_of_module_matches_name():
    model = timm.create_model("vitc_mini", num_classes=1000)
    assert bench.complexity(model, 32) == bench.complexity("vitc_mini", 32)
    assert next(model.parameters()).device.type == "cpu"  # caller's model untouched


def test_mini_models_are_flop_matched():
    p, c = bench.complexity("vitp_mini")["flops"], bench.complexity("vitc_mini")["flops"]
    assert abs(c - p) / p < 0.10
    r = bench.complexity("regnety_mini")["flops"]
    assert abs(r - p) / p < 0.15


@pytest.mark.parametrize("name", ["vitc_1gf", "vitc_4gf", "vitc_18gf", "vitc_36gf"])
def test_conv_stem_structure(name):
    spec = models.ARCHS[name].stem
    with torch.device("meta"):
        model = models.create(name, num_classes=10, img_size=64)
    stem = model.patch_embed
    assert isinstance(stem, ConvStem)
    convs = list(stem.convs)
    assert len(convs) == len(spec["kernels"]) - 1
    for layer, k, s, c in zip(convs, spec["kernels"], spec["strides"], spec["channels"]):
        assert layer.conv.kernel_size == (k, k) and layer.conv.stride == (s, s)
        assert layer.conv.out_channels == c and layer.conv.bias is None
        assert isinstance(layer.bn, nn.BatchNorm2d) and isinstance(layer.bn.act, nn.ReLU)
    assert stem.proj.kernel_size == (1, 1) and stem.proj.bias is not None
    assert stem.patch_size == (16, 16)


def test_vitc_has_one_block_fewer_and_same_width():
    for size in ("1gf", "4gf", "18gf", "36gf", "mini"):
        p, c = models.ARCHS[f"vitp_{size}"], models.ARCHS[f"vitc_{size}"]
        assert c.depth == p.depth - 1 and c.dim == p.dim and c.heads == p.heads


def test_patchify_stem_and_layernorm_eps():
    model = models.create("vitp_1gf", num_classes=10)
    proj = model.patch_embed.proj
    assert proj.kernel_size == (16, 16) and proj.stride == (16, 16) and proj.bias is not None
    assert all(m.eps == 1e-6 for m in model.modules() if isinstance(m, nn.LayerNorm))
    assert model.cls_token is not None and model.pos_embed.shape == (1, 197, 192)


def test_pycls_init_statistics():
    torch.manual_seed(0)
    model = models.create("vitc_4gf", num_classes=100)
    stem = model.patch_embed
    for layer in stem.convs:
        w = layer.conv.weight
        assert w.std().item() == pytest.approx(math.sqrt(2.0 / w.shape[0]), rel=0.05)
    assert stem.proj.weight.std().item() == pytest.approx(math.sqrt(1.0 / 384), rel=0.05)
    assert stem.proj.bias.abs().max() == 0
    assert model.head.weight.abs().max() == 0 and model.head.bias.abs().max() == 0
    assert model.pos_embed.std().item() == pytest.approx(0.02, rel=0.05)
    fc1 = model.blocks[0].mlp.fc1
    bound = math.sqrt(6.0 / (fc1.in_features + fc1.out_features))  # Xavier uniform: std = bound / sqrt(3)
    assert fc1.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert fc1.bias.std().item() < 1e-5
    patchify = models.create("vitp_4gf", num_classes=100).patch_embed.proj
    assert patchify.weight.std().item() == pytest.approx(math.sqrt(1.0 / (3 * 16 * 16)), rel=0.1)


@pytest.mark.parametrize("res", [32, 64, 224])
@pytest.mark.parametrize("name", ["vitp_1gf", "vitc_1gf", "regnety_1gf", "vitc_4gf_s4", "vitp_mini", "vitc_mini",
                                  "regnety_mini"])
def test_forward_shapes(name, res):
    if name.endswith("mini") and res == 224:
        res = 96
    model = timm.create_model(name, num_classes=7, img_size=res).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, res, res))
    assert out.shape == (2, 7)
    if isinstance(model, timm.models.VisionTransformer):
        assert model.pos_embed.shape[1] == 1 + (res // model.patch_embed.patch_size[0]) ** 2


def test_registry_lists_all_models_each_under_its_own_name():
    """One timm entrypoint per name of the architecture table, each building its own model."""
    from timm.models import _registry

    registered = set(timm.list_models())
    assert set(models.MODEL_NAMES) <= registered and len(models.MODEL_NAMES) == 32
    assert len(list(paper.COMPLEXITY)) == 12
    for name in models.MODEL_NAMES:
        fn = _registry._model_entrypoints[name]
        assert fn.__name__ == name and fn.__doc__.startswith(f"{name}: ") and _registry._model_to_module[name] == "models"
    assert _registry._model_entrypoints["regnety_mini"].__doc__ == "regnety_mini: RegNetY, the earlier name of regnety_4mf."
    for name in ("vitp_1mf", "vitc_1mf", "regnety_1mf"):  # the smallest of each kind: built by their own entrypoint
        built = sum(p.numel() for p in timm.create_model(name, num_classes=10).parameters())
        assert built == sum(p.numel() for p in models.create(name, num_classes=10).parameters())
    with pytest.raises(ValueError, match="no pretrained weights"):
        timm.create_model("vitc_1mf", pretrained=True)


def test_the_names_read_from_timms_source_are_its_registry():
    """bench.core.models checks a name against timm's source, without importing timm (or torch)."""
    from bench.core import models as names
    from timm.models import _registry

    assert names.timm_names() == set(_registry._model_entrypoints) - set(names.ARCHS)
    names.check("resnet18.a1_in1k")  # a pretrained tag, as timm.is_model reads it
    with pytest.raises(names.UnknownModelError, match="unknown model 'resnet19'"):
        names.check("resnet19")


def test_unknown_model_lists_valid_names():
    with pytest.raises(bench.UnknownModelError, match="vitc_1gf.*regnety_32gf"):
        bench.create("vitc_3gf")


def test_bench_models_json(capsys):
    assert main(["models", "--json", "--name", "vitc_1gf", "regnety_mini"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["vitc_1gf", "regnety_mini"]
    assert {"name", "resolution", "params_m", "gflops", "acts_m"} <= set(rows[0])
    assert rows[0]["resolution"] == 224 and rows[0]["paper_gflops"] == 1.1


def test_bench_models_unknown_name(capsys):
    assert main(["models", "--name", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nope'" in err and "vitp_1gf" in err
