"""The paper's models, registered in timm: ViTp / ViTc (1/4/18/36 GF), RegNetY (1/4/16/32 GF).

After ``import bench``, ``timm.create_model("vitc_1gf", num_classes=10, img_size=64)`` works.
Architectures follow Xiao et al. 2021 (Table 1, Table 2) and the authors' pycls configs; see
``shared/reference/paper.md``.  Small ``*_mini`` variants are sized for 32 px laptop studies.

``create`` also builds any other timm model by name and user factories named ``module:function``.
"""
from __future__ import annotations

import importlib
import inspect
import math
import os
import sys
from dataclasses import dataclass, field, replace
from functools import partial

import timm
import torch
from timm.layers import ConvNormAct, PatchEmbed
from timm.models import get_pretrained_cfg_value, register_model
from timm.models.regnet import RegNet, RegNetCfg, adjust_widths_groups_comp
from timm.models.vision_transformer import Attention, Mlp, VisionTransformer
from torch import nn
from torch.nn import init

from bench.errors import BenchError


class ConvStem(nn.Module):
    """ViTc stem: k x k convs (no bias) + BN + ReLU, then a 1x1 conv with bias, flattened to tokens.

    Used as timm ``VisionTransformer(embed_layer=...)``; ``kernels/strides/channels`` are pycls's
    ``K/S/C`` lists, the last entry being the 1x1 projection to the embedding width.
    """

    def __init__(self, img_size=224, embed_dim=192, in_chans=3, *, kernels, strides, channels, **_):
        super().__init__()
        assert kernels[-1] == 1 and strides[-1] == 1 and channels[-1] == embed_dim
        layers, c_in = [], in_chans
        for k, s, c in zip(kernels[:-1], strides[:-1], channels[:-1]):
            pad = k // 2 if k % 2 else 0
            layers.append(ConvNormAct(c_in, c, k, stride=s, padding=pad, bias=False))
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Conv2d(c_in, embed_dim, 1, bias=True)
        self.patch_size = (math.prod(strides),) * 2
        self.set_input_size(img_size)

    def set_input_size(self, img_size=None, patch_size=None):
        """Resize the token grid (timm calls this from ``VisionTransformer.set_input_size``)."""
        size = img_size if isinstance(img_size, (tuple, list)) else (img_size, img_size)
        self.img_size = tuple(size)
        self.grid_size = tuple(s // p for s, p in zip(size, self.patch_size))
        self.num_patches = self.grid_size[0] * self.grid_size[1]

    def feat_ratio(self, as_scalar=True):
        return self.patch_size[0] if as_scalar else self.patch_size

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % self.patch_size[0] or w % self.patch_size[1]:
            raise ValueError(f"input {h}x{w} is not divisible by the stem stride {self.patch_size[0]}")
        return self.proj(self.convs(x)).flatten(2).transpose(1, 2)


def init_vit_pycls(model: VisionTransformer) -> None:
    """The pycls ViT initialisation (paper.md): stem, MLP Xavier, zero head, pos N(0, .02)."""
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d) and name == "patch_embed.proj" and isinstance(model.patch_embed, PatchEmbed):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            init.trunc_normal_(m.weight, std=math.sqrt(1.0 / fan_in))
            init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d) and name == "patch_embed.proj":
            init.normal_(m.weight, std=math.sqrt(1.0 / m.out_channels))
            init.zeros_(m.bias)
        elif isinstance(m, nn.Conv2d):  # conv-stem k x k convs
            init.normal_(m.weight, std=math.sqrt(2.0 / m.out_channels))
        elif isinstance(m, Attention):  # torch.nn.MultiheadAttention's init, as pycls uses it
            init.xavier_uniform_(m.qkv.weight)
            init.zeros_(m.qkv.bias)
            m.proj.reset_parameters()
            init.zeros_(m.proj.bias)
        elif isinstance(m, Mlp):
            for fc in (m.fc1, m.fc2):
                init.xavier_uniform_(fc.weight)
                init.normal_(fc.bias, std=1e-6)
        elif isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
            m.reset_parameters()
    init.zeros_(model.head.weight)
    init.zeros_(model.head.bias)
    init.normal_(model.pos_embed, std=0.02)
    init.zeros_(model.cls_token)


