"""Prepared data against the originals: prepare time and size, and loader images/s per core.

Writes an ImageNet-like JPEG folder (:mod:`bench.data.imagenet_like`), prepares it both ways
(``bench data prepare``: resized JPEG shards, max side 256, quality 90; raw uint8 arrays at 64 px),
then times the train loader of the recipe's augmentation in-process (one core, ``workers=0``, decoding
on the CPU: ``loader_img_per_s_per_worker`` of ``bench perf --data``) for two pairs, their rounds
alternating so that machine load falls on both arms alike; the median round counts:

* ``imagefolder`` against ``prepared`` (jpeg) at 224 px (RandomResizedCrop + flip from each);
* ``imagefolder`` decoded to 64 px against ``prepared`` (raw, 64 px; random crop + flip of the array).

    python scripts/bench_prepared.py /tmp/prep --images 10000 [--rounds 5] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench.data import load_data
from bench.data.imagenet_like import make
from bench.perf import loader_rate
from bench.prepare import prepare


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="working folder (the source and both preparations go here; reused if present)")
    p.add_argument("--images", type=int, default=10_000, help="images in all (10 classes, 90%% train)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes to generate and prepare")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batches", type=int, default=4, help="timed batches of 64 per round (raw: x 16)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    root = Path(a.root)
    src, jpeg, raw = root / "src", root / "jpeg", root / "raw64"
    out = dict(images=a.images, workers=a.workers, cpu=os.cpu_count())
    if not src.is_dir():
        per = a.images // 10
        made = make(src, classes=10, train_per_class=per * 9 // 10, val_per_class=per // 10, workers=a.workers)
        out["generate_s"] = made["seconds"]
    out["source_mib"] = _size(src) / 2**20
    for name, folder, fmt, params in (("jpeg", jpeg, "jpeg", dict(max_side=256, quality=90)),
                                      ("raw64", raw, "raw", dict(resolution=64))):
        tic = time.perf_counter()
        prepare(f"imagefolder:{src}", folder, fmt, params, shard_size=500, workers=a.workers, quiet=True)
        out[f"prepare_{name}_s"] = time.perf_counter() - tic  # ~0 when it was already prepared
        out[f"{name}_mib"] = _size(folder) / 2**20
    pairs = {"jpeg_224": (load_data(f"imagefolder:{src}", 224), load_data(f"prepared:{jpeg}", 224), a.batches),
             "raw_64": (load_data(f"imagefolder:{src}", 64), load_data(f"prepared:{raw}", 64), a.batches)}
    for name, (orig, prep, batches) in pairs.items():
        rates = {"original": [], "prepared": []}
        for _ in range(a.rounds):
            rates["original"].append(loader_rate(orig, 64, "cpu", "light", 0, "cpu", batches))
            rates["prepared"].append(loader_rate(prep, 64, "cpu", "light", 0, "cpu", batches * 16 if "raw" in name else batches))
        o, q = statistics.median(rates["original"]), statistics.median(rates["prepared"])
        out[name] = dict(original_img_s=o, prepared_img_s=q, ratio=q / o, rounds=rates)
    if a.json:
        print(json.dumps(out))
        return 0
    print(f"{a.images:,} ImageNet-like images, {out['source_mib']:,.0f} MiB; prepared with {a.workers} workers:")
    for name in ("jpeg", "raw64"):
        print(f"  {name:6s} {out[f'prepare_{name}_s']:7.1f} s  {out[f'{name}_mib']:8,.1f} MiB")
    for name in pairs:
        r = out[name]
        print(f"  loader {name}: original {r['original_img_s']:8.1f} img/s, prepared {r['prepared_img_s']:9.1f} img/s "
              f"per core -> {r['ratio']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
