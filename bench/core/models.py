"""The models as data (no torch): bench's architectures (the paper's, the laptop ladder, the stems),
their families, resolutions and stem strides, and the one check of a model name.

``bench.models`` builds them and registers them in timm; the CLI and the runner read this module,
so planning a study never waits for torch. Other models (any timm name, ``module:function``
factories) are only named here: ``check`` accepts them without building them. It imports neither
a factory nor timm (whose import takes torch's seconds): timm's names are read from the
``@register_model`` lines of its source (``timm_names``). A model's resolution here is bench's own; another model's own
resolution is known only by building it (``bench.models.default_resolution``).
"""
from __future__ import annotations

import functools
import importlib.util
import math
import os
import re
import sys
from pathlib import Path
from dataclasses import dataclass

from bench.core.errors import UserError


@dataclass(frozen=True)
class ViTArch:
    """A ViT of the paper: width, MLP ratio, heads, blocks and its stem."""

    dim: int
    mlp: float
    heads: int
    depth: int
    patch: int = 16
    stem: dict | None = None  # ConvStem kwargs (kernels/strides/channels); None = patchify
    resolution: int = 224


@dataclass(frozen=True)
class RegNetArch:
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

ARCHS: dict[str, ViTArch | RegNetArch] = {
    "vitp_1gf": ViTArch(192, 3, 3, 12),
    "vitp_4gf": ViTArch(384, 3, 6, 12),
    "vitp_18gf": ViTArch(768, 4, 12, 12),
    "vitp_36gf": ViTArch(1024, 4, 16, 14),
    "vitc_1gf": ViTArch(192, 3, 3, 11, stem=_stem(_K4, _S4, [24, 48, 96, 192, 192])),
    "vitc_4gf": ViTArch(384, 3, 6, 11, stem=_stem(_K4, _S4, _C4GF)),
    "vitc_18gf": ViTArch(768, 4, 12, 11, stem=_stem(_K7, _S7, [64, 128, 128, 256, 256, 512, 768])),
    "vitc_36gf": ViTArch(1024, 4, 16, 13, stem=_stem(_K7, _S7, [64, 128, 128, 256, 256, 512, 1024])),
    # Table 3 stem ablation at 4GF.  The paper gives kernels/strides only; channels (ours) are picked
    # so each model stays within 5% of ViTc-4GF's flops, as the paper's stems are flop-matched.
    "vitc_4gf_s1": ViTArch(384, 3, 6, 11, stem=_stem([3, 3, 3, 2, 1], [2, 2, 2, 2, 1], [48, 96, 192, 384, 384])),
    "vitc_4gf_s2": ViTArch(384, 3, 6, 11, stem=_stem([3, 3, 3, 4, 1], [2, 2, 1, 4, 1], [32, 64, 128, 384, 384])),
    "vitc_4gf_s3": ViTArch(384, 3, 6, 11, stem=_stem([3, 3, 3, 8, 1], [2, 1, 1, 8, 1], [8, 16, 32, 384, 384])),
    "vitc_4gf_s4": ViTArch(384, 3, 6, 11, stem=_stem([3, 3, 3, 16, 1], [1, 1, 1, 16, 1], [16, 16, 16, 384, 384])),
    # group width 4 as the config reads: gives the published 9.6 M params / 1.0 B flops (8 gives 9.8 / 1.1)
    "regnety_1gf": RegNetArch((1, 4, 10, 3), (40, 120, 328, 904), 4, resolution=232),
    "regnety_4gf": RegNetArch((2, 6, 16, 2), (88, 208, 512, 1224), 32, resolution=240),
    "regnety_16gf": RegNetArch((2, 7, 18, 2), (168, 336, 896, 2128), 56, resolution=256),
    "regnety_32gf": RegNetArch((2, 7, 20, 2), (216, 432, 1152, 2808), 72, resolution=268),
    # Laptop scale, 32 px (docs/models.md): a ladder of about 1 / 4.5 / 18 M multiply-adds like the paper's
    # 1 / 4 / 18 GF. ViTs: patch 8 (16 tokens), 6 blocks for ViTp; ViTc swaps one block for a conv stem
    # of stride 8 (three 3x3 convs), flop-matched within 5%. The 4 MF models are the earlier *_mini.
    "vitp_1mf": ViTArch(30, 3, 1, 6, patch=8, resolution=32),
    "vitc_1mf": ViTArch(30, 3, 1, 5, stem=_stem([3, 3, 3, 1], [2, 2, 2, 1], [8, 24, 32, 30]), resolution=32),
    "vitp_4mf": ViTArch(64, 3, 2, 6, patch=8, resolution=32),
    "vitc_4mf": ViTArch(64, 3, 2, 5, stem=_stem([3, 3, 3, 1], [2, 2, 2, 1], [16, 32, 64, 64]), resolution=32),
    "vitp_18mf": ViTArch(120, 4, 4, 6, patch=8, resolution=32),
    "vitc_18mf": ViTArch(120, 4, 4, 5, stem=_stem([3, 3, 3, 1], [2, 2, 2, 1], [32, 64, 160, 120]), resolution=32),
    "regnety_1mf": RegNetArch((1, 1, 2, 1), (12, 24, 48, 96), 4, stem_width=8, stem_stride=1, resolution=32),
    "regnety_4mf": RegNetArch((1, 1, 2, 1), (24, 48, 96, 192), 8, stem_width=16, stem_stride=1, resolution=32),
    "regnety_18mf": RegNetArch((1, 2, 3, 1), (48, 96, 192, 384), 16, stem_width=32, stem_stride=1, resolution=32),
    # Table 3's stems at 4 MF (32 px, total stride 8 instead of 16): each S_i moves the downsampling of C's
    # stride-2 3x3 convs into one final k x k stride-k conv, as the paper's do (docs/models.md).
    "vitc_4mf_s1": ViTArch(64, 3, 2, 5, stem=_stem([3, 3, 2, 1], [2, 2, 2, 1], [16, 40, 64, 64]), resolution=32),
    "vitc_4mf_s2": ViTArch(64, 3, 2, 5, stem=_stem([3, 3, 4, 1], [2, 1, 4, 1], [8, 16, 64, 64]), resolution=32),
    "vitc_4mf_s3": ViTArch(64, 3, 2, 5, stem=_stem([3, 3, 8, 1], [1, 1, 8, 1], [4, 6, 64, 64]), resolution=32),
    "vitc_4mf_s4": ViTArch(64, 3, 2, 5, stem=_stem([3, 3, 3, 8, 1], [1, 1, 1, 8, 1], [4, 4, 4, 64, 64]),
                           resolution=32),
}
# The 4 MF models under their earlier names (existing records and the lr_wd reference study use them).
ALIASES = {"vitp_mini": "vitp_4mf", "vitc_mini": "vitc_4mf", "regnety_mini": "regnety_4mf"}
ARCHS.update({old: ARCHS[new] for old, new in ALIASES.items()})
MODEL_NAMES = list(ARCHS)