@dataclass(frozen=True)
class ViTSpec:
    """A ViT of the paper: width, MLP ratio, heads, blocks and its stem."""

    dim: int
    mlp: float
    heads: int
    depth: int
    patch: int = 16
    stem: dict | None = None  # ConvStem kwargs (kernels/strides/channels); None = patchify
    resolution: int = 224


@dataclass(frozen=True)
class RegNetSpec:
    """A RegNetY given stage by stage (the paper's models are not timm's regnety_0xx)."""

    depths: tuple
    widths: tuple
    group_width: int
    stem_width: int = 32
    stem_stride: int = 2
    se: float = 0.25
    resolution: int = 224


def _stem(k, s, c):
    return dict(kernels=k, strides=s, channels=c)


_K4, _S4 = [3, 3, 3, 3, 1], [2, 2, 2, 2, 1]
_K7, _S7 = [3, 3, 3, 3, 3, 3, 1], [2, 2, 1, 2, 1, 2, 1]
_C4GF = [48, 96, 192, 384, 384]

SPECS: dict[str, ViTSpec | RegNetSpec] = {
    "vitp_1gf": ViTSpec(192, 3, 3, 12),
    "vitp_4gf": ViTSpec(384, 3, 6, 12),
    "vitp_18gf": ViTSpec(768, 4, 12, 12),
    "vitp_36gf": ViTSpec(1024, 4, 16, 14),
    "vitc_1gf": ViTSpec(192, 3, 3, 11, stem=_stem(_K4, _S4, [24, 48, 96, 192, 192])),
    "vitc_4gf": ViTSpec(384, 3, 6, 11, stem=_stem(_K4, _S4, _C4GF)),
    "vitc_18gf": ViTSpec(768, 4, 12, 11, stem=_stem(_K7, _S7, [64, 128, 128, 256, 256, 512, 768])),
    "vitc_36gf": ViTSpec(1024, 4, 16, 13, stem=_stem(_K7, _S7, [64, 128, 128, 256, 256, 512, 1024])),
    # Table 3 stem ablation at 4GF.  The paper gives kernels/strides only; channels (ours) are picked
    # so each model stays within 5% of ViTc-4GF's flops, as the paper's stems are flop-matched.
    "vitc_4gf_s1": ViTSpec(384, 3, 6, 11, stem=_stem([3, 3, 3, 2, 1], [2, 2, 2, 2, 1], [48, 96, 192, 384, 384])),
    "vitc_4gf_s2": ViTSpec(384, 3, 6, 11, stem=_stem([3, 3, 3, 4, 1], [2, 2, 1, 4, 1], [32, 64, 128, 384, 384])),
    "vitc_4gf_s3": ViTSpec(384, 3, 6, 11, stem=_stem([3, 3, 3, 8, 1], [2, 1, 1, 8, 1], [8, 16, 32, 384, 384])),
    "vitc_4gf_s4": ViTSpec(384, 3, 6, 11, stem=_stem([3, 3, 3, 16, 1], [1, 1, 1, 16, 1], [16, 16, 16, 384, 384])),
    # group width 4 as the config reads: gives the published 9.6 M params / 1.0 B flops (8 gives 9.8 / 1.1)
    "regnety_1gf": RegNetSpec((1, 4, 10, 3), (40, 120, 328, 904), 4, resolution=232),
    "regnety_4gf": RegNetSpec((2, 6, 16, 2), (88, 208, 512, 1224), 32, resolution=240),
    "regnety_16gf": RegNetSpec((2, 7, 18, 2), (168, 336, 896, 2128), 56, resolution=256),
    "regnety_32gf": RegNetSpec((2, 7, 20, 2), (216, 432, 1152, 2808), 72, resolution=268),
    # Laptop scale, 32 px (see README "Mini models"): ~4.5 M multiply-adds each.
    "vitp_mini": ViTSpec(64, 3, 2, 6, patch=8, resolution=32),
    "vitc_mini": ViTSpec(64, 3, 2, 5, stem=_stem([3, 3, 3, 1], [2, 2, 2, 1], [16, 32, 64, 64]), resolution=32),
    "regnety_mini": RegNetSpec((1, 1, 2, 1), (24, 48, 96, 192), 8, stem_width=16, stem_stride=1, resolution=32),
}
MODEL_NAMES = list(SPECS)

