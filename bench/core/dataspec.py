"""Data specs (``synthetic[:N]``, ``cifar10[:DIR][:N]``, ``cifar100[:DIR][:N]``,
``fashion-mnist[:DIR][:N]``, ``imagefolder:DIR``, ``prepared:DIR``) without torch: parsed once, at the
boundary, into a typed, canonical :class:`DataSpec` (``bench.data`` loads it).

The canonical string is what a trial trains on: ``synthetic`` and ``synthetic:10000`` (its default size)
are one data set, so one trial. The named sets (CIFAR, Fashion-MNIST) carry a fingerprint of the
folder's files (names and sizes: ``cifar10:DIR#FP:N``), and a trial's identity uses them without the
folder (:meth:`DataSpec.identity`): the same images unpacked elsewhere, on another machine, are the
same data set and resume the same trials; the official CIFAR-10 and a JPEG re-encoding of it are two.
``prepared:DIR`` reads the manifest's hash into it (``prepared:DIR#HASH12``)."""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from bench.core import manifest
from bench.core.errors import UserError

SCHEMES = ("synthetic", "cifar10", "cifar100", "fashion-mnist", "imagefolder", "prepared")
USAGE = ("synthetic[:N], cifar10[:DIR][:N], cifar100[:DIR][:N], fashion-mnist[:DIR][:N], imagefolder:DIR, "
         "prepared:DIR")
SYNTHETIC_TRAIN, SYNTHETIC_VAL = 10_000, 2_000
SYNTHETIC_MAX = 1_000_000  # train images: 3 GB of uint8 at 32 px, generated in memory
DECODES = ("auto", "cpu", "device")  # where make_loader decodes JPEGs: auto = the GPU on CUDA, else the CPU
FP_CHARS = 12  # hex digits of a named set's fingerprint

# The named sets: (train, test) images in full, and the folder a bare ``cifar10`` reads (torchvision's
# download folder under the data root, or where Debian's dataset-fashion-mnist puts its IDX files).
NAMED = {"cifar10": (50_000, 10_000), "cifar100": (50_000, 10_000), "fashion-mnist": (60_000, 10_000)}
DEFAULT_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python",
                   "fashion-mnist": "/usr/share/datasets/fashion-mnist"}
VAL_SHARE = 5  # a named set cut to N train images validates on N / 5 of its test images, as synthetic (10k / 2k)

# The python-pickle CIFAR folders: their files and keys (bench.data.cifar reads them).
CIFAR_LAYOUTS = {
    "cifar10": dict(train=[f"data_batch_{i}" for i in range(1, 6)], val=["test_batch"],
                    meta="batches.meta", label_key="labels", names_key="label_names", num_classes=10),
    "cifar100": dict(train=["train"], val=["test"], meta="meta",
                     label_key="fine_labels", names_key="fine_label_names", num_classes=100),
}
# CIFAR as image folders (train/<class>/*, test/<class>/*: the layout of image-folder copies of it)
FOLDER_SPLITS = {"train": "train", "val": "test"}
FASHION_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                 "val": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")  # torchvision's


def data_root() -> Path:
    """Where ``bench data get`` puts a named set: ``$HPBENCH_DATA``, else ``data/`` of the cache root."""
    if os.environ.get("HPBENCH_DATA"):
        return Path(os.environ["HPBENCH_DATA"]).expanduser()
    return Path(os.environ.get("HPBENCH_CACHE") or "~/.cache/hpbench").expanduser() / "data"


def default_folder(scheme: str) -> str:
    return os.path.normpath(data_root() / DEFAULT_FOLDERS[scheme])


def cifar_layout(folder) -> str | None:
    """'pickle' (the python folder), 'folder' (train/<class>, test/<class> images) or None."""
    root = Path(folder)
    if (root / "train").is_dir() and (root / "test").is_dir():
        return "folder"
    return "pickle" if any((root / f).exists() for lay in CIFAR_LAYOUTS.values() for f in lay["train"]) else None