def family(name: str) -> str | None:
    """A bench model's family, 'vit' or 'regnety' (its lr/wd ranges); None for any other model.

    Other models take theirs from the study (``bench run --family``, else its ``[families]`` table).
    """
    s = ARCHS.get(name)
    return None if s is None else "vit" if isinstance(s, ViTArch) else "regnety"


def check(name: str) -> None:
    """Raise UnknownModelError unless ``name`` is a bench model, a timm model or a ``module:function``
    whose module exists. Neither torch, timm nor the factory's module is imported. A factory's function
    is found when it is built."""
    if name in ARCHS:
        return
    module, sep, attr = name.partition(":")
    if sep:
        if not module or not attr.isidentifier():
            raise UnknownModelError(name, f"model factory {name!r} is not module:function")
        cwd_on_path()
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError) as e:
            raise UnknownModelError(name, f"cannot import model factory {name!r}: {e}") from None
        if found is None:
            raise UnknownModelError(name, f"cannot import model factory {name!r}: No module named {module!r}")
        return
    if name.split(".", 1)[0] not in timm_names():  # timm ignores a pretrained tag (name.tag), as here
        raise UnknownModelError(name)


@functools.cache
def timm_names() -> frozenset[str]:
    """The model names timm registers (its ``@register_model`` functions and deprecated aliases), read
    from its source without importing it; tests/engine/test_models.py holds it to timm's registry."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    names: set[str] = set()
    for path in Path(spec.submodule_search_locations[0], "models").rglob("*.py"):
        text = path.read_text(encoding="utf-8", errors="replace")
        names.update(re.findall(r"@register_model\s+def\s+(\w+)\s*\(", text))
        for block in re.findall(r"register_model_deprecations\(\s*__name__\s*,\s*\{(.*?)\}\s*\)", text, re.S):
            names.update(re.findall(r"""['"]([\w.-]+)['"]\s*:""", block))
    return frozenset(names)


def cwd_on_path() -> None:
    """``module:function`` factories import from the working directory: ``bench`` is a console script,
    whose sys.path lacks it."""
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())


def resolution(name: str) -> int | None:
    """A bench model's own resolution (the paper's; 32 for the laptop models); None for any other
    model, whose own is known only by building it (``bench.models.default_resolution``)."""
    a = ARCHS.get(name)
    return a.resolution if a is not None else None


class UnknownModelError(UserError, ValueError):
    def __init__(self, name, why=""):
        super().__init__(why or f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}, any timm model "
                                f"name (e.g. resnet18) or a factory module:function")


def input_multiple(name: str) -> int:
    """Side lengths a model accepts are multiples of this: a ViT's stem stride (patch size), 1 for a RegNet
    and for models bench does not register (unknown without building them: they fail in the trial)."""
    s = ARCHS.get(name)
    if s is None or isinstance(s, RegNetArch):
        return 1
    return s.patch if s.stem is None else math.prod(s.stem["strides"])


MAX_RESOLUTION = 1024  # px: the paper's largest is 268; an image of 1024 px already needs 3 MiB a sample


def check_resolution(name: str, resolution: int | None) -> None:
    """Raise UserError unless ``resolution`` (None: the model's own) is a positive side length of at most
    MAX_RESOLUTION that the model's stem divides."""
    if resolution is None:
        return
    m = input_multiple(name)
    if not 1 <= resolution <= MAX_RESOLUTION:
        raise UserError(f"resolution {resolution} is not a side length bench trains at: give 8 to {MAX_RESOLUTION} px"
                        + (f" (a multiple of {m} for {name})" if m > 1 else ""))
    if resolution < m or resolution % m:
        ok = max(m, resolution // m * m)
        raise UserError(f"resolution {resolution} does not suit {name}: its stem has stride {m}, so the "
                        f"resolution must be a positive multiple of {m} (e.g. {ok} or {ok + m})")
