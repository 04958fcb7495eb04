"""Data specs (``synthetic[:N]``, ``cifar10:DIR``, ``cifar100:DIR``, ``imagefolder:DIR``,
``prepared:DIR``) without torch: parsed once, at the boundary, into a typed, canonical :class:`DataSpec`
(``bench.data`` loads it). The canonical string is the spec's identity: ``synthetic`` and
``synthetic:10000`` (its default size) are one data set, so one trial; ``prepared:DIR`` reads the
manifest's hash into it (``prepared:DIR#HASH12``), so two preparations of one folder are two data sets."""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from bench.core import manifest
from bench.core.errors import UserError

SCHEMES = ("synthetic", "cifar10", "cifar100", "imagefolder", "prepared")
USAGE = "synthetic, synthetic:N, cifar10:DIR, cifar100:DIR, imagefolder:DIR, prepared:DIR"
SYNTHETIC_TRAIN, SYNTHETIC_VAL = 10_000, 2_000
SYNTHETIC_MAX = 1_000_000  # train images: 3 GB of uint8 at 32 px, generated in memory
DECODES = ("auto", "cpu", "device")  # where make_loader decodes JPEGs: auto = the GPU on CUDA, else the CPU


# The python-pickle CIFAR folders: their files and keys (bench.data.cifar reads them).
CIFAR_LAYOUTS = {
    "cifar10": dict(train=[f"data_batch_{i}" for i in range(1, 6)], val=["test_batch"],
                    meta="batches.meta", label_key="labels", names_key="label_names", num_classes=10),
    "cifar100": dict(train=["train"], val=["test"], meta="meta",
                     label_key="fine_labels", names_key="fine_label_names", num_classes=100),
}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's


class DataError(UserError, ValueError):
    """A data problem caused by the user's input (bad spec, missing path, wrong layout,
    corrupt file).  The message names the problem and the path."""


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: ``scheme`` and ``folder`` (the folder schemes) or ``size`` (synthetic's
    train images); ``digest``, a prepared set's manifest hash (its first 12 hex digits). ``str()`` is
    its canonical form."""

    scheme: str
    folder: str | None = None
    size: int = SYNTHETIC_TRAIN
    digest: str | None = None

    def __str__(self) -> str:
        if self.scheme == "synthetic":
            return "synthetic" if self.size == SYNTHETIC_TRAIN else f"synthetic:{self.size}"
        return f"{self.scheme}:{self.folder}" + (f"#{self.digest}" if self.digest else "")

    def split_sizes(self) -> tuple[int, int] | None:
        """(train, val) images, where they are known without reading the images."""
        if self.scheme == "synthetic":
            return self.size, SYNTHETIC_VAL
        if self.scheme.startswith("cifar"):
            return 50_000, 10_000
        if self.scheme == "prepared" and not self.missing_folder():
            try:
                splits = manifest.read(self.folder)["splits"]
            except manifest.ManifestError:
                return None
            return splits["train"]["count"], splits["val"]["count"]
        return None

    def fixed_resolution(self) -> int | None:
        """The one resolution it trains at (a raw preparation on this machine), else None."""
        if self.scheme != "prepared" or self.missing_folder():
            return None
        try:
            m = manifest.read(self.folder)
        except manifest.ManifestError:
            return None
        return m["params"]["resolution"] if m["format"] == "raw" else None

    def missing_folder(self) -> str | None:
        """The folder it names if that is not a directory on this machine, else None."""
        return None if self.folder is None or Path(self.folder).is_dir() else self.folder

    def problems(self) -> list[str]:
        """What is wrong with the layout of the folder it names (present on this machine), read from
        names alone: missing CIFAR files, missing splits, splits without classes, empty classes. A file
        whose content is corrupt shows when it is read (bench train reads it at once)."""
        if self.folder is None or not Path(self.folder).is_dir():
            return []
        if self.scheme == "prepared":
            return manifest.problems(self.folder, self.digest)
        root = Path(self.folder)
        if self.scheme in CIFAR_LAYOUTS:
            lay = CIFAR_LAYOUTS[self.scheme]
            missing = [f for f in lay["train"] + lay["val"] + [lay["meta"]] if not (root / f).is_file()]
            return [f"{self}: {root} is not a {self.scheme} python folder: missing {', '.join(missing)}"] if missing else []
        out = []
        for split in ("train", "val"):
            d = root / split
            if not d.is_dir():
                out.append(f"{self}: no {split}/ folder in {root} (expected {root}/{split}/<class>/<image>)")
                continue
            classes = [e for e in os.scandir(d) if e.is_dir()]
            if not classes:
                out.append(f"{self}: {d} has no class folders")
            empty = sorted(c.name for c in classes if not any(f.name.lower().endswith(IMAGE_SUFFIXES)
                                                              for f in os.scandir(c.path)))
            if empty:
                out.append(f"{self}: {len(empty)} class folder(s) of {d} hold no images ({', '.join(empty[:3])}"
                           f"{', ...' if len(empty) > 3 else ''})")
        return out


def parse(spec) -> DataSpec:
    """'scheme[:arg]' (or a DataSpec) -> DataSpec; a one-line DataError for anything else."""
    if isinstance(spec, DataSpec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"empty data spec; valid: {USAGE}")
    scheme, sep, arg = spec.strip().partition(":")
    scheme = scheme.lower()
    if scheme not in SCHEMES:
        raise DataError(f"unknown data scheme {scheme!r} in {spec!r}; valid: {USAGE}")
    if scheme != "synthetic":
        if not arg:
            raise DataError(f"data spec {spec!r} needs a folder: {scheme}:DIR")
        if scheme == "prepared":
            return _prepared(arg)
        return DataSpec(scheme, os.path.normpath(os.path.expanduser(arg)))
    if not sep:
        return DataSpec("synthetic")
    try:
        size = int(arg.replace("_", ""))
    except ValueError:
        raise DataError(f"synthetic:N needs a whole number of train images, got {arg!r} in {spec!r}") from None
    if not 1 <= size <= SYNTHETIC_MAX:
        raise DataError(f"synthetic:N takes 1 to {SYNTHETIC_MAX:,} train images, got {size:,} in {spec!r}")
    return DataSpec("synthetic", size=size)


def _prepared(arg: str) -> DataSpec:
    """``prepared:DIR#HASH`` as it is (a stored trial's spec: the folder may be on another machine);
    ``prepared:DIR`` with the hash of the manifest there."""
    folder, sep, digest = arg.rpartition("#")
    if sep and len(digest) == manifest.HASH_CHARS and all(c in "0123456789abcdef" for c in digest):
        return DataSpec("prepared", os.path.normpath(os.path.expanduser(folder)), digest=digest)
    folder = os.path.normpath(os.path.expanduser(arg))
    if not Path(folder).is_dir():
        raise DataError(f"prepared:{folder}: no such folder on this machine (its manifest gives the data set's "
                        f"hash; to plan for a folder only the cluster has, give prepared:{folder}#HASH, the first "
                        f"{manifest.HASH_CHARS} digits of the hash bench data prepare printed)")
    try:
        m = manifest.read(folder)
    except manifest.ManifestError as e:
        raise DataError(str(e)) from None
    return DataSpec("prepared", folder, digest=m["hash"][:manifest.HASH_CHARS])


@functools.lru_cache(maxsize=256)
def canonical(spec) -> str:
    """The canonical string of a data spec (``synthetic:10_000`` -> ``synthetic``)."""
    return str(parse(spec))
