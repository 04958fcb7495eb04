"""``bench data prepare``: decode a data set once into a prepared data set that trials read hundreds
of times (``--data prepared:DIR``, read by :mod:`bench.data.prepared`).

Two formats:

* ``jpeg``: every image re-encoded with its longer side at most ``max_side`` (default 256, as FFCV
  stores ImageNet; smaller images are re-encoded at their size) at JPEG ``quality`` (default 90),
  concatenated into shards of ``shard_size`` images with an index each (offset, length, label);
  trained with the same augmentation as ``imagefolder`` (RandomResizedCrop + flip, resize / centre
  crop for val), from the smaller images;
* ``raw``: every image squashed to ``resolution`` x ``resolution`` (the whole image, antialiased, as
  Downsampled ImageNet does) into one uint8 array per split (``<split>.npy``, [N, 3, R, R]),
  memory-mapped at train time: no decoding, the in-memory path the synthetic set uses (random crop +
  flip on the device).

The work goes in chunks over the machine's workers; a finished chunk is recorded in
``progress.jsonl`` (its checksum and its unreadable images), so a stopped prepare resumes where it
stopped. ``manifest.json`` is written last and atomically: the source, the parameters, counts per
split and class, a checksum per file, and every source image that could not be read (counted and
listed, never silently dropped). A folder without it is a prepare that did not finish, and is never
read as a data set. Layout::

    DIR/manifest.json              the data set (its hash is part of every trial's identity)
    DIR/progress.jsonl             finished chunks (resume)
    DIR/<split>-<k>.jpg.bin / .idx.npy   jpeg: shard k's bytes and its (offset, length, label) rows
    DIR/<split>.npy, <split>-labels.npy  raw: the images and labels (chunk k's <split>-<k>.raw.npy /
                                         .lbl.npy until they are joined, then deleted)
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench import fetch
from bench.core import dataspec, manifest
from bench.core.errors import UserError
from bench.core.manifest import FORMATS, HASH_CHARS, MANIFEST, PROGRESS
from bench.io import atomic_write_bytes, atomic_write_json, cannot_write

VERSION = 1


def register(sub) -> None:
    data = sub.add_parser("data", help="prepare a data set once for many trials (bench data prepare)")
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND", required=True,
                                 help="prepare: decode a data set once into shards or raw arrays; get: download CIFAR")
    p = dsub.add_parser("prepare", help="decode a data set once into a prepared one (--data prepared:DIR)",
                        description=__doc__.split("\n\n")[0])
    p.add_argument("source", nargs="?", help="the data to prepare: imagefolder:DIR, cifar10[:DIR], cifar100[:DIR] or fashion-mnist[:DIR]")
    p.add_argument("--out", help="the prepared data set's folder (a stopped prepare resumes in it; required)")
    p.add_argument("--verify", metavar="DIR",
                   help="instead: check every file of the prepared set in DIR against its manifest's checksums")
    p.add_argument("--format", choices=FORMATS, default="jpeg",
                   help="jpeg: resized JPEG shards; raw: uint8 arrays at --res (default: jpeg)")
    p.add_argument("--max-side", type=int, default=256, help="jpeg: the longest side kept, in px (default: 256)")
    p.add_argument("--quality", type=int, default=90, help="jpeg: the JPEG quality (default: 90)")
    p.add_argument("--res", type=int, default=64, help="raw: the side of every image, in px (default: 64)")
    p.add_argument("--shard-size", type=int, default=1000, help="images per chunk (default: 1000)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: every core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    fetch.register(dsub)


def run(args) -> int:
    if args.verify:
        if args.source or args.out:
            raise UserError("--verify DIR checks a prepared set; give it alone: bench data prepare --verify DIR")
        return verify(Path(args.verify))
    if not (args.source and args.out):
        raise UserError("give the data and a folder: bench data prepare SOURCE --out DIR (or --verify DIR)")
    params = dict(max_side=args.max_side, quality=args.quality) if args.format == "jpeg" else dict(resolution=args.res)
    for name, v, lo, hi in (("--max-side", args.max_side, 16, 8192), ("--quality", args.quality, 1, 100),
                            ("--res", args.res, 8, 1024), ("--shard-size", args.shard_size, 1, 10**7),
                            ("--workers", args.workers, 1, 1024)):
        if not lo <= v <= hi:
            raise UserError(f"{name} takes {lo} to {hi}, got {v}")
    m = prepare(args.source, Path(args.out), args.format, params, args.shard_size, args.workers, quiet=args.no_progress)
    counts = ", ".join(f"{s} {m['splits'][s]['count']:,}" for s in ("train", "val"))
    size = sum(f["bytes"] for f in m["files"])
    print(f"prepared {args.out}: {args.format}, {counts} images, {size / 2**20:,.1f} MiB, "
          f"{len(m['unreadable'])} unreadable source image(s) left out"
          + (f" (listed in {Path(args.out) / MANIFEST})" if m["unreadable"] else "") + f"; train on it with --data prepared:{args.out} (hash {m['hash'][:HASH_CHARS]})")
    return 0


def verify(root: Path) -> int:
    """``--verify DIR``: every file's checksum against the manifest's; a damaged set is a UserError."""
    bad = manifest.problems(root, None, depth="all") if root.is_dir() else \
        [f"prepared:{root}: no such folder (give the --out folder of a bench data prepare)"]
    if bad:
        raise UserError("; ".join(bad))
    m = manifest.read(root)
    print(f"prepared:{root}: all {len(m['files'])} files match the checksums in {MANIFEST} "
          f"({sum(f['bytes'] for f in m['files']) / 2**20:,.1f} MiB; hash {m['hash'][:HASH_CHARS]})")
    return 0


def _check_out(out: Path, src: dict) -> None:
    """One line, before any work, for an --out that is a file, lies under a file, cannot be written, or
    lies inside the image folder it would be prepared from (whose reads would then see it as a class)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file: give a folder (new, or a prepare's to resume)")
    why = cannot_write(out)
    if why:
        raise UserError(f"--out {out}: {why}; give a folder you can write")
    folder = src.get("folder")
    if folder and out.resolve().is_relative_to(Path(folder).resolve()):
        raise UserError(f"--out {out} lies inside the source folder {folder}: its files would be read as part of "
                        "the data; prepare into a folder outside it")


# ---- the source


def _source(spec: str) -> dict:
    """The source's classes, mean/std and, per split, its items: (path, label) or (array row, label)."""
    src = dataspec.parse(spec)
    if src.scheme not in ("imagefolder", *dataspec.NAMED):
        raise UserError(f"bench data prepare reads imagefolder:DIR, {', '.join(f'{n}[:DIR]' for n in dataspec.NAMED)}, "
                        f"not {spec!r}")
    if src.missing_folder():
        raise UserError(f"data folder {src.folder} does not exist")
    problems = src.problems()
    if problems:
        raise UserError("; ".join(problems))
    if src.scheme == "imagefolder":
        from bench.data.folder import IMAGENET_MEAN, IMAGENET_STD, load_imagefolder

        raw = load_imagefolder(src.folder, 32)
        return dict(source=str(src), folder=src.folder, classes=list(raw["classes"]), mean=IMAGENET_MEAN,
                    std=IMAGENET_STD, items={s: [(p, c) for p, c in raw[s]] for s in ("train", "val")})
    raw = _named(str(src))
    items = {s: [(("named", str(src), s, i), int(c)) for i, c in enumerate(raw[s][1].tolist())]
             for s in ("train", "val")}
    return dict(source=str(src), folder=src.folder, classes=list(raw["class_names"]), mean=raw["stats"][0],
                std=raw["stats"][1], items=items)


_NAMED: dict = {}


def _named(spec: str) -> dict:
    """A named set (CIFAR, Fashion-MNIST) in memory, read once per process."""
    if spec not in _NAMED:
        from bench.data.named import load_named

        _NAMED[spec] = load_named(dataspec.parse(spec))
    return _NAMED[spec]


def _image(item):
    """A source item as a PIL RGB image."""
    from PIL import Image

    if isinstance(item, tuple):  # a row of a named set
        _, spec, split, i = item
        return Image.fromarray(_named(spec)[split][0][i].permute(1, 2, 0).numpy())
    with Image.open(item) as img:
        return img.convert("RGB")


# ---- the chunks


def _jpeg_chunk(job) -> dict:
    """Encode a chunk's images into one shard (bytes + index), written atomically."""
    import numpy as np
    from PIL import Image

    out, name, items, params = job
    blob, rows, bad = io.BytesIO(), [], []
    for path, label in items:
        try:
            img = _image(path)
        except Exception:  # noqa: BLE001 - PIL raises many types on broken files
            bad.append(str(path))
            continue
        w, h = img.size
        scale = params["max_side"] / max(w, h)
        if scale < 1:
            img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BICUBIC, reducing_gap=3.0)
        start = blob.tell()
        img.save(blob, format="JPEG", quality=params["quality"])
        rows.append((start, blob.tell() - start, label))
    data = blob.getvalue()
    index = io.BytesIO()
    np.save(index, np.asarray(rows, dtype=np.int64).reshape(-1, 3))
    atomic_write_bytes(out / f"{name}.jpg.bin", data)
    atomic_write_bytes(out / f"{name}.idx.npy", index.getvalue())
    return dict(name=name, files=[_file(out / f"{name}.jpg.bin"), _file(out / f"{name}.idx.npy")], count=len(rows),
                labels=[r[2] for r in rows], unreadable=bad)


