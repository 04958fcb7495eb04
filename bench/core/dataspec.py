"""Data specs (``synthetic[:N]``, ``cifar10:DIR``, ``cifar100:DIR``, ``imagefolder:DIR``) without
torch: parsed and checked before a study launches anything (``bench.data`` loads them)."""
from __future__ import annotations

from pathlib import Path

from bench.core.errors import UserError

SCHEMES = ("synthetic", "cifar10", "cifar100", "imagefolder")
_USAGE = "synthetic, synthetic:N, cifar10:DIR, cifar100:DIR, imagefolder:DIR"
SYNTHETIC_TRAIN, SYNTHETIC_VAL = 10_000, 2_000


class DataError(UserError, ValueError):
    """A data problem caused by the user's input (bad spec, missing path, wrong layout,
    corrupt file).  The message names the problem and the path."""


def parse_spec(spec: str) -> tuple[str, str | None]:
    """'scheme[:arg]' -> (scheme, arg or None); DataError for anything else."""
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"empty data spec; valid: {_USAGE}")
    scheme, sep, arg = spec.strip().partition(":")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise DataError(f"unknown data scheme {scheme!r} in {spec!r}; valid: {_USAGE}")
    if scheme != "synthetic" and not arg:
        raise DataError(f"data spec {spec!r} needs a folder: {scheme}:DIR")
    return scheme, (arg if sep else None)


def missing_folder(spec: str) -> str | None:
    """The folder a spec names if it is not a directory on this machine, else None."""
    scheme, arg = parse_spec(spec)
    return None if scheme == "synthetic" or Path(arg).expanduser().is_dir() else arg

DECODES = ("auto", "cpu", "device")  # where make_loader decodes JPEGs: auto = the GPU on CUDA, else the CPU