# Published complexity (Tables 1-2): flops (B), params (M), acts (M), at the model's resolution.
PAPER_COMPLEXITY = {
    "vitp_1gf": (1.1, 4.8, 5.5), "vitp_4gf": (3.9, 18.5, 11.1),
    "vitp_18gf": (17.5, 86.6, 24.0), "vitp_36gf": (35.9, 178.4, 37.3),
    "vitc_1gf": (1.1, 4.6, 5.7), "vitc_4gf": (4.0, 17.8, 11.3),
    "vitc_18gf": (17.7, 81.6, 24.1), "vitc_36gf": (35.0, 167.8, 36.7),
    "regnety_1gf": (1.0, 9.6, 6.2), "regnety_4gf": (4.1, 22.4, 14.5),
    "regnety_16gf": (15.5, 72.3, 30.7), "regnety_32gf": (31.1, 128.6, 46.2),
}
PAPER_MODELS = list(PAPER_COMPLEXITY)


def family(name: str) -> str | None:
    """A bench model's family, 'vit' or 'regnety' (its lr/wd ranges); None for any other model.

    Other models take theirs from the study (``bench run --family``, else its ``[families]`` table).
    """
    s = SPECS.get(name)
    return None if s is None else "vit" if isinstance(s, ViTSpec) else "regnety"


def spec(name: str) -> ViTSpec | RegNetSpec:
    """The architecture spec of a registered model; unknown names list the valid ones."""
    if name not in SPECS:
        raise UnknownModelError(name)
    return SPECS[name]


def check(name: str) -> None:
    """Raise UnknownModelError unless ``name`` is a bench model, a timm model or a ``module:function``."""
    if name not in SPECS:
        _factory(name)


def default_resolution(name: str) -> int:
    """The model's own resolution: the paper's (32 for the minis), timm's pretrained input size, a
    factory's ``img_size`` default; else 224."""
    if name in SPECS:
        return SPECS[name].resolution
    fn = _factory(name)
    if fn is None:
        size = get_pretrained_cfg_value(name, "input_size")
        return size[-1] if size else 224
    param = inspect.signature(fn).parameters.get("img_size")
    return param.default if param is not None and type(param.default) is int else 224


class UnknownModelError(BenchError, ValueError):
    def __init__(self, name, why=""):
        super().__init__(why or f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}, any timm model "
                                f"name (e.g. resnet18) or a factory module:function")


def _build_vit(s: ViTSpec, img_size=None, **kwargs) -> VisionTransformer:
    kw = dict(img_size=img_size or s.resolution, embed_dim=s.dim, depth=s.depth, num_heads=s.heads,
              mlp_ratio=s.mlp, class_token=True, global_pool="token", pos_embed="learn",
              norm_layer=partial(nn.LayerNorm, eps=1e-6), qkv_bias=True)
    if s.stem is None:
        kw["patch_size"] = s.patch
    else:
        kw["patch_size"] = math.prod(s.stem["strides"])
        kw["embed_layer"] = partial(ConvStem, **s.stem)
    model = VisionTransformer(**{**kw, **kwargs})
    init_vit_pycls(model)
    return model


@dataclass
class _StagedCfg(RegNetCfg):
    depths: tuple = field(default=())
    widths: tuple = field(default=())