def _raw_chunk(job) -> dict:
    """Squash a chunk's images to R x R into one array (and its labels), written atomically."""
    import numpy as np
    from PIL import Image

    out, name, items, params = job
    r = params["resolution"]
    rows, labels, bad = [], [], []
    for path, label in items:
        try:
            img = _image(path).resize((r, r), Image.BILINEAR, reducing_gap=None)
        except Exception:  # noqa: BLE001 - PIL raises many types on broken files
            bad.append(str(path))
            continue
        rows.append(np.asarray(img).transpose(2, 0, 1))
        labels.append(label)
    for suffix, arr in ((".raw.npy", np.stack(rows) if rows else np.zeros((0, 3, r, r), np.uint8)),
                        (".lbl.npy", np.asarray(labels, dtype=np.int64))):
        buf = io.BytesIO()
        np.save(buf, arr)
        atomic_write_bytes(out / f"{name}{suffix}", buf.getvalue())
    return dict(name=name, files=[_file(out / f"{name}.raw.npy"), _file(out / f"{name}.lbl.npy")], count=len(rows),
                labels=labels, unreadable=bad)


def _file(path: Path) -> dict:
    return dict(name=path.name, bytes=path.stat().st_size, sha256=manifest.sha256(path))


def prepare(source: str, out: Path, fmt: str, params: dict, shard_size: int = 1000, workers: int = 1,
            quiet: bool = False) -> dict:
    """Prepare ``source`` into ``out`` (resuming a stopped prepare of the same source and parameters;
    a finished, intact one is returned as it is); returns the manifest."""
    from tqdm import tqdm

    src = _source(source)
    _check_out(out, src)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot create it ({e.strerror or e}); give a folder you can write") from None
    plan = dict(version=VERSION, source=src["source"], format=fmt, params=params, shard_size=shard_size)
    finished = _finished(out, plan)
    if finished:
        return finished
    done = _progress(out, plan)
    jobs = []
    for split in ("train", "val"):
        items = src["items"][split]
        for k, start in enumerate(range(0, len(items), shard_size)):
            name = f"{split}-{k:05d}"
            if name not in done or not _intact(out, done[name]):
                jobs.append((out, name, items[start:start + shard_size], params))
    work = _jpeg_chunk if fmt == "jpeg" else _raw_chunk
    total = sum(len(j[2]) for j in jobs)
    with tqdm(total=total, unit="img", disable=quiet or not total, file=sys.stderr) as bar, \
            open(out / PROGRESS, "a") as log:
        if not done:
            log.write(json.dumps(dict(plan=plan)) + "\n")
        pool = ProcessPoolExecutor(workers) if workers > 1 and len(jobs) > 1 else None
        try:
            for (job, rec) in zip(jobs, pool.map(work, jobs) if pool else map(work, jobs)):
                log.write(json.dumps(rec) + "\n")
                log.flush()
                done[rec["name"]] = rec
                bar.update(len(job[2]))
        finally:
            if pool:
                pool.shutdown()
    _refuse_empty(out, src, done)
    if fmt == "raw":
        _concatenate(out, done, params["resolution"])
    m = _manifest(out, src, plan, done)
    if fmt == "raw":  # the chunks are in the arrays now
        for rec in done.values():
            for f in rec["files"]:
                (out / f["name"]).unlink(missing_ok=True)
    return m


