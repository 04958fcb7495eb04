"""On-disk cache of generated synthetic splits (outside the repository).

Location: ``cache_dir`` argument, else ``$HPBENCH_CACHE``, else ``~/.cache/hpbench``.
One file per split, named by everything that determines its content (generator
version, split, seed, n, resolution), written to a temporary file in the same folder and
renamed into place (atomic on POSIX, so concurrent trials never read half a file; two
trials generating the same split at once both write identical bytes).  A file that does
not load or does not match its key is regenerated with a warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from bench.io import atomic_save

from .synthetic import GENERATOR_VERSION, generate
from .core import DataError


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("HPBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/hpbench").expanduser()


def cache_path(root: Path, split: str, seed: int, n: int, resolution: int) -> Path:
    v = GENERATOR_VERSION
    return root / f"synthetic-v{v}-{split}-seed{seed}-n{n}-r{resolution}.pt"


def _valid(obj, split, seed, n, resolution) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("version") == GENERATOR_VERSION
        and obj.get("key") == (split, seed, n, resolution)
        and isinstance(obj.get("images"), torch.Tensor)
        and isinstance(obj.get("labels"), torch.Tensor)
        and obj["images"].dtype == torch.uint8
        and tuple(obj["images"].shape) == (n, 3, resolution, resolution)
        and obj["labels"].dtype == torch.int64
        and tuple(obj["labels"].shape) == (n,)
    )


def load_or_generate(
    split: str, n: int, resolution: int, seed: int, cache_dir=None
) -> tuple[torch.Tensor, torch.Tensor, Path | None]:
    """(images, labels, path) of a synthetic split, from the cache or freshly generated.

    ``cache_dir=""`` (empty string) disables the cache.
    """
    if cache_dir == "":
        images, labels = generate(n, resolution, seed=seed, split=split)
        return images, labels, None
    root = cache_root(cache_dir)
    path = cache_path(root, split, seed, n, resolution)
    if path.exists():
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is regenerated
            obj, why = None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:200]
        else:
            why = "contents do not match the cache key"
        if obj is not None and _valid(obj, split, seed, n, resolution):
            return obj["images"], obj["labels"], path
        warnings.warn(f"synthetic cache file {path} is corrupt ({why}); regenerating it",
                      RuntimeWarning, stacklevel=3)
    images, labels = generate(n, resolution, seed=seed, split=split)
    try:
        atomic_save({"version": GENERATOR_VERSION, "key": (split, seed, n, resolution),
                     "images": images, "labels": labels}, path)
    except OSError as e:
        if cache_dir is not None:  # the user asked for this folder explicitly
            raise DataError(f"cannot write the synthetic cache in {root}: {e}") from e
        warnings.warn(f"cannot write the synthetic cache in {root} ({e}); continuing without it",
                      RuntimeWarning, stacklevel=3)
        return images, labels, None
    return images, labels, path
