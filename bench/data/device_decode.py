"""Decode a batch of JPEGs on the training device and crop, resize and flip it there.

The DataLoader workers only read the files and draw each image's crop box and flip
(:mod:`bench.data.crops`, the same draws as the CPU path); here the batch is decoded with one
``torchvision.io.decode_jpeg(list, device=...)`` call (nvJPEG on CUDA), each image's box is cut
and resized to R x R with antialiased bilinear interpolation, flipped, and (``augment="full"``)
passed through AutoAugment, all with torch ops on the device.  A batch the decoder rejects is
retried image by image; an image it still rejects is decoded on the CPU through the dataset
(PNGs, CMYK JPEGs and unreadable files never get here: the workers decode or report those).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .folder import JpegBytes


def decode_jpegs(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """uint8 [3,H,W] images on ``device`` (None where the decoder fails)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    if not datas:
        return []
    try:
        return list(decode_jpeg(datas, mode=ImageReadMode.RGB, device=device))
    except Exception:  # noqa: BLE001 - one bad image fails the batch: find it
        out = []
        for d in datas:
            try:
                out.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=device))
            except Exception:  # noqa: BLE001
                out.append(None)
        return out


def crop_resize(img: torch.Tensor, box, flip: bool, size: int) -> torch.Tensor:
    """uint8 [3,H,W] -> uint8 [3,size,size]: the (rounded) box, antialiased bilinear, optional flip."""
    x0, y0, x1, y1 = (round(v) for v in box)
    crop = img[:, y0:y1, x0:x1].unsqueeze(0).float()
    out = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]
    if flip:
        out = out.flip(-1)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def assemble(parts: list, labels: torch.Tensor, dataset, device: torch.device, resolution: int, augment: str):
    """(uint8 [B,3,R,R] on device, labels on device, unreadable paths) from a batch of tensors and JpegBytes."""
    jpeg_at = [i for i, p in enumerate(parts) if isinstance(p, JpegBytes)]
    decoded = dict(zip(jpeg_at, decode_jpegs([parts[i].data for i in jpeg_at], device)))
    images, keep, bad = [], [], []
    labels = labels.clone()
    for i, p in enumerate(parts):
        if not isinstance(p, JpegBytes):
            images.append(p.to(device, non_blocking=True))
        elif decoded[i] is not None:
            x = crop_resize(decoded[i], p.box, p.flip, resolution)
            if augment == "full":
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(p.key[1])
                    x = dataset.autoaugment()(x)
            images.append(x)
        else:  # the CPU path decodes it, or replaces (train) / drops (val) it and reports the file
            x, labels[i], path = dataset[tuple(p.key)]
            if path is not None:
                bad.append(path)
            if x is None:
                continue
            images.append(x.to(device))
        keep.append(i)
    x = torch.stack(images) if images else torch.empty((0, 3, resolution, resolution), dtype=torch.uint8, device=device)
    return x, labels[keep].to(device, non_blocking=True), bad
