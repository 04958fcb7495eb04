"""bench data prepare and --data prepared:DIR: both formats against their sources, resume after a kill,
torn and partial folders, unreadable images, identity, and the checks before launch."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import write_cifar
from PIL import Image

from bench.cli import main
from bench.core import identity, manifest
from bench.core.dataspec import DataError, parse
from bench.data import load_data, make_loader
from bench.data.imagenet_like import make
from bench.prepare import prepare

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """An ImageNet-like folder (3 classes, 6 + 2 images each) with one unreadable image per split."""
    root = tmp_path_factory.mktemp("src") / "imnet"
    make(root, classes=3, train_per_class=6, val_per_class=2, seed=1)
    (root / "train" / "n00000000" / "broken.JPEG").write_bytes(b"\xff\xd8 truncated")
    (root / "val" / "n00000002" / "broken.JPEG").write_bytes(b"nope")
    return root


@pytest.fixture(scope="module")
def jpeg(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "jpeg"
    return out, prepare(f"imagefolder:{source}", out, "jpeg", dict(max_side=256, quality=90), shard_size=4)


def test_manifest_counts_lists_unreadable_and_checksums(jpeg):
    out, m = jpeg
    assert m["splits"]["train"]["count"] == 18 and m["splits"]["val"]["count"] == 6
    assert m["splits"]["train"]["per_class"] == [6, 6, 6] and m["splits"]["val"]["per_class"] == [2, 2, 2]
    assert len(m["unreadable"]) == 2 and all("broken" in p for p in m["unreadable"])  # counted, listed
    assert len(m["splits"]["train"]["shards"]) == 5  # 19 source images in chunks of 4
    import hashlib

    for f in m["files"]:
        assert hashlib.sha256((out / f["name"]).read_bytes()).hexdigest() == f["sha256"]
    assert json.loads((out / manifest.MANIFEST).read_text())["hash"] == m["hash"]


def test_jpeg_shards_are_smaller_images_with_imagefolders_transforms(source, jpeg):
    out, _ = jpeg
    a = load_data(f"imagefolder:{source}", 64)
    b = load_data(f"prepared:{out}", 64)
    assert b.class_names == a.class_names and b.mean == a.mean and b.std == a.std and len(b.train) == 18
    img = Image.open(b.train.open(0))
    assert max(img.size) == 256 and img.format == "JPEG"
    # val: the same resize and centre crop, of a smaller re-encoded image (the unreadable one left out)
    orig = [a.val[(i, 0, "val", "none")] for i in range(len(a.val))]
    orig = [(x, y) for x, y, bad in orig if bad is None]
    assert len(orig) == len(b.val) == 6
    for i, (xa, ya) in enumerate(orig):
        xb, yb, bad = b.val[(i, 0, "val", "none")]
        assert bad is None and yb == ya and xb.shape == xa.shape == (3, 64, 64)
        pool = torch.nn.functional.avg_pool2d  # the same region: equal but for the grain resampling moves
        assert (pool(xb.float()[None], 4) - pool(xa.float()[None], 4)).abs().mean() < 4
    batches = list(make_loader(b, "train", 6, device=CPU, epoch=0, seed=0, augment="light"))
    assert len(batches) == 3 and batches[0][0].shape == (6, 3, 64, 64)


def test_raw_arrays_are_the_resized_images_memory_mapped(source, tmp_path):
    out = tmp_path / "raw"
    m = prepare(f"imagefolder:{source}", out, "raw", dict(resolution=16), shard_size=5)
    assert m["splits"]["train"]["count"] == 18 and len(m["unreadable"]) == 2
    assert not list(out.glob("*.raw.npy"))  # the chunks were joined and removed
    b = load_data(f"prepared:{out}", 16)
    assert b.train.images.shape == (18, 3, 16, 16) and b.train.images.dtype == torch.uint8
    first = sorted((source / "train" / "n00000000").iterdir())[0]
    if "broken" in first.name:
        first = sorted((source / "train" / "n00000000").iterdir())[1]
    want = np.asarray(Image.open(first).convert("RGB").resize((16, 16), Image.BILINEAR)).transpose(2, 0, 1)
    assert any(np.array_equal(want, x) for x in b.train.images.numpy())
    x, y = next(iter(make_loader(b, "train", 6, device=CPU, epoch=0, seed=0)))
    assert x.shape == (6, 3, 16, 16) and x.dtype == torch.float32
    with pytest.raises(DataError, match="raw arrays at 16 px, so it trains at 16 px, not 32"):
        load_data(f"prepared:{out}", 32)


def test_raw_from_cifar_is_the_cifar_arrays(tmp_path):
    src = write_cifar(tmp_path / "c10", "cifar10")
    prepare(f"cifar10:{src}", tmp_path / "raw", "raw", dict(resolution=32), shard_size=30)
    a, b = load_data(f"cifar10:{src}", 32), load_data(f"prepared:{tmp_path / 'raw'}", 32)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.labels, b.val.labels)
    assert b.mean == a.mean and b.num_classes == 10


def test_resume_redoes_only_the_missing_and_torn_chunks(source, jpeg, tmp_path):
    import shutil

    _, whole = jpeg
    out = tmp_path / "again"
    shutil.copytree(jpeg[0], out)
    (out / manifest.MANIFEST).unlink()
    (out / "train-00001.jpg.bin").unlink()
    with open(out / "train-00002.jpg.bin", "r+b") as f:
        f.truncate(100)
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jpg.bin")}
    time.sleep(0.01)
    m = prepare(f"imagefolder:{source}", out, "jpeg", dict(max_side=256, quality=90), shard_size=4)
    assert m["hash"] == whole["hash"]
    now = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jpg.bin")}
    assert {n for n in now if now[n] != kept.get(n)} == {"train-00001.jpg.bin", "train-00002.jpg.bin"}


def test_prepare_into_a_folder_of_another_preparation_is_refused(source, jpeg):
    with pytest.raises(Exception, match="other data or parameters"):
        prepare(f"imagefolder:{source}", jpeg[0], "jpeg", dict(max_side=128, quality=90), shard_size=4)


@pytest.mark.slow
def test_a_killed_prepare_is_not_a_data_set_and_resumes(source, jpeg, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "bench.cli", "data", "prepare", f"imagefolder:{source}", "--out", str(out),
           "--shard-size", "1", "--workers", "1", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen(cmd, env=env, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / manifest.PROGRESS).is_file() or \
            len((out / manifest.PROGRESS).read_text().splitlines()) < 3:
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    assert not (out / manifest.MANIFEST).exists()
    with pytest.raises(DataError, match=r"the prepare did not finish \(\d+ chunk\(s\) done.*again to resume"):
        load_data(f"prepared:{out}", 32)
    done = len((out / manifest.PROGRESS).read_text().splitlines()) - 1
    r = subprocess.run(cmd[:-1], env=env, capture_output=True, text=True)  # with its progress bar
    assert r.returncode == 0, r.stderr
    m = json.loads((out / manifest.MANIFEST).read_text())
    assert m["splits"]["train"]["count"] == 18 and f"{26 - done}/{26 - done}" in r.stderr.replace(" ", "")
    assert m["params"] == jpeg[1]["params"]


def test_identity_holds_the_manifest_hash(source, jpeg, tmp_path):
    out, m = jpeg
    spec = parse(f"prepared:{out}")
    assert str(spec) == f"prepared:{out}#{m['hash'][:12]}"
    assert str(parse(str(spec))) == str(spec)  # a stored spec parses without the folder
    other = prepare(f"imagefolder:{source}", tmp_path / "q80", "jpeg", dict(max_side=256, quality=80), shard_size=4)
    assert other["hash"] != m["hash"]
    cfg = dict(model="vitc_mini", optimizer="adamw", lr=0.1, wd=0.1, epochs=1)
    a = identity.TrialConfig(**cfg, data=f"prepared:{out}")
    b = identity.TrialConfig(**cfg, data=f"prepared:{tmp_path / 'q80'}")
    assert identity.trial_key(a, "local", 0) != identity.trial_key(b, "local", 0)
    assert not identity.same_run(dict(vars(a), data=f"prepared:{out}#{other['hash'][:12]}"), a)
    with pytest.raises(DataError, match=r"now holds another preparation"):
        load_data(f"prepared:{out}#{other['hash'][:12]}", 32)


def test_torn_partial_and_missing_folders_are_one_line_before_launch(jpeg, tmp_path, capsys):
    import shutil

    torn = tmp_path / "torn"
    shutil.copytree(jpeg[0], torn)
    with open(torn / "val-00000.jpg.bin", "r+b") as f:
        f.truncate(10)
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / manifest.PROGRESS).write_text('{"plan": {}}\n')
    cases = [(torn, "1 file\\(s\\) missing or not of the size.*val-00000.jpg.bin.*torn copy"),
             (partial, "the prepare did not finish \\(0 chunk"),
             (tmp_path / "nowhere", "no such folder on this machine"),
             (tmp_path, "no manifest.json there: not a prepared data set")]
    for folder, want in cases:
        code = main(["run", "--study", "lr_wd", "--budget", "local", "--data", f"prepared:{folder}", "--dry-run",
                     "--results", str(tmp_path / "results")])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert __import__("re").search(want, err), err


def test_raw_resolution_is_checked_before_launch(source, tmp_path, capsys):
    prepare(f"imagefolder:{source}", tmp_path / "raw", "raw", dict(resolution=16), shard_size=50)
    code = main(["run", "--study", "lr_wd", "--budget", "local", "--data", f"prepared:{tmp_path / 'raw'}",
                 "--dry-run", "--results", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 2 and "holds raw arrays at 16 px" in err and "vitc_mini at 32 px" in err, err
    code = main(["run", "--study", "lr_wd", "--budget", "local", "--data", f"prepared:{tmp_path / 'raw'}",
                 "--res", "16", "--dry-run", "--results", str(tmp_path / "results")])
    assert code == 0, capsys.readouterr().err


def test_perf_times_the_prepared_loader(jpeg, capsys):
    rc = main(["perf", "--model", "vitc_mini", "--batch-size", "4", "--steps", "1", "--rounds", "1",
               "--data", f"prepared:{jpeg[0]}", "--workers", "1", "--loader-batches", "2", "--json"])
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and r["data"] == "prepared" and r["loader_img_per_s_per_worker"] > 0
