"""ImageNet-style folders: DIR/train/<class>/<image> and DIR/val/<class>/<image>.

Files are listed with torchvision's ``ImageFolder`` rules (its image extensions, classes
sorted by name).  The layout is checked up front: both splits present, the same class
folders in both, no class without images.  Images are decoded lazily in the loader's
workers; the transform depends on the split and the ``augment`` chosen at
``make_loader`` time, so the Dataset takes keys ``(index, sample_seed, split, augment)``
(plain integer indices also work, giving the val transform):

* val, and train with augment "none": resize the short side to round(R*256/224), center
  crop R (the paper's test transform);
* train "light": RandomResizedCrop(R) + horizontal flip; "full": light + AutoAugment
  (ImageNet policy).

An image that cannot be decoded is counted and reported by the loader (one warning per
epoch); in the train split it is replaced by the next readable image, in val it is left
out.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .core import DataError

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


class FolderDataset(Dataset):
    """Lazily decoded images of one split; items are (uint8 [3,R,R] | None, label, bad_path | None)."""

    accepts_keys = True

    def __init__(self, samples: list[tuple[str, int]], resolution: int, split: str):
        self.samples = samples
        self.targets = [c for _, c in samples]
        self.resolution = resolution
        self.split = split
        self.corrupt_files: set[str] = set()  # filled by the loader in the main process
        self._tf = {}

    def __len__(self) -> int:
        return len(self.samples)

    def transform(self, split: str, augment: str):
        key = (split, augment)
        if key not in self._tf:
            from torchvision.transforms import v2

            r = self.resolution
            if split == "train" and augment != "none":
                ops = [v2.RandomResizedCrop(r, antialias=True), v2.RandomHorizontalFlip()]
                if augment == "full":
                    ops.append(v2.AutoAugment(v2.AutoAugmentPolicy.IMAGENET))
            else:
                ops = [v2.Resize(round(r * 256 / 224), antialias=True), v2.CenterCrop(r)]
            self._tf[key] = v2.Compose([*ops, v2.PILToTensor()])
        return self._tf[key]

    def _load(self, i: int):
        from PIL import Image

        path = self.samples[i][0]
        with open(path, "rb") as f:
            img = Image.open(f)
            return img.convert("RGB")

    def __getitem__(self, key):
        if isinstance(key, tuple):
            index, sample_seed, split, augment = key
        else:
            index, sample_seed, split, augment = int(key), 0, "val", "none"
        tf = self.transform(split, augment)
        bad = None
        n = len(self.samples)
        for attempt in range(16):
            i = (index + attempt * 7919) % n
            try:
                img = self._load(i)
            except Exception:  # noqa: BLE001 - PIL raises many types on broken files
                if bad is None:
                    bad = self.samples[i][0]
                if split != "train":
                    return None, self.samples[index][1], bad
                continue
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(sample_seed)
                x = tf(img)
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