def _refuse_empty(out: Path, src: dict, done: dict) -> None:
    """A split whose every source image was unreadable is nothing to train on: one line, and the log is
    dropped so that a prepare after the images are fixed starts over."""
    for split in ("train", "val"):
        recs = [r for k, r in done.items() if k.startswith(split + "-")]
        if src["items"][split] and not sum(r["count"] for r in recs):
            bad = [p for r in recs for p in r["unreadable"]]
            (out / PROGRESS).unlink(missing_ok=True)
            raise UserError(f"{src['source']}: none of the {len(bad):,} {split} images could be read (e.g. {bad[0]}); "
                            "nothing to train on: fix or replace them, then prepare again")


def _finished(out: Path, plan: dict) -> dict | None:
    """The manifest of a finished, intact prepare of this plan in ``out``, if there is one (every
    checksum verified: a damaged file sends the prepare on, to redo its chunk)."""
    try:
        m = manifest.read(out)
    except manifest.ManifestError:
        return None
    same = {k: m.get(k) for k in ("version", "source", "format", "params")} == \
        {k: plan[k] for k in ("version", "source", "format", "params")}
    if not same:
        raise UserError(f"{out} holds a prepared data set of other data or parameters ({m.get('source')}, "
                        f"{m.get('format')} {m.get('params')}); prepare into another --out folder, or delete it")
    return None if manifest.problems(out, None, depth="all") else m


