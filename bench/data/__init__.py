"""Datasets and loaders for the benchmark.

``load_data(spec, resolution)`` returns a :class:`DataBundle`; ``make_loader(bundle, split,
...)`` iterates one epoch of normalised batches on the training device.

Specs:

* ``synthetic`` / ``synthetic:N`` -- the procedural shapes x textures set (10 classes;
  10k train / 2k val by default, N train images on request), generated in seconds and
  cached outside the repo; see :mod:`bench.data.synthetic` for its design and calibration.
* ``cifar10[:DIR][:N]`` / ``cifar100[:DIR][:N]`` -- CIFAR from the python-pickle folder (torchvision's
  download, ``bench data get``) or from image folders (``train/<class>/*``, ``test/<class>/*``: decoded
  once and cached), resized with antialiasing when ``resolution != 32``; ``:N`` takes a class-balanced
  subset of N train images and validates on N / 5 test images (a fixed class-balanced subset; all
  10,000 without ``:N``).
* ``fashion-mnist[:DIR][:N]`` -- Fashion-MNIST's IDX files (Debian's ``dataset-fashion-mnist`` by
  default), 28 px zero-padded to 32 px and grey copied to 3 channels; ``:N`` as for CIFAR.
* ``imagefolder:DIR`` -- DIR/train/<class>/* and DIR/val/<class>/* (ImageNet layout),
  decoded lazily by DataLoader workers.
* ``prepared:DIR`` -- a data set ``bench data prepare`` made: resized JPEG shards (read as
  imagefolder is) or raw uint8 arrays (memory-mapped, the synthetic set's path); see
  :mod:`bench.data.prepared`.

``n_train`` / ``n_val`` take a seeded, class-balanced subset (for synthetic they set the
number of images generated; ``synthetic:N`` and ``n_train=N`` are the same request).
``seed`` is the *data* seed (which synthetic images / which subset): keep it fixed across
the trials of a study so that every trial sees the same data, and vary the trial seed of
``make_loader`` instead.
"""

from __future__ import annotations

import os

import torch

from bench.core.dataspec import NAMED, SCHEMES, SYNTHETIC_TRAIN, SYNTHETIC_VAL, DataError, DataSpec, parse, subset_sizes

from . import synthetic
from .cache import load_or_generate
from .core import DataBundle, TensorSplit, balanced_subset, channel_stats
from .loader import make_loader

__all__ = ["load_data", "make_loader", "DataError", "DataSpec", "TensorSplit", "DataBundle", "SCHEMES"]


def _check_n(name: str, n: int | None) -> None:
    if n is not None and (not isinstance(n, int) or n < 1):
        raise DataError(f"{name} must be a positive integer, got {n!r}")


def load_data(
    spec: str | DataSpec = "synthetic", resolution: int = 32, *, n_train: int | None = None,
    n_val: int | None = None, seed: int = 0, cache_dir: str | None = None,
) -> DataBundle:
    spec = parse(spec)
    if not isinstance(resolution, int) or resolution < 8:
        raise DataError(f"resolution must be an integer >= 8, got {resolution!r}")
    _check_n("n_train", n_train)
    _check_n("n_val", n_val)
    if spec.scheme == "synthetic":
        return _load_synthetic(spec, resolution, n_train, n_val, seed, cache_dir)
    if spec.scheme in NAMED:
        return _load_named(spec, resolution, n_train, n_val, seed, cache_dir)
    if spec.scheme == "prepared":
        from .prepared import load_prepared

        return load_prepared(spec, resolution, n_train, n_val, seed)
    return _load_folder(spec.folder, resolution, n_train, n_val, seed)


def _load_synthetic(spec: DataSpec, resolution, n_train, n_val, seed, cache_dir) -> DataBundle:
    n_tr = spec.size
    if n_train is not None:  # synthetic:N and n_train=N are the same request
        if spec.size not in (n_train, SYNTHETIC_TRAIN):
            raise DataError(f"conflicting train sizes: spec {spec} but n_train={n_train}")
        n_tr = n_train
    n_va = n_val or SYNTHETIC_VAL
    if cache_dir is not None:
        cache_dir = os.fspath(cache_dir)
    tr = load_or_generate("train", n_tr, resolution, seed, cache_dir)
    va = load_or_generate("val", n_va, resolution, seed, cache_dir)
    train = TensorSplit(tr[0], tr[1])
    mean, std = channel_stats(train.images)
    return DataBundle(str(DataSpec("synthetic", size=n_tr)), synthetic.NUM_CLASSES, resolution, train,
                      TensorSplit(va[0], va[1]), mean, std, class_names=synthetic.CLASS_NAMES)


def _subset_split(images, labels, n, seed):
    if n is None or n >= len(labels):
        return TensorSplit(images, labels)
    idx = torch.from_numpy(balanced_subset(labels.numpy(), n, seed))
    return TensorSplit(images[idx].contiguous(), labels[idx].contiguous())


def _load_named(spec: DataSpec, resolution, n_train, n_val, seed, cache_dir) -> DataBundle:
    """CIFAR or Fashion-MNIST in memory, cut to the spec's subset (``n_train``/``n_val`` cut it further)."""
    from .cifar import resize_uint8
    from .named import load_named

    raw = load_named(spec, cache_dir)
    sizes = subset_sizes(spec.scheme, spec.size)
    splits = {}
    for i, (split, n) in enumerate((("train", n_train), ("val", n_val))):
        s = _subset_split(*raw[split], min(n or sizes[i], sizes[i]), seed)
        splits[split] = TensorSplit(resize_uint8(s.images, resolution), s.labels)
    return DataBundle(str(spec), len(raw["class_names"]), resolution, splits["train"], splits["val"],
                      *raw["stats"], class_names=raw["class_names"])


def _load_folder(root, resolution, n_train, n_val, seed) -> DataBundle:
    from .folder import IMAGENET_MEAN, IMAGENET_STD, FolderDataset, load_imagefolder

    raw = load_imagefolder(root, resolution)
    ds = {}
    for split, n in (("train", n_train), ("val", n_val)):
        samples = raw[split]
        if n is not None and n < len(samples):
            idx = balanced_subset([c for _, c in samples], n, seed)
            samples = [samples[i] for i in idx]
        ds[split] = FolderDataset(samples, resolution, split)
    return DataBundle("imagefolder", len(raw["classes"]), resolution, ds["train"], ds["val"],
                      IMAGENET_MEAN, IMAGENET_STD, class_names=tuple(raw["classes"]))