class StagedRegNet(RegNet):
    """timm ``RegNet`` built from explicit stage depths and widths, with an optional stride-1 stem."""

    def __init__(self, cfg: _StagedCfg, stem_stride: int = 2, **kwargs):
        super().__init__(cfg, **kwargs)
        if stem_stride != 2:
            self.stem = ConvNormAct(kwargs.get("in_chans", 3), cfg.stem_width, 3, stride=stem_stride)
            nn.init.normal_(self.stem.conv.weight, std=math.sqrt(2.0 / (9 * cfg.stem_width)))

    def _get_stage_args(self, cfg, default_stride=2, output_stride=32, drop_path_rate=0.0):
        n = len(cfg.depths)
        widths, groups = adjust_widths_groups_comp(list(cfg.widths), [1.0] * n, [cfg.group_size] * n)
        dprs = [[drop_path_rate * i / max(sum(cfg.depths) - 1, 1) for i in range(sum(cfg.depths[:j]), sum(cfg.depths[:j + 1]))]
                for j in range(n)]
        per_stage = [dict(out_chs=w, stride=2, dilation=1, depth=d, bottle_ratio=1.0,
                          group_size=g, drop_path_rates=dpr)
                     for w, g, d, dpr in zip(widths, groups, cfg.depths, dprs)]
        common = dict(downsample=cfg.downsample, se_ratio=cfg.se_ratio, linear_out=cfg.linear_out,
                      act_layer=cfg.act_layer, norm_layer=cfg.norm_layer)
        return per_stage, common


def _build_regnet(s: RegNetSpec, img_size=None, **kwargs) -> StagedRegNet:
    cfg = _StagedCfg(depths=s.depths, widths=s.widths, group_size=s.group_width, se_ratio=s.se,
                     stem_width=s.stem_width, depth=sum(s.depths))
    return StagedRegNet(cfg, stem_stride=s.stem_stride, **kwargs)


def create(name: str, num_classes: int = 1000, img_size: int | None = None, **kwargs) -> nn.Module:
    """Build a model by name: a bench model, any timm model (never pretrained) or a ``module:function``
    factory called with ``num_classes`` (and ``img_size`` where it takes one)."""
    if name in SPECS:
        s = SPECS[name]
        if isinstance(s, ViTSpec):
            return _build_vit(s, img_size=img_size, num_classes=num_classes, **kwargs)
        return _build_regnet(s, num_classes=num_classes, **kwargs)
    fn = _factory(name)
    if fn is None:
        if img_size is not None:
            try:
                return timm.create_model(name, pretrained=False, num_classes=num_classes, img_size=img_size, **kwargs)
            except TypeError as e:  # timm cannot tell beforehand whether a model takes img_size
                if "img_size" not in str(e):
                    raise
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)
    if img_size is not None and "img_size" in inspect.signature(fn).parameters:
        kwargs["img_size"] = img_size
    model = fn(num_classes=num_classes, **kwargs)
    if not isinstance(model, nn.Module):
        raise UnknownModelError(name, f"model factory {name!r} returned {type(model).__name__}, not an nn.Module")
    return model


def _factory(name: str):
    """The factory of a ``module:function`` name; None for a timm model; UnknownModelError otherwise."""
    module, sep, attr = name.partition(":")
    if not sep:
        if not timm.is_model(name):
            raise UnknownModelError(name)
        return None
    if os.getcwd() not in sys.path:  # `bench` is a console script: its sys.path lacks the cwd
        sys.path.append(os.getcwd())
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise UnknownModelError(name, f"cannot import model factory {name!r}: {e}") from None
    if not callable(fn):
        raise UnknownModelError(name, f"model factory {name!r} is not callable")
    return fn


def _entrypoint(name):
    def fn(pretrained=False, **kwargs):
        if pretrained:
            raise ValueError(f"{name}: no pretrained weights (trained from scratch, as in the paper)")
        kwargs.pop("pretrained_cfg", None), kwargs.pop("pretrained_cfg_overlay", None), kwargs.pop("cache_dir", None)
        return create(name, **kwargs)

    fn.__name__ = name
    fn.__doc__ = f"{name}: {spec(name)}"
    fn.__module__ = __name__
    return fn


for _name in MODEL_NAMES:
    globals()[_name] = register_model(_entrypoint(_name))
