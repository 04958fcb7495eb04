"""The paper's models, registered in timm: ViTp / ViTc (1/4/18/36 GF), RegNetY (1/4/16/32 GF), the
stem ablation's ViTc S1-S4, and their laptop-scale ladder (1/4/18 MF): one entrypoint per name of
``bench.core.models.ARCHS``, generated from that table.

After ``import bench``, ``timm.create_model("vitc_1gf", num_classes=10, img_size=64)`` works.
Architectures follow Xiao et al. 2021 (Table 1, Table 2) and the authors' pycls configs (docs/models.md:
the architectures, the laptop-scale models and where each differs from pycls).

``create`` also builds any other timm model by name and user factories named ``module:function``.
"""
from __future__ import annotations

import importlib
import inspect
import math
import traceback
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import timm
from timm.layers import ConvNormAct, PatchEmbed
from timm.models import get_pretrained_cfg_value, register_model
from timm.models.regnet import RegNet, RegNetCfg, adjust_widths_groups_comp
from timm.models.vision_transformer import Attention, Mlp, VisionTransformer
from torch import nn
from torch.nn import init

from bench.core import models as names
from bench.core.models import ALIASES, ARCHS, MODEL_NAMES, RegNetArch, UnknownModelError, ViTArch, cwd_on_path


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
    """The pycls ViT initialisation (docs/models.md): stem, MLP Xavier, zero head, pos N(0, .02)."""
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


def _build_vit(s: ViTArch, img_size=None, **kwargs) -> VisionTransformer:
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


def _build_regnet(s: RegNetArch, img_size=None, **kwargs) -> StagedRegNet:
    cfg = _StagedCfg(depths=s.depths, widths=s.widths, group_size=s.group_width, se_ratio=s.se,
                     stem_width=s.stem_width, depth=sum(s.depths))
    return StagedRegNet(cfg, stem_stride=s.stem_stride, **kwargs)


def create(name: str, num_classes: int = 1000, img_size: int | None = None, **kwargs) -> nn.Module:
    """Build a model by name: a bench model, any timm model (never pretrained) or a ``module:function``
    factory called with ``num_classes`` (and ``img_size`` where it takes one)."""
    if name in ARCHS:
        s = ARCHS[name]
        if isinstance(s, ViTArch):
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
    try:
        model = fn(num_classes=num_classes, **kwargs)
    except Exception as e:  # the user's code: one line saying where, not a traceback through bench
        raise UnknownModelError(name, f"model factory {name!r} raised {_where(e)}") from None
    if not isinstance(model, nn.Module):
        raise UnknownModelError(name, f"model factory {name!r} returned {type(model).__name__}, not an nn.Module")
    return model


def default_resolution(name: str) -> int:
    """A model's own resolution: bench's (bench.core.models); another model's is timm's pretrained
    input size or a factory's ``img_size`` default, else 224 (this imports the factory)."""
    own = names.resolution(name)
    if own is not None:
        return own
    fn = _factory(name)
    if fn is None:
        size = get_pretrained_cfg_value(name, "input_size")
        return size[-1] if size else 224
    param = inspect.signature(fn).parameters.get("img_size")
    return param.default if param is not None and type(param.default) is int else 224


def _factory(name: str):
    """The factory of a ``module:function`` name; None for a timm model; UnknownModelError otherwise."""
    module, sep, attr = name.partition(":")
    if not sep:
        if not timm.is_model(name):
            raise UnknownModelError(name)
        return None
    cwd_on_path()
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as e:
        raise UnknownModelError(name, f"cannot import model factory {name!r}: {e}") from None
    except Exception as e:  # the module itself raised on import
        raise UnknownModelError(name, f"importing model factory {name!r} raised {_where(e)}") from None
    if not callable(fn):
        raise UnknownModelError(name, f"model factory {name!r} is not callable")
    return fn


def _where(e: BaseException) -> str:
    """'TypeError: ... (in your code at mynet.py:12)': an exception of a user's factory, in one line."""
    frames = traceback.extract_tb(e.__traceback__)
    here = Path(__file__).resolve().parent
    own = [f for f in frames if here not in Path(f.filename).resolve().parents]
    at = f" (in your code at {own[-1].filename}:{own[-1].lineno})" if own else ""
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}{at}"


def _label(name: str) -> str:
    """What a bench model is, for its entrypoint's docstring: 'ViTc', 'RegNetY, the earlier name of regnety_4mf'."""
    a = ARCHS[name]
    kind = "RegNetY" if isinstance(a, RegNetArch) else "ViTp" if a.stem is None else "ViTc"
    return kind + (f", the earlier name of {ALIASES[name]}" if name in ALIASES else "")


def _entrypoint(name: str):
    """timm's entrypoint of a bench model, registered under the model's own name: it builds the model
    from scratch (no pretrained weights); timm.create_model("vitc_1gf", num_classes=10, img_size=64)."""

    def build(pretrained=False, **kwargs) -> nn.Module:
        if pretrained:
            raise ValueError(f"{name}: no pretrained weights (trained from scratch, as in the paper)")
        for k in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
            kwargs.pop(k, None)
        return create(name, **kwargs)

    build.__name__ = build.__qualname__ = name  # timm registers a function under its __name__
    build.__doc__ = f"{name}: {_label(name)}."
    return register_model(build)


for _name in MODEL_NAMES:
    _entrypoint(_name)
