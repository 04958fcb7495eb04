"""What a result came from, recorded in every ``result.json`` (``provenance``): the suite's version and,
in a git checkout, its commit and whether its code differed from it; Python, torch, torchvision and timm
versions; the data set's identity (a named set's fingerprint, a prepared set's hash)."""
from __future__ import annotations

import functools
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from bench.core import dataspec

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("torch", "torchvision", "timm")


def _git(*args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


@functools.cache
def code() -> dict:
    """``suite`` (the package version) and, in a git checkout, ``commit``, ``bench_tree`` (the git hash of
    the training code, ``bench/``: commits that only add records or docs keep it) and ``dirty``: whether
    tracked files outside ``results/`` (where running studies write their records) differ from the commit."""
    out = {"suite": metadata.version("hpbench")}
    commit = _git("rev-parse", "HEAD")
    if commit:
        out["commit"] = commit
        out["bench_tree"] = _git("rev-parse", "HEAD:bench")
        out["dirty"] = bool(_git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!results"))
    return out


@functools.cache
def libraries() -> dict:
    return {"python": platform.python_version(), **{name: metadata.version(name) for name in LIBRARIES}}


def of(data: str) -> dict:
    """The provenance of a result trained on ``data`` (a canonical data spec)."""
    return {**code(), **libraries(), "data": dataspec.identity(data)}


def mixes(stored: list[dict]) -> list[str]:
    """What differs between the provenance of stored results and this code: 'commit a1b2c3d (3 trials)', ...
    A commit counts as other code when its training code differs (``bench_tree``, where both record it)."""
    here = {**code(), **libraries()}
    seen: dict[str, int] = {}
    for p in stored:
        for key in ("suite", "commit", *libraries()):
            same_code = key == "commit" and p.get("bench_tree") is not None and p["bench_tree"] == here.get("bench_tree")
            if p.get(key) is not None and p.get(key) != here.get(key) and not same_code:
                label = f"{key} {str(p[key])[:12]}"
                seen[label] = seen.get(label, 0) + 1
    return [f"{label} ({n} trial{'s' * (n > 1)})" for label, n in sorted(seen.items())]
