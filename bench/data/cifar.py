"""CIFAR-10/100 from the standard python-pickle folders (never downloaded).

Layouts (as unpacked from cifar-10-python.tar.gz / cifar-100-python.tar.gz):

* CIFAR-10:  DIR/data_batch_1 .. data_batch_5, DIR/test_batch, DIR/batches.meta
* CIFAR-100: DIR/train, DIR/test, DIR/meta

Each batch is a pickled dict with ``data`` (uint8 [n, 3072], channel-major 32x32) and
``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100).  The files are unpickled with an
allow-list that admits only numpy arrays and plain containers, so a stray or hostile
pickle cannot run code; anything that fails to load or has the wrong shape is a
DataError naming the file.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.core.dataspec import CIFAR_LAYOUTS

from .core import DataError

LAYOUTS = CIFAR_LAYOUTS
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"forbidden global {module}.{name}")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _SafeUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except OSError as e:
        raise DataError(f"cannot read CIFAR file {path}: {e}") from e
    except Exception as e:  # noqa: BLE001 - pickle raises many types on garbage
        raise DataError(f"corrupt CIFAR file {path}: not a readable pickle ({type(e).__name__}: {e})") from e
    if not isinstance(obj, dict):
        raise DataError(f"corrupt CIFAR file {path}: expected a pickled dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_batch(path: Path, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    if "data" not in d or label_key not in d:
        raise DataError(f"corrupt CIFAR file {path}: missing key 'data' or '{label_key}' "
                        f"(found {sorted(map(str, d))}); is this the right dataset (cifar10 vs cifar100)?")
    data = np.asarray(d["data"])
    labels = np.asarray(d[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"corrupt CIFAR file {path}: 'data' must be uint8 [n, 3072], got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise DataError(f"corrupt CIFAR file {path}: {labels.shape[0] if labels.ndim else 0} labels "
                        f"for {data.shape[0]} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"corrupt CIFAR file {path}: labels outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def resize_uint8(images: torch.Tensor, resolution: int, chunk: int = 2048) -> torch.Tensor:
    """Antialiased bilinear resize of uint8 [N,3,H,W] to [N,3,R,R], chunked."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    out = torch.empty((images.shape[0], 3, resolution, resolution), dtype=torch.uint8)
    for s in range(0, images.shape[0], chunk):
        x = images[s:s + chunk].float()
        y = F.interpolate(x, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
        out[s:s + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def load_cifar(name: str, root: str) -> dict:
    """Read a CIFAR folder: {'train': (images, labels), 'val': ..., 'class_names': [...]}."""
    layout = LAYOUTS[name]
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"{name}: folder {path} does not exist")
    if not path.is_dir():
        raise DataError(f"{name}: {path} is not a folder")
    expected = layout["train"] + layout["val"] + [layout["meta"]]
    missing = [f for f in expected if not (path / f).is_file()]
    if missing:
        nested = [p.name for p in path.iterdir() if p.is_dir() and (p / expected[0]).is_file()]
        hint = f"; the files are in {path / nested[0]}, pass that folder" if nested else ""
        raise DataError(f"{name}: {path} is not a {name} python folder: missing {', '.join(missing)} "
                        f"(expected {', '.join(expected)}){hint}")
    out = {}
    for split in ("train", "val"):
        parts = [_read_batch(path / f, layout["label_key"], layout["num_classes"]) for f in layout[split]]
        out[split] = (torch.from_numpy(np.concatenate([p[0] for p in parts])),
                      torch.from_numpy(np.concatenate([p[1] for p in parts])))
    meta = _unpickle(path / layout["meta"])
    names = meta.get(layout["names_key"])
    if names is None or len(names) != layout["num_classes"]:
        raise DataError(f"corrupt CIFAR file {path / layout['meta']}: '{layout['names_key']}' must list "
                        f"{layout['num_classes']} class names")
    out["class_names"] = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return out
