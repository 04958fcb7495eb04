"""The named sets: CIFAR as image folders, subsets (``:N``), path-free identity, ``bench data get``
(torchvision's verified downloader, against local files only) and Fashion-MNIST from Debian's package,
with a real training on it."""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import write_cifar

from bench.cli import main
from bench.core import dataspec
from bench.core.identity import TrialConfig, same_run, trial_key
from bench.data import DataError, load_data

FASHION = Path(dataspec.DEFAULT_FOLDERS["fashion-mnist"])


def _fashion_or_skip():
    if not FASHION.is_dir():  # .ci/run installs Debian's dataset-fashion-mnist and sets HPBENCH_REQUIRE_DATA=1
        if os.environ.get("HPBENCH_REQUIRE_DATA") == "1":
            pytest.fail(f"HPBENCH_REQUIRE_DATA=1 but {FASHION} is missing (apt-get install dataset-fashion-mnist)")
        pytest.skip(f"{FASHION} missing (apt-get install dataset-fashion-mnist)")


def write_cifar_folder(root: Path, per_class=(6, 2), classes=("cat", "dog", "ship")) -> Path:
    """CIFAR's image-folder layout: train/<class>/*.jpg and test/<class>/*.jpg, 32 x 32 JPEGs."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / split / c / f"{i:04d}.jpg",
                                                                                        quality=75)
    return root


def test_a_subset_is_canonical_balanced_and_validates_on_a_fifth(tmp_path):
    root = write_cifar_folder(tmp_path / "c10", per_class=(10, 4))
    spec = dataspec.parse(f"cifar10:{root}:15")
    assert str(spec) == f"cifar10:{root}#{spec.digest}:15" and len(spec.digest) == dataspec.FP_CHARS
    assert dataspec.parse(f"cifar10:{root}:1_5") == spec == dataspec.parse(str(spec))
    assert spec.split_sizes() == (15, 3)  # what the plan's estimate counts
    b = load_data(spec, 32, cache_dir=tmp_path / "cache")
    assert b.train.images.shape == (15, 3, 32, 32) and len(b.val) == 3
    assert sorted(torch.bincount(b.train.labels).tolist()) == [5, 5, 5]
    assert b.class_names == ("cat", "dog", "ship") and b.num_classes == 3
    again = load_data(spec, 32, cache_dir=tmp_path / "cache")  # from the decoded cache: the same images
    assert torch.equal(again.train.images, b.train.images) and torch.equal(again.val.labels, b.val.labels)
    whole = dataspec.parse(f"cifar10:{root}")
    assert whole.size is None and whole.split_sizes() == (50_000, 10_000)


def test_the_folder_is_not_part_of_a_trials_identity(tmp_path):
    a = write_cifar_folder(tmp_path / "a")
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    cfg_a = TrialConfig("vitc_mini", "adamw", 0.064, 0.1, 2, data=f"cifar10:{a}:12")
    cfg_b = TrialConfig("vitc_mini", "adamw", 0.064, 0.1, 2, data=f"cifar10:{b}:12")
    assert cfg_a.data != cfg_b.data and trial_key(cfg_a, "c", 0) == trial_key(cfg_b, "c", 0)
    assert same_run(cfg_a.identity(), cfg_b)
    shutil.rmtree(a)  # a result stored on a machine whose folder is gone is still this trial's
    assert same_run({**cfg_a.identity(), "data": f"cifar10:{a}#{dataspec.parse(str(cfg_b.data)).digest}:12"}, cfg_b)
    write_cifar_folder(tmp_path / "c", per_class=(6, 3))  # other files: another data set
    cfg_c = TrialConfig("vitc_mini", "adamw", 0.064, 0.1, 2, data=f"cifar10:{tmp_path / 'c'}:12")
    assert trial_key(cfg_c, "c", 0) != trial_key(cfg_b, "c", 0)
    pickles = write_cifar(tmp_path / "py", "cifar10")
    assert dataspec.parse(f"cifar10:{pickles}").digest not in (None, dataspec.parse(str(cfg_b.data)).digest)


@pytest.mark.parametrize("spec, message", [
    ("cifar10:{root}:0", r"takes 1 to 50,000 train images"),
    ("cifar10:{root}:60000", r"takes 1 to 50,000 train images"),
    ("cifar10:{root}#123:10", r"not a fingerprint"),
    ("cifar10:{root}#aaaaaaaaaaaa:10", r"have fingerprint .*not aaaaaaaaaaaa"),
    ("fashion-mnist:{root}:70000", r"takes 1 to 60,000"),
])
def test_bad_named_specs_are_one_line(tmp_path, spec, message):
    root = write_cifar_folder(tmp_path / "c10")
    with pytest.raises(DataError, match=message):
        dataspec.parse(spec.format(root=root))


def test_folder_problems_name_the_file(tmp_path):
    root = write_cifar_folder(tmp_path / "c10")
    (root / "train" / "cat" / "0003.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(DataError, match=r"cannot read CIFAR image .*train/cat/0003.jpg"):
        load_data(f"cifar10:{root}", 32, cache_dir=tmp_path / "cache")
    shutil.rmtree(root / "test" / "dog")
    (root / "test" / "dog").mkdir()
    assert any("hold no images (dog)" in p for p in dataspec.parse(f"cifar10:{root}").problems())
    with pytest.raises(DataError, match=r"does not exist \(bench data get cifar10"):
        load_data(f"cifar10:{tmp_path / 'nowhere'}:10", 32)


def _serve(folder: Path) -> str:
    """A throwaway HTTP server on localhost serving ``folder`` (torchvision's downloader reads HTTP)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def _fake_archive(tmp_path: Path) -> dict:
    """A cifar-10-python.tar.gz of random images, and the torchvision source fields that verify it."""
    folder = write_cifar(tmp_path / "src" / "cifar-10-batches-py", "cifar10")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    md5 = lambda p: hashlib.md5(Path(p).read_bytes()).hexdigest()  # noqa: E731
    return dict(url=f"{_serve(tmp_path)}/cifar-10-python.tar.gz", tgz_md5=md5(archive),
                train_list=[[f"data_batch_{i}", md5(folder / f"data_batch_{i}")] for i in range(1, 6)],
                test_list=[["test_batch", md5(folder / "test_batch")]],
                meta={"filename": "batches.meta", "key": "label_names", "md5": md5(folder / "batches.meta")})


def test_get_verifies_and_unpacks_where_a_bare_spec_reads(tmp_path, monkeypatch):
    from bench import fetch

    monkeypatch.setenv("HPBENCH_DATA", str(tmp_path / "data"))
    source = _fake_archive(tmp_path)
    folder = fetch.get("cifar10", dataspec.data_root(), **source)  # torchvision's downloader, from localhost
    assert folder == Path(dataspec.default_folder("cifar10"))
    b = load_data("cifar10:40", 32)  # the bare spec reads what get put there
    assert len(b.train) == 40 and len(b.val) == 8
    (folder / "data_batch_2").write_bytes(b"tampered")  # a damaged file: get again re-unpacks the verified archive
    fetch.get("cifar10", dataspec.data_root(), **{**source, "url": "http://127.0.0.1:9/offline.tar.gz"})
    assert hashlib.md5((folder / "data_batch_2").read_bytes()).hexdigest() == source["train_list"][1][1]


def test_get_refuses_an_archive_that_is_not_the_official_one(tmp_path, capsys):
    bogus = tmp_path / "cifar-10-python.tar.gz"
    bogus.write_bytes(b"not the archive")
    rc = main(["data", "get", "cifar10", "--root", str(tmp_path / "d"), "--archive", str(bogus)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "does not have the official MD5 c58f30108f718f92721af3b95e74349a" in err
    assert main(["data", "get", "cifar10", "--root", str(tmp_path / "d"), "--archive", str(tmp_path / "no.tgz")]) == 2
    assert "--archive" in capsys.readouterr().err


def test_fashion_mnist_is_padded_grey_in_three_channels():
    _fashion_or_skip()
    spec = dataspec.parse("fashion-mnist:1000")
    assert spec.folder == str(FASHION) and spec.split_sizes() == (1000, 200)
    b = load_data(spec, 32)
    assert b.train.images.shape == (1000, 3, 32, 32) and len(b.val) == 200 and b.num_classes == 10
    assert torch.equal(b.train.images[:, 0], b.train.images[:, 2])  # grey in every channel
    assert b.train.images[:, :, :2].max() == 0 and b.train.images[:, :, :, -2:].max() == 0  # the 2 px of padding
    assert b.train.images.float().mean() > 40  # real garments, not blank
    assert torch.bincount(b.train.labels).tolist() == [100] * 10


@pytest.mark.slow
def test_a_mini_learns_fashion_mnist(tmp_path, capsys):
    """Real images in every CI run: vitc_mini, 2 epochs on 4,000 Fashion-MNIST images."""
    _fashion_or_skip()
    from bench.trial import run_trial

    cfg = TrialConfig("vitc_mini", "adamw", 0.064, 0.126, 2, data="fashion-mnist:4000", device="cpu")
    result = run_trial(cfg, tmp_path / "t")
    with capsys.disabled():  # the line CI's log shows: every CI run trains on real images
        print(f"\nreal images: vitc_mini on fashion-mnist:4000, 2 epochs: error {result['error']:.1f}% "
              f"(chance 90%; per epoch {[round(e['error'], 1) for e in result['curve']]}), {result['seconds']:.0f} s")
    errors = [e["error"] for e in result["curve"]]
    assert not result["diverged"] and result["error"] < 70 and errors[-1] < errors[0]  # chance is 90%
