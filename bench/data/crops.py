"""Crop boxes of the ImageNet transforms, computed from the image size alone (before decoding).

Knowing the box before decoding is what lets a JPEG be decoded at reduced size (DCT scaling,
:func:`draft_size`) on the CPU, or be decoded on the GPU and cropped there, with the same crop
statistics as torchvision's transforms on the full image:

* train: ``RandomResizedCrop`` (scale 0.08-1, ratio 3/4-4/3, 10 attempts then a centre crop
  clamped to the ratio range: torchvision's algorithm) and a horizontal flip with p = 0.5;
* val: resize the short side to round(R * 256 / 224) and take the centre R x R, i.e. the
  centre square of side short * 224 / 256 in the source.

Boxes are ``(x0, y0, x1, y1)`` in source pixels; train boxes are integers, as torchvision's.
"""
from __future__ import annotations

import math
import random

SCALE, RATIO = (0.08, 1.0), (3 / 4, 4 / 3)


def train_box(w: int, h: int, sample_seed: int) -> tuple[tuple[int, int, int, int], bool]:
    """(RandomResizedCrop box, flip) of a w x h image, a pure function of ``sample_seed``."""
    rng = random.Random(sample_seed)
    area = w * h
    log_lo, log_hi = math.log(RATIO[0]), math.log(RATIO[1])
    for _ in range(10):
        target = area * rng.uniform(*SCALE)
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
            return (x0, y0, x0 + cw, y0 + ch), rng.random() < 0.5
    ratio = w / h  # fallback: the largest centre crop within the ratio range
    if ratio < RATIO[0]:
        cw, ch = w, round(w / RATIO[0])
    elif ratio > RATIO[1]:
        cw, ch = round(h * RATIO[1]), h
    else:
        cw, ch = w, h
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return (x0, y0, x0 + cw, y0 + ch), rng.random() < 0.5


def val_box(w: int, h: int) -> tuple[float, float, float, float]:
    """Centre box that 'resize short side to R*256/224, centre-crop R' cuts from a w x h image."""
    side = min(w, h) * 224 / 256
    return ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)


def draft_size(w: int, h: int, box, out: int) -> tuple[int, int]:
    """The size to ask ``PIL.Image.draft`` for: the box still covers >= ``out`` pixels each way.

    PIL picks the largest DCT scale 1/s (s in 1, 2, 4, 8) with s <= min(w // rw, h // rh) and
    decodes to ceil(w / s) x ceil(h / s), so the box spans at least (x1 - x0) / s >= out pixels.
    """
    bw, bh = box[2] - box[0], box[3] - box[1]
    return max(1, math.ceil(w * out / bw)), max(1, math.ceil(h * out / bh))
