"""Atomic file writes: a reader (or a resumed run) never sees a half-written file."""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from pathlib import Path


def _atomic(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save(obj, path) -> None:
    """``torch.save`` to a temp file in the same folder, fsync, then rename over ``path``. A write that
    fails (torch reports a full disk as "unexpected pos") is an OSError naming the path and the space left."""
    import torch  # here: the runner writes JSON with this module and must start without torch

    try:
        _atomic(path, lambda f: torch.save(obj, f))
    except RuntimeError as e:
        free = shutil.disk_usage(Path(path).parent).free / 2**20
        raise OSError(errno.EIO, f"cannot write {path} ({str(e).splitlines()[0][:120]}); {free:.0f} MiB free "
                                 "on its filesystem") from None


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` atomically."""
    _atomic(path, lambda f: f.write(data))


def atomic_write_json(path, obj) -> None:
    """Write ``obj`` as JSON atomically (NaN is not valid JSON: callers store None instead)."""
    _atomic(path, lambda f: f.write(json.dumps(obj, indent=1, allow_nan=False).encode()))


def cannot_write(folder) -> str | None:
    """Why no file can be written in ``folder`` (made if need be), found by writing a temp file in it or in
    its nearest existing ancestor; None when one can. Nothing is left behind."""
    above = next(p for p in (Path(folder), *Path(folder).parents) if p.exists())
    if not above.is_dir():
        return f"{above} is a file"
    try:
        with tempfile.TemporaryFile(dir=above):
            return None
    except OSError as e:
        return f"cannot write in {above}: {e.strerror or e}"
