"""The manifest of a prepared data set (``bench data prepare``), read without torch: the one file that
makes a folder a data set. It is written last and atomically, so a folder without one is a prepare
that did not finish; its hash (of everything but the creation time) is part of the data spec
(``prepared:DIR#HASH12``), hence of every trial's identity.

Its checksums are verified at three depths (:func:`problems`): ``"index"`` on every read (the index
and label files, where a flipped byte becomes an impossible label), ``"sample"`` when a trial loads
the set (also ``SAMPLED`` of its image files, shards or arrays, drawn at random each time, so the
trials of a study cover them), and ``"all"`` (``bench data prepare --verify DIR``).
"""
from __future__ import annotations

import hashlib
import json
import random
import shlex
from pathlib import Path

from bench.core.errors import UserError

MANIFEST, PROGRESS = "manifest.json", "progress.jsonl"
HASH_CHARS = 12  # of the manifest's sha256 in a data spec
FORMATS = ("jpeg", "raw")
DEPTHS = ("sizes", "index", "sample", "all")
SAMPLED = 2  # image files (shards or arrays) whose checksum a trial's load verifies


class ManifestError(UserError, ValueError):
    """A prepared folder that is not a finished, intact data set."""


def read(folder) -> dict:
    """The manifest of a prepared folder; a one-line ManifestError if the prepare did not finish or the
    file is not one."""
    root = Path(folder)
    path = root / MANIFEST
    if not path.is_file():
        if (root / PROGRESS).is_file():
            n = max(0, sum(1 for _ in open(root / PROGRESS, errors="replace")) - 1)
            raise ManifestError(f"prepared:{root}: the prepare did not finish ({n} chunk(s) done, no {MANIFEST}); "
                                f"run the same bench data prepare ... --out {root} again to resume it")
        raise ManifestError(f"prepared:{root}: no {MANIFEST} there: not a prepared data set (make one with "
                            f"bench data prepare SOURCE --out {root})")
    try:
        m = json.loads(path.read_text())
        if not (isinstance(m, dict) and m.get("format") in FORMATS and isinstance(m.get("hash"), str)
                and isinstance(m.get("files"), list) and {"train", "val"} <= set(m.get("splits", {}))):
            raise ValueError("fields missing")
    except (OSError, ValueError) as e:
        raise ManifestError(f"prepared:{root}: {path} is not a manifest ({e}); prepare the data set again") from None
    return m


def problems(folder, digest: str | None, depth: str = "index") -> list[str]:
    """What keeps the prepared folder from being the data set ``digest`` names: no manifest, another
    preparation's manifest, a file missing or of another size than the manifest records (a torn copy),
    or, to ``depth`` (one of DEPTHS), a file whose sha256 is not the recorded one (a damaged file)."""
    try:
        m = read(folder)
    except ManifestError as e:
        return [str(e)]
    root = Path(folder)
    out = []
    if digest and not m["hash"].startswith(digest):
        out.append(f"prepared:{root}#{digest}: {root} now holds another preparation (hash {m['hash'][:HASH_CHARS]}); "
                   "trials of the two never pair or resume into each other")
    bad = [f["name"] for f in m["files"]
           if not (root / f["name"]).is_file() or (root / f["name"]).stat().st_size != f["bytes"]]
    if bad:
        out.append(f"prepared:{root}: {len(bad)} file(s) missing or not of the size its {MANIFEST} records "
                   f"({_names(bad)}): a torn copy; copy it again, or rebuild it with `{rebuild_command(root, m)}`")
        return out
    damaged = [f["name"] for f in checked(m, depth) if sha256(root / f["name"]) != f["sha256"]]
    if damaged:
        out.append(f"prepared:{root}: {_names(damaged)} {'does' if len(damaged) == 1 else 'do'} not match the "
                   f"sha256 {MANIFEST} records (damaged since it was prepared); rebuild it with "
                   f"`{rebuild_command(root, m)}` (it redoes the damaged chunks){_verify_hint(root, depth)}")
    return out


def checked(m: dict, depth: str) -> list[dict]:
    """The manifest's file records whose checksums a check of ``depth`` verifies."""
    if depth not in DEPTHS:
        raise ValueError(f"depth is one of {DEPTHS}, not {depth!r}")
    if depth == "sizes":
        return []
    if depth == "all":
        return list(m["files"])
    images = [f for f in m["files"] if _holds_images(f["name"])]
    rest = [f for f in m["files"] if not _holds_images(f["name"])]
    return rest + (random.sample(images, min(SAMPLED, len(images))) if depth == "sample" else [])


def _holds_images(name: str) -> bool:
    """A jpeg shard (``<split>-<k>.jpg.bin``) or a raw image array (``<split>.npy``), not an index or labels."""
    return name.endswith(".jpg.bin") or name in ("train.npy", "val.npy")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def rebuild_command(root: Path, m: dict) -> str:
    """The ``bench data prepare`` command that made the set (it resumes, redoing what is not intact)."""
    fmt, params = m["format"], m.get("params", {})
    flags = ["--format", fmt] + ([f"--max-side={params['max_side']}", f"--quality={params['quality']}"]
                                 if fmt == "jpeg" else [f"--res={params['resolution']}"])
    try:  # the chunk size is in the prepare's own log, not in the data set
        plan = json.loads(open(root / PROGRESS).readline())["plan"]
        flags.append(f"--shard-size={plan['shard_size']}")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return shlex.join(["bench", "data", "prepare", str(m.get("source")), "--out", str(root), *flags])


def _verify_hint(root: Path, depth: str) -> str:
    return "" if depth == "all" else f"; check every file with `bench data prepare --verify {root}`"


def _names(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
