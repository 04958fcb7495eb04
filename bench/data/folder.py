"""ImageNet-style folders: DIR/train/<class>/<image> and DIR/val/<class>/<image>.

Files are listed with torchvision's ``ImageFolder`` rules (its image extensions, classes
sorted by name).  The layout is checked up front: both splits present, the same class
folders in both, no class without images.  Images are decoded lazily in the loader's
workers; the transform depends on the split and the ``augment`` chosen at
``make_loader`` time, so the Dataset takes keys ``(index, sample_seed, split, augment[, decode])``
(plain integer indices also work, giving the val transform):

* val, and train with augment "none": resize the short side to round(R*256/224), center
  crop R (the paper's test transform);
* train "light": RandomResizedCrop(R) + horizontal flip; "full": light + AutoAugment
  (ImageNet policy).

The crop box is drawn from the image size before decoding (:mod:`bench.data.crops`), so a
JPEG is decoded at reduced size: ``PIL.Image.draft`` (DCT scaling by 1/2, 1/4 or 1/8) to the
smallest size at which the box still spans >= R pixels each way, then the box is resized to
R x R (antialiased bilinear) in one ``Image.resize(box=...)``.  The crop statistics are
torchvision's; only the downsampling filter differs (DCT scaling, then bilinear).  With
``decode="device"`` a JPEG is not decoded here at all: the item is its bytes, box and flip
(:class:`JpegBytes`) and :mod:`bench.data.device_decode` finishes it on the GPU.

An image that cannot be decoded is counted and reported by the loader (one warning per
epoch); in the train split it is replaced by the next readable image, in val it is left
out.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch
from torch.utils.data import Dataset

from .core import DataError
from .crops import draft_size, train_box, val_box

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _classes(split_dir: Path) -> list[str]:
    classes = sorted(e.name for e in os.scandir(split_dir) if e.is_dir())
    if not classes:
        raise DataError(f"imagefolder: {split_dir} has no class folders (expected {split_dir}/<class>/<image>)")
    return classes


def _scan(split_dir: Path, classes: list[str]) -> list[tuple[str, int]]:
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    index = {c: i for i, c in enumerate(classes)}
    try:
        samples = make_dataset(str(split_dir), index, extensions=IMG_EXTENSIONS, allow_empty=True)
    except (OSError, ValueError) as e:
        raise DataError(f"imagefolder: cannot list {split_dir}: {e}") from e
    counts = [0] * len(classes)
    for _, c in samples:
        counts[c] += 1
    empty = [classes[i] for i, n in enumerate(counts) if n == 0]
    if empty:
        shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
        raise DataError(f"imagefolder: empty class folder(s) in {split_dir}: {shown} "
                        f"(no files with an image extension {', '.join(IMG_EXTENSIONS[:4])}, ...)")
    return samples


class JpegBytes(NamedTuple):
    """An undecoded JPEG and its crop, for decoding on the training device (``decode="device"``)."""

    data: torch.Tensor  # uint8 [n_bytes]
    box: tuple  # (x0, y0, x1, y1) in source pixels
    flip: bool
    key: tuple  # the dataset key, to decode it on the CPU instead if the device cannot


class FolderDataset(Dataset):
    """Lazily decoded images of one split; items are (uint8 [3,R,R] | JpegBytes | None, label, bad_path | None).

    Keys are ``(index, sample_seed, split, augment[, decode])`` (see the module docstring);
    ``draft=False`` turns reduced-size JPEG decoding off (to measure what it saves).
    """

    accepts_keys = True

    def __init__(self, samples: list[tuple[str, int]], resolution: int, split: str, draft: bool = True):
        self.samples = samples
        self.targets = [c for _, c in samples]
        self.resolution = resolution
        self.split = split
        self.draft = draft
        self.corrupt_files: set[str] = set()  # filled by the loader in the main process
        self._autoaug = None

    def __len__(self) -> int:
        return len(self.samples)

    def autoaugment(self):
        if self._autoaug is None:
            from torchvision.transforms import v2

            self._autoaug = v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET)
        return self._autoaug

    def open(self, i: int):
        """Image i's file (a path, or a file object), for PIL."""
        return self.samples[i][0]

    def read(self, i: int) -> bytes:
        """Image i's encoded bytes."""
        with open(self.samples[i][0], "rb") as f:
            return f.read()

    def _load(self, i: int, sample_seed: int, train: bool, augment: str, decode: str):
        """The transformed image i (uint8 [3,R,R]), or its JpegBytes for ``decode="device"``."""
        from PIL import Image
        from torchvision.transforms.v2.functional import pil_to_tensor

        r = self.resolution
        with Image.open(self.open(i)) as img:
            w, h = img.size
            box, flip = train_box(w, h, sample_seed) if train else (val_box(w, h), False)
            if decode == "device" and img.format == "JPEG" and img.mode in ("RGB", "L"):
                return JpegBytes(torch.frombuffer(bytearray(self.read(i)), dtype=torch.uint8), box, flip, None)
            if self.draft and img.format == "JPEG":
                img.draft("RGB", draft_size(w, h, box, r))
            sx, sy = img.size[0] / w, img.size[1] / h
            out = img if img.mode == "RGB" else img.convert("RGB")
            out = out.resize((r, r), Image.BILINEAR, box=(box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
        if flip:
            out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if augment == "full":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed)
                out = self.autoaugment()(out)
        return pil_to_tensor(out)

    def __getitem__(self, key):
        if isinstance(key, tuple):
            index, sample_seed, split, augment, *rest = key
            decode = rest[0] if rest else "cpu"
        else:
            index, sample_seed, split, augment, decode = int(key), 0, "val", "none", "cpu"
        train = split == "train" and augment != "none"
        bad = None
        n = len(self.samples)
        for attempt in range(16):
            i = (index + attempt * 7919) % n
            try:
                x = self._load(i, sample_seed, train, augment, decode)
                if isinstance(x, JpegBytes):
                    x = x._replace(key=(i, sample_seed, split, augment, "cpu"))
            except Exception:  # noqa: BLE001 - PIL raises many types on broken files
                if bad is None:
                    bad = self.samples[i][0]
                if split != "train":
                    return None, self.samples[index][1], bad
                continue
            return x, self.samples[i][1], bad
        raise DataError(f"imagefolder: 16 unreadable images in a row around {self.samples[index][0]}")


def load_imagefolder(root: str, resolution: int) -> dict:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"imagefolder: folder {path} does not exist" if not path.exists()
                        else f"imagefolder: {path} is not a folder")
    for split in ("train", "val"):
        if not (path / split).is_dir():
            raise DataError(f"imagefolder: {path} has no {split}/ folder (expected {path}/train/<class>/<image> "
                            f"and {path}/val/<class>/<image>)")
    tr_classes, va_classes = _classes(path / "train"), _classes(path / "val")
    if tr_classes != va_classes:
        only_tr = sorted(set(tr_classes) - set(va_classes))
        only_va = sorted(set(va_classes) - set(tr_classes))
        raise DataError(f"imagefolder: class folders differ between {path / 'train'} and {path / 'val'}: "
                        f"only in train: {only_tr[:5]}{'...' if len(only_tr) > 5 else ''}; "
                        f"only in val: {only_va[:5]}{'...' if len(only_va) > 5 else ''}")
    return dict(classes=tr_classes, train=_scan(path / "train", tr_classes), val=_scan(path / "val", va_classes))
