"""The manifest of a prepared data set (``bench data prepare``), read without torch: the one file that
makes a folder a data set. It is written last and atomically, so a folder without one is a prepare
that did not finish; its hash (of everything but the creation time) is part of the data spec
(``prepared:DIR#HASH12``), hence of every trial's identity."""
from __future__ import annotations

import json
from pathlib import Path

from bench.core.errors import UserError

MANIFEST, PROGRESS = "manifest.json", "progress.jsonl"
HASH_CHARS = 12  # of the manifest's sha256 in a data spec
FORMATS = ("jpeg", "raw")


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


def problems(folder, digest: str | None) -> list[str]:
    """What keeps the prepared folder from being the data set ``digest`` names: no manifest, another
    preparation's manifest, or a file missing or of another size than the manifest records (a torn copy)."""
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
                   f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}): a torn copy; copy or prepare it again")
    return out