def _concatenate(out: Path, done: dict, r: int) -> None:
    """raw: the chunks of each split, in order, into ``<split>.npy`` and ``<split>-labels.npy``."""
    import numpy as np

    for split in ("train", "val"):
        recs = [done[k] for k in sorted(done) if k.startswith(split + "-")]
        n = sum(rec["count"] for rec in recs)
        tmp = out / f".{split}.npy.tmp"
        dst = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, 3, r, r))
        at = 0
        for rec in recs:
            part = np.load(out / f"{rec['name']}.raw.npy", mmap_mode="r")
            dst[at:at + len(part)] = part
            at += len(part)
        dst.flush()
        del dst
        os.replace(tmp, out / f"{split}.npy")
        labels = np.concatenate([np.load(out / f"{rec['name']}.lbl.npy") for rec in recs]) if recs else np.zeros(0, np.int64)
        buf = io.BytesIO()
        np.save(buf, labels.astype(np.int64))
        atomic_write_bytes(out / f"{split}-labels.npy", buf.getvalue())


def _progress(out: Path, plan: dict) -> dict:
    """The chunks a stopped prepare of the same plan finished (empty: a fresh start)."""
    path = out / PROGRESS
    if (out / MANIFEST).exists():
        (out / MANIFEST).unlink()  # it is rewritten at the end; meanwhile the folder is not a data set
    if not path.exists():
        return {}
    done, first = {}, True
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line torn by a stop mid-write
        if first:
            if rec.get("plan") != plan:
                raise UserError(f"{out} holds a prepare of other data or parameters ({rec.get('plan')}); prepare "
                                "into another --out folder, or delete it")
            first = False
            continue
        done[rec["name"]] = rec
    return done


def _intact(out: Path, rec: dict) -> bool:
    """Whether a recorded chunk's files are there, of the recorded sizes and checksums."""
    return all((out / f["name"]).is_file() and (out / f["name"]).stat().st_size == f["bytes"]
               and manifest.sha256(out / f["name"]) == f["sha256"] for f in rec["files"])


def _manifest(out: Path, src: dict, plan: dict, done: dict) -> dict:
    import numpy as np

    splits, files = {}, []
    n_classes = len(src["classes"])
    for split in ("train", "val"):
        recs = [done[k] for k in sorted(done) if k.startswith(split + "-")]
        labels = [c for r in recs for c in r["labels"]]
        jpeg = plan["format"] == "jpeg"
        files += [f for r in recs for f in r["files"]] if jpeg else [_file(out / f"{split}{x}.npy") for x in ("", "-labels")]
        per_class = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes).tolist()
        splits[split] = dict(count=len(labels), per_class=per_class, shards=[r["name"] for r in recs] if jpeg else [])
    body = dict(version=VERSION, source=src["source"], format=plan["format"], params=plan["params"],
                classes=src["classes"], mean=list(src["mean"]), std=list(src["std"]), splits=splits, files=files,
                unreadable=sorted(p for r in done.values() for p in r["unreadable"]))
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    record = dict(body, hash=digest, created=time.strftime("%Y-%m-%dT%H:%M:%S"))
    atomic_write_json(out / MANIFEST, record)
    return record
