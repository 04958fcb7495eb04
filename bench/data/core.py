"""Data containers, the error type and the shared helpers of bench.data."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.core.dataspec import DataError  # noqa: F401  (raised here, defined without torch)




@dataclass
class TensorSplit:
    """An in-memory split: moved to the training device once and indexed there."""

    images: torch.Tensor  # uint8 [N, 3, H, W]
    labels: torch.Tensor  # int64 [N]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be uint8 [N,3,H,W], got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.dtype != torch.int64 or self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"labels must be int64 [N], got {self.labels.dtype} {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> "TensorSplit":
        return TensorSplit(self.images.to(device), self.labels.to(device))


@dataclass
class DataBundle:
    name: str
    num_classes: int
    resolution: int
    train: TensorSplit | Dataset
    val: TensorSplit | Dataset
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: tuple[str, ...] = ()
    # {(split, str(device)): TensorSplit on that device}; filled by make_loader
    _device_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def on_device(self, split: str, device: torch.device) -> TensorSplit:
        """The TensorSplit ``split`` on ``device``, copied there once and cached."""
        data = getattr(self, split)
        if not isinstance(data, TensorSplit):
            raise TypeError(f"{self.name} {split} split is a Dataset, not a TensorSplit")
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        key = (split, str(device))
        if key not in self._device_cache:
            self._device_cache[key] = data if data.images.device == device else data.to(device)
        return self._device_cache[key]


def balanced_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of a seeded, class-balanced subset of size n (sorted), for n_train/n_val."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng([seed, 0xC1A55])
    perm = rng.permutation(len(labels))
    # rank of each sample within its class in the permuted order; take low ranks first
    order = np.argsort(labels[perm], kind="stable")
    sorted_labels = labels[perm][order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels)) - starts
    chosen = perm[np.lexsort((np.arange(len(labels)), rank))[:n]]
    return np.sort(chosen)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of uint8 images, in [0, 1] units (chunked float64 sums)."""
    s = torch.zeros(3, dtype=torch.float64)
    s2 = torch.zeros(3, dtype=torch.float64)
    count = 0
    for chunk in images.split(4096):
        x = chunk.to(torch.float64).div_(255).transpose(0, 1).reshape(3, -1)
        s += x.sum(1)
        s2 += (x * x).sum(1)
        count += x.shape[1]
    mean = s / count
    std = (s2 / count - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())
