"""The named sets in memory: CIFAR-10/100 (the python-pickle folder or image folders) and Fashion-MNIST
(IDX files), as uint8 [N, 3, 32, 32] tensors per split.

* CIFAR image folders (``train/<class>/*``, ``test/<class>/*``, classes in sorted order, as torchvision's
  ImageFolder) are decoded once with PIL and cached under the cache root, keyed by the folder's
  fingerprint; an image that does not decode, or is not 32 x 32, is a DataError naming it.
* Fashion-MNIST's 28 x 28 grey images are zero-padded by 2 px on every side to 32 x 32 (no resampling:
  its background is 0) and the grey channel is copied to three, so every ladder model reads it as it
  reads CIFAR. Its normalisation is the padded train split's own mean and std.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from bench.core.dataspec import FASHION_CLASSES, FASHION_FILES, FOLDER_SPLITS, IMAGE_SUFFIXES, DataSpec, cifar_layout
from bench.io import atomic_save

from .cache import cache_root
from .cifar import STATS, load_cifar
from .core import DataError, channel_stats

FOLDER_CACHE_VERSION = 1


def load_named(spec: DataSpec, cache_dir=None) -> dict:
    """{'train': (images, labels), 'val': (images, labels), 'class_names': (...), 'stats': (mean, std)}."""
    root = Path(spec.folder)
    if not root.is_dir():
        hint = ("apt-get install dataset-fashion-mnist" if spec.scheme == "fashion-mnist"
                else f"bench data get {spec.scheme}, or give {spec.scheme}:DIR")
        raise DataError(f"{spec.scheme}: folder {root} does not exist ({hint})")
    problems = spec.problems()
    if problems:
        raise DataError(problems[0])
    if spec.scheme == "fashion-mnist":
        out = {split: _idx_pair(root, *files) for split, files in FASHION_FILES.items()}
        out["class_names"] = FASHION_CLASSES
        out["stats"] = channel_stats(out["train"][0])
        return out
    if cifar_layout(root) == "pickle":
        out = load_cifar(spec.scheme, str(root))
    else:
        out = _cifar_folder(spec, cache_dir)
    out["stats"] = STATS[spec.scheme]
    return out


# ---- Fashion-MNIST


def _idx(path: Path, dims: int) -> np.ndarray:
    """An IDX file (gzipped): magic 0x00000800 + ndims, big-endian sizes, uint8 data."""
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read IDX file {path}: {e}") from None
    if len(raw) < 4 + 4 * dims or raw[:3] != b"\0\0\x08" or raw[3] != dims:
        raise DataError(f"corrupt IDX file {path}: not a {dims}-d uint8 IDX file")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * dims)
    if data.size != int(np.prod(shape)):
        raise DataError(f"corrupt IDX file {path}: {data.size} bytes of data for shape {shape}")
    return data.reshape(shape)


def _idx_pair(root: Path, images_file: str, labels_file: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = _idx(root / images_file, 3), _idx(root / labels_file, 1)
    if len(images) != len(labels) or labels.max(initial=0) >= len(FASHION_CLASSES):
        raise DataError(f"corrupt Fashion-MNIST in {root}: {len(images)} images, {len(labels)} labels, "
                        f"labels up to {labels.max(initial=0)}")
    x = torch.from_numpy(np.pad(images, ((0, 0), (2, 2), (2, 2))))  # 28 -> 32 px, zeros
    return x[:, None].expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(labels.astype(np.int64))


# ---- CIFAR as image folders


def _cifar_folder(spec: DataSpec, cache_dir) -> dict:
    """The decoded folders, from the cache when it holds this fingerprint, else decoded and cached."""
    path = cache_root(cache_dir) / f"{spec.scheme}-folder-v{FOLDER_CACHE_VERSION}-{spec.digest}.pt"
    if path.is_file():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - an unreadable cache file is decoded again
            pass
    out = _decode_folder(Path(spec.folder))
    try:
        atomic_save(out, path)
    except OSError:
        pass  # a read-only cache: decode again next time
    return out


def _decode_folder(root: Path) -> dict:
    from PIL import Image

    classes = sorted(e.name for e in os.scandir(root / FOLDER_SPLITS["train"]) if e.is_dir())
    out: dict = {"class_names": tuple(classes)}
    for split, name in FOLDER_SPLITS.items():
        files = [(Path(root, name, c, f), i) for i, c in enumerate(classes)
                 for f in sorted(os.listdir(root / name / c)) if f.lower().endswith(IMAGE_SUFFIXES)]
        images = np.empty((len(files), 32, 32, 3), np.uint8)
        for j, (f, _) in enumerate(files):
            try:
                with Image.open(f) as img:
                    images[j] = np.asarray(img.convert("RGB"))
            except (OSError, ValueError) as e:
                raise DataError(f"cannot read CIFAR image {f}: {e} (a CIFAR image is 32 x 32)") from None
        out[split] = (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
                      torch.tensor([i for _, i in files], dtype=torch.int64))
    return out
