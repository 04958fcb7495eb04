"""Model complexity in the paper's convention (pycls): flops, params, acts.

flops = multiply-adds of convs, linears and both attention matmuls (QK^T and attn @ V);
acts = output elements of those same layers; params = all learnable parameters.
Norms, softmax, activations and element-wise ops count zero.

Counted layer by layer with forward hooks on a meta-device model (no memory, no compute):
Conv2d/Linear from their output shapes, attention from timm ``Attention``'s input shape, because
scaled-dot-product attention is a function, not a module (torch's FlopCounterMode reports 0 for it
on CPU).  Tests check the totals against the paper's Tables 1-2.
"""
from __future__ import annotations

import sys
import types

import torch
from timm.models.vision_transformer import Attention
from torch import nn


def _count(model: nn.Module, resolution: int) -> dict:
    totals = {"flops": 0, "acts": 0}

    def conv(m: nn.Conv2d, _inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * m.in_channels // m.groups
        totals["flops"] += out.numel() * k
        totals["acts"] += out.numel()

    def linear(m: nn.Linear, _inp, out):
        totals["flops"] += out.numel() * m.in_features
        totals["acts"] += out.numel()

    def attention(m: Attention, inp, _out):
        b, n, c = inp[0].shape
        totals["flops"] += 2 * b * n * n * c  # QK^T and attn @ V
        totals["acts"] += b * m.num_heads * n * n + b * n * c

    hooks = []
    for m in model.modules():
        hook = conv if isinstance(m, nn.Conv2d) else linear if isinstance(m, nn.Linear) else \
            attention if isinstance(m, Attention) else None
        if hook is not None:
            hooks.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, resolution, resolution, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    totals["params"] = sum(p.numel() for p in model.parameters())
    return totals


def complexity(model_or_name: nn.Module | str, resolution: int | None = None, num_classes: int = 1000) -> dict:
    """``{"flops", "params", "acts"}`` (raw counts) of a model or registered name at ``resolution``.

    A name is built on the meta device at that resolution (its position embedding sized to it);
    a module is counted as given, on a meta copy, so nothing of the caller's model is touched.
    """
    from bench import models

    if isinstance(model_or_name, str):
        resolution = resolution or models.default_resolution(model_or_name)
        with torch.device("meta"):
            model = models.create(model_or_name, num_classes=num_classes, img_size=resolution)
    else:
        if resolution is None:
            raise ValueError("complexity(module, resolution): resolution is required for a module")
        model = model_or_name
        if next(model.parameters()).device.type != "meta":
            import copy
            model = copy.deepcopy(model).to("meta")
    was_training = model.training
    model.eval()
    try:
        return _count(model, resolution)
    finally:
        model.train(was_training)


class _CallableModule(types.ModuleType):
    """Lets ``bench.complexity(name)`` call the function: ``bench`` imports lazily, so the package
    attribute ``complexity`` is this submodule of the same name once anything imports it."""

    def __call__(self, *args, **kwargs):
        return complexity(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