@functools.lru_cache(maxsize=64)
def fingerprint(scheme: str, folder: str) -> str | None:
    """The first FP_CHARS hex digits of a hash of a named set's files (relative names and sizes), or
    None when the folder is not on this machine or lacks a file of its layout. Names and sizes, not bytes: cheap at every plan (60,000
    JPEGs in about half a second), and a re-encoding changes the sizes."""
    root = Path(folder)
    if not root.is_dir():
        return None
    if scheme == "fashion-mnist":
        files = [root / f for pair in FASHION_FILES.values() for f in pair]
    elif cifar_layout(root) == "folder":
        files = [Path(c.path) / f.name for split in FOLDER_SPLITS.values() if (root / split).is_dir()
                 for c in sorted(os.scandir(root / split), key=lambda e: e.name) if c.is_dir()
                 for f in sorted(os.scandir(c.path), key=lambda e: e.name) if f.name.lower().endswith(IMAGE_SUFFIXES)]
    else:
        lay = CIFAR_LAYOUTS[scheme]
        files = [root / f for f in lay["train"] + lay["val"] + [lay["meta"]]]
    if not files or not all(f.is_file() for f in files):
        return None  # not (yet) a data set: problems() says what is missing
    h = hashlib.sha1(scheme.encode())
    for f in files:
        h.update(f"{f.relative_to(root)}\0{f.stat().st_size}\n".encode())
    return h.hexdigest()[:FP_CHARS]


class DataError(UserError, ValueError):
    """A data problem caused by the user's input (bad spec, missing path, wrong layout,
    corrupt file).  The message names the problem and the path."""


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: ``scheme``; ``folder`` (the folder schemes); ``size``, the train images
    (synthetic's count; a named set's class-balanced subset, None for all of it); ``digest``, a prepared
    set's manifest hash or a named set's fingerprint. ``str()`` is its canonical form."""

    scheme: str
    folder: str | None = None
    size: int | None = SYNTHETIC_TRAIN
    digest: str | None = None

    def __str__(self) -> str:
        if self.scheme == "synthetic":
            return "synthetic" if self.size == SYNTHETIC_TRAIN else f"synthetic:{self.size}"
        return (f"{self.scheme}:{self.folder}" + (f"#{self.digest}" if self.digest else "")
                + (f":{self.size}" if self.scheme in NAMED and self.size else ""))

    def identity(self) -> str:
        """What a trial's identity holds: the canonical form, without the folder of a named set that has
        a fingerprint (the same files elsewhere are the same data)."""
        if self.scheme in NAMED and self.digest:
            return f"{self.scheme}#{self.digest}" + (f":{self.size}" if self.size else "")
        return str(self)

    def split_sizes(self) -> tuple[int, int] | None:
        """(train, val) images, where they are known without reading the images."""
        if self.scheme == "synthetic":
            return self.size, SYNTHETIC_VAL
        if self.scheme in NAMED:
            return subset_sizes(self.scheme, self.size)
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
        names alone: missing CIFAR / IDX files, missing splits, splits without classes, empty classes. A
        file whose content is corrupt shows when it is read (bench train reads it at once)."""
        if self.folder is None or not Path(self.folder).is_dir():
            return []
        if self.scheme == "prepared":
            return manifest.problems(self.folder, self.digest)
        root = Path(self.folder)
        if self.scheme == "fashion-mnist":
            missing = [f for pair in FASHION_FILES.values() for f in pair if not (root / f).is_file()]
            return [f"{self}: {root} is not a Fashion-MNIST folder: missing {', '.join(missing)} (Debian: apt-get "
                    f"install dataset-fashion-mnist)"] if missing else []
        if self.scheme in CIFAR_LAYOUTS and cifar_layout(root) != "folder":
            lay = CIFAR_LAYOUTS[self.scheme]
            missing = [f for f in lay["train"] + lay["val"] + [lay["meta"]] if not (root / f).is_file()]
            return [f"{self}: {root} is neither a {self.scheme} python folder (missing {', '.join(missing)}) nor "
                    f"train/<class>/ and test/<class>/ image folders"] if missing else []
        splits = FOLDER_SPLITS if self.scheme in CIFAR_LAYOUTS else {"train": "train", "val": "val"}
        out = []
        for split in splits.values():
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


