"""Images/s per core of the imagefolder transforms: reduced-size JPEG decoding (draft) vs full-size.

One process, one thread: each round decodes and transforms the same images (train:
RandomResizedCrop + flip; val: resize + centre crop) once with ``draft=True`` and once with
``draft=False``, alternating so that machine load falls on both; the median round counts.  Also printed: the share of images the draft shrinks at all (the crop
must span >= 2R source pixels each way for DCT scaling by 1/2).

    python scripts/make_imagenet_like.py /tmp/imnet --classes 10 --train-per-class 30 --val-per-class 10
    python scripts/bench_decode.py /tmp/imnet --res 224 --rounds 7 [--json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from bench.data import load_data
from bench.data.crops import draft_size, train_box, val_box
from bench.data.loader import mix_seed


def rate(dataset, keys) -> float:
    tic = time.perf_counter()
    for k in keys:
        dataset[k]
    return len(keys) / (time.perf_counter() - tic)


def reduced_fraction(dataset, keys, resolution: int) -> float:
    """Share of the images whose decode ``draft`` shrinks (PIL's rule: scale s in 8, 4, 2, 1 with
    s <= min(w // rw, h // rh) for the requested size (rw, rh))."""
    from PIL import Image

    n = 0
    for i, seed, split, _ in keys:
        with Image.open(dataset.samples[i][0]) as img:
            w, h = img.size
        box = train_box(w, h, seed)[0] if split == "train" else val_box(w, h)
        rw, rh = draft_size(w, h, box, resolution)
        n += min(w // rw, h // rh) >= 2
    return n / len(keys)


def measure(root: str, resolution: int, rounds: int, n: int | None) -> dict:
    torch.set_num_threads(1)
    bundle = load_data(f"imagefolder:{root}", resolution)
    out = dict(resolution=resolution, rounds=rounds)
    for split, augment in (("train", "light"), ("val", "none")):
        ds = getattr(bundle, split)
        count = min(n or len(ds), len(ds))
        keys = [(i, mix_seed(0, i), split, augment) for i in range(count)]
        runs = {True: [], False: []}
        for r in range(rounds + 1):  # round 0 warms the page cache
            for draft in (True, False):
                ds.draft = draft
                v = rate(ds, keys)
                if r:
                    runs[draft].append(v)
        reduced, full = statistics.median(runs[True]), statistics.median(runs[False])
        out[split] = dict(images=count, reduced_img_s=reduced, full_img_s=full, ratio=reduced / full,
                          reduced_fraction=reduced_fraction(ds, keys, resolution),
                          reduced_runs=runs[True], full_runs=runs[False])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", help="an imagefolder (DIR/train/<class>/*, DIR/val/<class>/*)")
    p.add_argument("--res", type=int, default=224)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--images", type=int, help="images per split per round (default: all)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    r = measure(a.root, a.res, a.rounds, a.images)
    if a.json:
        print(json.dumps(r))
        return 0
    for split in ("train", "val"):
        s = r[split]
        print(f"{split:5s} @ {a.res}px, {s['images']} images, median of {a.rounds}: reduced {s['reduced_img_s']:7.1f} "
              f"img/s/core, full {s['full_img_s']:7.1f} img/s/core, ratio {s['ratio']:.2f} "
              f"({100 * s['reduced_fraction']:.0f}% of the images decoded smaller)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
