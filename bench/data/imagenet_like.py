"""Write an ImageNet-like JPEG folder (DIR/train/<class>/*.JPEG, DIR/val/<class>/*.JPEG) from a seed.

For measuring decoding and loading without ImageNet.  What is like ImageNet: the layout, the
file names' extension, the image sizes (85% with the long side 500 px, mostly 4:3 or 3:2, a quarter
portrait; the rest 300-1000 px), baseline JPEG at quality 90 with 4:2:0 chroma, and the bytes per
pixel (about 0.6-0.9, ImageNet's train set averages ~0.8): the content is 1/f colour noise (smooth
at large scales, grainy at small ones, as photos are) with a few soft shapes whose colour and kind
depend on the class.  Not like ImageNet: the content is not natural; nobody should train on it for
accuracy.  Every image is a pure function of (seed, split, index): the same bytes on any machine
with the same Pillow/libjpeg, any number of workers.

    python -m bench.data.imagenet_like /tmp/imnet --classes 10 --train-per-class 180 --val-per-class 20
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_SPLIT_ID = {"train": 1, "val": 2}
DECAY, GRAIN = 0.92, 8.0  # octave amplitude ratio, pixel noise: set for ImageNet's bytes per pixel
_ASPECTS = ((4 / 3, 0.55), (3 / 2, 0.25), (1.0, 0.1), (16 / 9, 0.05), (5 / 4, 0.05))


def image_size(rng: np.random.Generator) -> tuple[int, int]:
    """(width, height) drawn like ImageNet's: mostly 500x375 / 500x333, some portrait, some other sizes."""
    aspect = _ASPECTS[rng.choice(len(_ASPECTS), p=[p for _, p in _ASPECTS])][0]
    long_side = 500 if rng.random() < 0.85 else int(rng.integers(300, 1001))
    short_side = max(64, round(long_side / aspect))
    return (short_side, long_side) if rng.random() < 0.25 else (long_side, short_side)


def _noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """1/f-like colour noise, float32 [h, w, 3]: a pyramid of random grids, each octave upsampled 2x
    and added to the next with ``DECAY`` times its amplitude."""
    gw, gh = (3, max(2, round(3 * h / w))) if w >= h else (max(2, round(3 * w / h)), 3)
    acc, amp = 60.0 * rng.standard_normal((3, gh, gw), np.float32), 60.0
    while 2 * gw <= w and 2 * gh <= h:
        gw, gh, amp = 2 * gw, 2 * gh, amp * DECAY
        acc = _resize(acc, gw, gh) + amp * rng.standard_normal((3, gh, gw), np.float32)
    return _resize(acc, w, h).transpose(1, 2, 0)


def _resize(planes: np.ndarray, w: int, h: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(p, mode="F").resize((w, h), Image.BICUBIC)) for p in planes])


def render(seed: int, split: str, index: int, num_classes: int) -> tuple[bytes, int]:
    """(JPEG bytes, class) of image ``index`` of ``split``."""
    rng = np.random.default_rng([seed, _SPLIT_ID[split], index])
    label = index % num_classes
    w, h = image_size(rng)
    hue = np.array([np.cos(2 * np.pi * label / num_classes), np.sin(2 * np.pi * label / num_classes), 0.3])
    base = 110 + 50 * hue + rng.normal(0, 25, 3)
    img = Image.fromarray(np.clip(base + _noise(rng, w, h), 0, 255).astype(np.uint8))
    layer = Image.new("RGB", (w, h))
    mask = Image.new("L", (w, h))
    draw, mdraw = ImageDraw.Draw(layer), ImageDraw.Draw(mask)
    for _ in range(int(rng.integers(2, 6))):
        cx, cy, r = rng.random() * w, rng.random() * h, (0.08 + 0.25 * rng.random()) * min(w, h)
        colour = tuple(int(v) for v in np.clip(128 + 100 * np.roll(hue, label % 3) + rng.normal(0, 40, 3), 0, 255))
        box = [cx - r, cy - r * (0.5 + rng.random()), cx + r, cy + r * (0.5 + rng.random())]
        if label % 2:
            draw.ellipse(box, fill=colour)
            mdraw.ellipse(box, fill=int(rng.integers(150, 256)))
        else:
            pts = [(cx + r * np.cos(a), cy + r * np.sin(a)) for a in np.sort(rng.random(5)) * 2 * np.pi]
            draw.polygon(pts, fill=colour)
            mdraw.polygon(pts, fill=int(rng.integers(150, 256)))
    img = Image.composite(layer, img, mask.filter(ImageFilter.GaussianBlur(1.5)))
    arr = np.asarray(img, np.float32) + GRAIN * rng.standard_normal((h, w, 3), np.float32)  # sensor-like grain
    buf = _encode(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)))
    return buf, label


def _encode(img: Image.Image) -> bytes:
    import io

    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, subsampling="4:2:0", optimize=False)
    return out.getvalue()


def _write(job) -> int:
    root, seed, split, index, classes = job
    data, label = render(seed, split, index, len(classes))
    (root / split / classes[label] / f"{split}_{index:07d}.JPEG").write_bytes(data)
    return len(data)


def make(root: str | Path, *, classes: int = 10, train_per_class: int = 100, val_per_class: int = 10,
         seed: int = 0, workers: int = 1) -> dict:
    """Write the folder; returns counts, bytes and seconds."""
    root = Path(root)
    names = [f"n{c:08d}" for c in range(classes)]
    for split in _SPLIT_ID:
        for name in names:
            (root / split / name).mkdir(parents=True, exist_ok=True)
    jobs = [(root, seed, split, i, names) for split, per in (("train", train_per_class), ("val", val_per_class))
            for i in range(per * classes)]
    tic = time.perf_counter()
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            sizes = list(pool.map(_write, jobs, chunksize=16))
    else:
        sizes = [_write(j) for j in jobs]
    return dict(images=len(jobs), bytes=sum(sizes), seconds=time.perf_counter() - tic)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="output folder (created; existing files of the same names are overwritten)")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--train-per-class", type=int, default=100)
    p.add_argument("--val-per-class", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes (the output does not depend on it)")
    a = p.parse_args(argv)
    for name in ("classes", "train_per_class", "val_per_class", "workers"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    r = make(a.out, classes=a.classes, train_per_class=a.train_per_class, val_per_class=a.val_per_class,
             seed=a.seed, workers=a.workers)
    print(f"{r['images']} JPEGs, {r['bytes'] / 2**20:.1f} MiB ({r['bytes'] / r['images'] / 1024:.0f} KiB each) "
          f"in {a.out}, {r['seconds']:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
