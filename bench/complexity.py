"""Model complexity in the paper's convention (pycls): flops, params, acts.

flops = multiply-adds of convs, linears and both attention matmuls (QK^T and attn @ V);
acts = output elements of those same layers; params = all learnable parameters.
Norms, softmax, activations and element-wise ops count zero.

Counted layer by layer with forward hooks on a meta-device model (no memory, no compute):
Conv/Linear modules from their output shapes, attention from timm ``Attention``'s shape, because
scaled-dot-product attention is a function, not a module (torch's FlopCounterMode reports 0 for it
on CPU).  Any other model works too, but attention or matmuls outside timm ``Attention`` (and
functional linears/convs outside Linear/Conv modules) are not counted: ``complexity`` names their
modules in an ``UncountedWarning``.  Tests check the totals against the paper's Tables 1-2.
"""
from __future__ import annotations

import math
import sys
import types
import warnings
from collections import defaultdict

import torch
import torch.nn.functional as F
from timm.layers import Attention
from torch import nn
from torch.overrides import TorchFunctionMode

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_LAYER_OPS = {F.linear: nn.Linear, F.conv1d: _CONVS, F.conv2d: _CONVS, F.conv3d: _CONVS,
              F.conv_transpose1d: (), F.conv_transpose2d: (), F.conv_transpose3d: ()}
_ATTENTION_OPS = {F.scaled_dot_product_attention, F.multi_head_attention_forward, torch.matmul, torch.bmm,
                  torch.baddbmm, torch.einsum, torch.mm, torch.Tensor.matmul, torch.Tensor.__matmul__,
                  torch.Tensor.__rmatmul__, torch.Tensor.bmm, torch.Tensor.mm}


class UncountedWarning(UserWarning):
    """Some of a model's compute is not in its flops and acts."""


class _Watch(TorchFunctionMode):
    """Records matmul/attention calls outside timm ``Attention`` and linear/conv calls outside their modules."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.stack: list[tuple[str, nn.Module]] = []
        self.missed: dict[str, set] = defaultdict(set)  # "op in Class" -> module names
        names = {m: n for n, m in model.named_modules()}

        def push(m, _inp):
            self.stack.append((names[m], m))

        def pop(_m, _inp, _out):
            self.stack.pop()

        self.hooks = [h for m in names for h in (m.register_forward_pre_hook(push), m.register_forward_hook(pop))]

    def __torch_function__(self, func, types, args=(), kwargs=None):
        counted = (func in _LAYER_OPS and self.stack and isinstance(self.stack[-1][1], _LAYER_OPS[func])) or \
                  (func in _ATTENTION_OPS and any(isinstance(m, Attention) for _, m in self.stack))
        if (func in _LAYER_OPS or func in _ATTENTION_OPS) and not counted:
            name, module = self.stack[-1] if self.stack else ("", None)
            self.missed[f"{func.__name__} in {type(module).__name__}"].add(name or "(model)")
        return func(*args, **(kwargs or {}))

    def remove(self) -> None:
        for h in self.hooks:
            h.remove()


def _count(model: nn.Module, resolution: int) -> dict:
    totals = {"flops": 0, "acts": 0}

    def conv(m: nn.Conv2d, _inp, out):
        totals["flops"] += out.numel() * math.prod(m.kernel_size) * m.in_channels // m.groups
        totals["acts"] += out.numel()

    def linear(m: nn.Linear, _inp, out):
        totals["flops"] += out.numel() * m.in_features
        totals["acts"] += out.numel()

    def attention(m: Attention, inp, _out):
        b, n, _ = inp[0].shape
        totals["flops"] += 2 * b * n * n * m.attn_dim  # QK^T and attn @ V
        totals["acts"] += b * m.num_heads * n * n + b * n * m.attn_dim

    hooks = []
    for m in model.modules():
        hook = conv if isinstance(m, _CONVS) else linear if isinstance(m, nn.Linear) else \
            attention if isinstance(m, Attention) else None
        if hook is not None:
            hooks.append(m.register_forward_hook(hook))
    watch = _Watch(model)
    try:
        with torch.no_grad(), watch:
            model(torch.empty(1, 3, resolution, resolution, device="meta"))
    finally:
        watch.remove()
        for h in hooks:
            h.remove()
    if watch.missed:
        where = [(op, sorted(ns)) for op, ns in sorted(watch.missed.items())]
        warnings.warn(f"{type(model).__name__}: flops/acts leave out " + "; ".join(
            f"{op} ({', '.join(ns[:2])}{f', ... {len(ns)} modules' if len(ns) > 2 else ''})" for op, ns in where),
            UncountedWarning, stacklevel=3)
    totals["params"] = sum(p.numel() for p in model.parameters())
    return totals


def complexity(model_or_name: nn.Module | str, resolution: int | None = None, num_classes: int = 1000) -> dict:
    """``{"flops", "params", "acts"}`` (raw counts) of a model or model name at ``resolution``.

    A name (a bench or timm model, or ``module:function``) is built on the meta device at that
    resolution (default: the model's own); a module is counted as given, on a meta copy, so nothing
    of the caller's model is touched.
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