def subset_sizes(scheme: str, size: int | None) -> tuple[int, int]:
    """(train, val) images of a named set cut to ``size`` train images (None: all of it)."""
    train, test = NAMED[scheme]
    return (train, test) if size is None else (size, min(test, max(1, size // VAL_SHARE)))


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
    if scheme in NAMED:
        return _named(scheme, arg, spec)
    if scheme != "synthetic":
        if not arg:
            raise DataError(f"data spec {spec!r} needs a folder: {scheme}:DIR")
        if scheme == "prepared":
            return _prepared(arg)
        return DataSpec(scheme, os.path.normpath(os.path.expanduser(arg)))
    if not sep:
        return DataSpec("synthetic")
    return DataSpec("synthetic", size=_size(arg, spec, SYNTHETIC_MAX, "synthetic:N"))


def _size(arg: str, spec: str, most: int, form: str) -> int:
    try:
        size = int(arg.replace("_", ""))
    except ValueError:
        raise DataError(f"{form} needs a whole number of train images, got {arg!r} in {spec!r}") from None
    if not 1 <= size <= most:
        raise DataError(f"{form} takes 1 to {most:,} train images, got {size:,} in {spec!r}")
    return size


def _named(scheme: str, arg: str, spec: str) -> DataSpec:
    """``scheme[:DIR][#FP][:N]``: the folder (default: :func:`default_folder`), its fingerprint (read from
    the folder when it is here; a stored spec's is kept) and a train subset."""
    folder, size = arg, None
    head, sep, tail = arg.rpartition(":")
    if tail.replace("_", "").isdigit() or (not sep and arg.replace("_", "").isdigit()):
        folder, size = (head if sep else ""), _size(tail, spec, NAMED[scheme][0], f"{scheme}[:DIR]:N")
    folder, sep, digest = folder.rpartition("#") if "#" in folder else (folder, "", "")
    folder = os.path.normpath(os.path.expanduser(folder)) if folder else default_folder(scheme)
    if sep and not (len(digest) == FP_CHARS and all(c in "0123456789abcdef" for c in digest)):
        raise DataError(f"{spec!r}: #{digest} is not a fingerprint ({FP_CHARS} hex digits, as bench prints it)")
    here = fingerprint(scheme, folder)
    if sep and here and here != digest:
        raise DataError(f"{spec!r}: the files in {folder} have fingerprint {here}, not {digest}: another copy of "
                        f"{scheme} (a different encoding or subset); give {scheme}:{folder} to use these files")
    if size == NAMED[scheme][0]:
        size = None  # all of it
    return DataSpec(scheme, folder, size=size, digest=digest or here)


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


@functools.lru_cache(maxsize=256)
def identity(spec) -> str:
    """The data part of a trial's identity (:meth:`DataSpec.identity`)."""
    return parse(spec).identity()


# What a reader is told a data set is (the report's data statement): by scheme, and by fingerprint for
# copies whose files differ from the official set's.
NAMES = {"synthetic": "procedural shapes × textures, not natural images", "cifar10": "CIFAR-10",
         "cifar100": "CIFAR-100", "fashion-mnist": "Fashion-MNIST (28→32 px, grey→3 channels)"}
KNOWN_COPIES = {"33b4b9891bd5": "CIFAR-10 (JPEG q75 re-encoding)"}  # docs/data.md


def describe(data: str) -> dict:
    """A stored trial's data spec (canonical or identity form: ``synthetic:2000``,
    ``cifar10:DIR#FP:N``, ``cifar10#FP:N``, ``imagefolder:DIR``) in words, without checking its files
    (only a prepared set's manifest is read, where it is on this machine): ``name`` (what the images
    are), ``spec`` (as stored), ``train`` / ``val`` (image counts, None where the spec does not give
    them) and ``where`` (a folder, or None)."""
    spec = str(data).strip()
    head = spec.split(":", 1)[0]
    scheme, _, digest = head.partition("#")
    rest = spec[len(head) + 1:] if ":" in spec else ""
    scheme = scheme.lower()
    out = dict(spec=spec, name=NAMES.get(scheme, spec), train=None, val=None, where=None)
    if scheme == "synthetic":
        size = int(rest.replace("_", "")) if rest.replace("_", "").isdigit() else SYNTHETIC_TRAIN
        return out | dict(train=size, val=SYNTHETIC_VAL)
    if scheme in NAMED:
        folder, size = rest, None
        tail = rest.rpartition(":")[2] if ":" in rest else rest
        if tail.replace("_", "").isdigit():
            size, folder = int(tail.replace("_", "")), rest[: -len(tail)].rstrip(":")
        folder, _, fp = folder.rpartition("#") if "#" in folder else (folder, "", "")
        digest = digest or fp
        train, val = subset_sizes(scheme, None if size == NAMED[scheme][0] else size)
        name = KNOWN_COPIES.get(digest, out["name"]) if scheme == "cifar10" else out["name"]
        return out | dict(name=name, train=train, val=val, where=folder or None)
    if scheme in ("imagefolder", "prepared"):
        folder = rest.rpartition("#")[0] if scheme == "prepared" and "#" in rest else rest
        label = "an image folder" if scheme == "imagefolder" else "a prepared set"
        sizes = DataSpec(scheme, folder).split_sizes() if scheme == "prepared" and folder else None
        return out | dict(name=f"{label} at {folder}", where=folder, train=sizes[0] if sizes else None,
                          val=sizes[1] if sizes else None)
    return out
