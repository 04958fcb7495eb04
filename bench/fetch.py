"""``bench data get cifar10|cifar100``: the official CIFAR python archive, through torchvision's
downloader (the archive's MD5 and every extracted file's MD5 verified), into the folder a bare
``--data cifar10`` reads (:func:`bench.core.dataspec.default_folder`). ``--archive FILE`` takes a copy
already on disk instead of the network, verified the same way."""
from __future__ import annotations

import shutil
from pathlib import Path

from bench.core import dataspec
from bench.core.errors import UserError

GETTABLE = ("cifar10", "cifar100")


def register(dsub) -> None:
    p = dsub.add_parser("get", help="download CIFAR-10/100 (checksums verified) where --data cifar10 reads it",
                        description=__doc__)
    p.add_argument("name", choices=GETTABLE, help="the data set")
    p.add_argument("--root", help=f"the folder to put it in (default: {dataspec.data_root()}; $HPBENCH_DATA)")
    p.add_argument("--archive", help="a local copy of the official archive (e.g. cifar-10-python.tar.gz) to verify "
                                     "and unpack instead of downloading")
    p.set_defaults(func=run)


def run(args) -> int:
    folder = get(args.name, Path(args.root) if args.root else dataspec.data_root(), args.archive)
    spec = args.name if args.root is None else f"{args.name}:{folder}"
    print(f"{args.name}: verified in {folder}; train on it with --data {spec} (or {spec}:N for N train images)")
    return 0


def get(name: str, root: Path, archive: str | None = None, **source) -> Path:
    """Download (or take ``archive``), verify and unpack; returns the data folder. ``source`` overrides
    torchvision's ``url``, ``filename``, ``tgz_md5``, ``train_list``, ``test_list``, ``meta`` (tests)."""
    from torchvision.datasets import CIFAR10, CIFAR100
    from torchvision.datasets.utils import check_integrity

    cls = {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]
    cls = type(cls.__name__, (cls,), source) if source else cls
    ds = cls.__new__(cls)  # download() only: the data is read by bench.data.cifar's safe unpickler
    ds.root = str(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        if archive:
            src = Path(archive).expanduser()
            if not src.is_file():
                raise UserError(f"--archive {archive}: no such file (the official {ds.filename})")
            if src.resolve() != (root / ds.filename).resolve():
                shutil.copyfile(src, root / ds.filename)
            if not check_integrity(str(root / ds.filename), ds.tgz_md5):
                raise RuntimeError("File not found or corrupted.")
        ds.download()  # skips the network when the archive there has the official MD5
    except OSError as e:  # URLError is an OSError: offline, refused, not found
        raise UserError(f"bench data get {name}: cannot fetch {ds.url} into {root}: {e} (without a network, pass "
                        f"--archive with a copy of {ds.filename})") from None
    except RuntimeError as e:  # torchvision: "File not found or corrupted."
        raise UserError(f"bench data get {name}: {archive or root / ds.filename} does not have the official MD5 "
                        f"{ds.tgz_md5} ({e}); fetch the official {ds.filename} again") from None
    if not ds._check_integrity():
        raise UserError(f"bench data get {name}: the files unpacked in {root / ds.base_folder} do not have their "
                        f"official MD5s; delete the folder and fetch again")
    return root / ds.base_folder
