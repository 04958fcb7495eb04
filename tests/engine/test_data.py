"""bench.data: synthetic generation and cache, loaders, CIFAR and imagefolder readers, errors."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import write_cifar

from bench.data import DataBundle, DataError, TensorSplit, load_data, make_loader
from bench.data import synthetic
from bench.data.cache import cache_path
from bench.data.loader import crop_flip

ROOT = Path(__file__).resolve().parents[2]

CPU = torch.device("cpu")
N_TR, N_VA = 400, 100  # small synthetic sets keep the file fast


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("hpcache"))


@pytest.fixture(scope="module")
def syn(cache):
    return load_data("synthetic", 32, n_train=N_TR, n_val=N_VA, seed=0, cache_dir=cache)


def batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


# --- synthetic ---------------------------------------------------------------------------

def test_synthetic_shapes_dtypes_balance(syn):
    assert isinstance(syn, DataBundle) and syn.num_classes == 10 and syn.resolution == 32
    assert isinstance(syn.train, TensorSplit)
    assert syn.train.images.shape == (N_TR, 3, 32, 32) and syn.train.images.dtype == torch.uint8
    assert syn.val.images.shape == (N_VA, 3, 32, 32) and syn.val.labels.dtype == torch.int64
    assert torch.bincount(syn.train.labels, minlength=10).tolist() == [N_TR // 10] * 10
    assert torch.bincount(syn.val.labels, minlength=10).tolist() == [N_VA // 10] * 10
    assert len(syn.mean) == 3 and all(0.2 < s < 0.5 for s in syn.std)
    # images are not trivially constant and use the range
    assert syn.train.images.float().std() > 40


def test_synthetic_deterministic_and_seeded():
    a = synthetic.generate(50, 32, seed=3)
    b = synthetic.generate(50, 32, seed=3)
    c = synthetic.generate(50, 32, seed=4)
    v = synthetic.generate(50, 32, seed=3, split="val")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], v[0])  # train and val are different streams


def test_synthetic_prefix_property():
    small = synthetic.generate(30, 32, seed=1)[0]
    big = synthetic.generate(300, 32, seed=1)[0]  # crosses a chunk boundary
    assert torch.equal(small, big[:30])


def test_synthetic_resolution_64(cache):
    b = load_data("synthetic:60", 64, n_val=20, cache_dir=cache)
    assert b.train.images.shape == (60, 3, 64, 64) and b.resolution == 64
    x, y = next(iter(make_loader(b, "train", 20, device=CPU, epoch=0, seed=0)))
    assert x.shape == (20, 3, 64, 64) and x.dtype == torch.float32


def test_synthetic_spec_n_and_conflict(cache):
    b = load_data("synthetic:50", n_val=10, cache_dir=cache)
    assert len(b.train) == 50 and b.name == "synthetic:50"
    with pytest.raises(DataError, match="conflicting"):
        load_data("synthetic:50", n_train=60, cache_dir=cache)
    with pytest.raises(DataError, match="whole number"):
        load_data("synthetic:lots", cache_dir=cache)


def test_cache_hit_and_corrupt_regeneration(tmp_path):
    d = str(tmp_path)
    a = load_data("synthetic:40", n_val=20, cache_dir=d)
    path = cache_path(tmp_path, "train", 0, 40, 32)
    assert path.exists()
    assert not list(tmp_path.glob("*.tmp"))  # atomic write leaves no temporaries
    mtime = path.stat().st_mtime_ns
    b = load_data("synthetic:40", n_val=20, cache_dir=d)
    assert path.stat().st_mtime_ns == mtime  # hit: not rewritten
    assert torch.equal(a.train.images, b.train.images)
    path.write_bytes(b"\x00garbage")
    with pytest.warns(RuntimeWarning, match="corrupt"):
        c = load_data("synthetic:40", n_val=20, cache_dir=d)
    assert torch.equal(a.train.images, c.train.images)
    # the regenerated file is valid again: no warning the next time
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_data("synthetic:40", n_val=20, cache_dir=d)


def test_cache_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("HPBENCH_CACHE", str(tmp_path / "envcache"))
    load_data("synthetic:20", n_val=10)
    assert list((tmp_path / "envcache").glob("synthetic-v*-train-seed0-n20-r32.pt"))


# --- loader on TensorSplit ---------------------------------------------------------------

def test_train_loader_reproducible_per_seed_epoch(syn):
    kw = dict(device=CPU, seed=7, augment="light")
    a = batches(make_loader(syn, "train", 64, epoch=2, **kw))
    b = batches(make_loader(syn, "train", 64, epoch=2, **kw))
    c = batches(make_loader(syn, "train", 64, epoch=3, **kw))
    assert len(a) == N_TR // 64 == len(make_loader(syn, "train", 64, epoch=2, **kw))
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    assert not torch.equal(a[0][1], c[0][1])
    for x, y in a:  # drop_last: every batch full (and even)
        assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64


def test_train_loader_normalised_no_aug_matches_data(syn):
    (x, y), *_ = batches(make_loader(syn, "train", 100, device=CPU, epoch=0, seed=0, augment="none"))
    assert abs(float(x.mean())) < 0.3 and 0.7 < float(x.std()) < 1.3
    # recover the uint8 images and find them in the split
    mean = torch.tensor(syn.mean).view(1, 3, 1, 1)
    std = torch.tensor(syn.std).view(1, 3, 1, 1)
    raw = (x * std + mean).mul(255).round().to(torch.uint8)
    flat = syn.train.images.flatten(1)
    for img, label in zip(raw[:5], y[:5]):
        i = int((flat == img.flatten()).all(1).nonzero()[0])
        assert syn.train.labels[i] == label


def test_odd_train_batch_rejected(syn):
    with pytest.raises(ValueError, match="even"):
        make_loader(syn, "train", 63, device=CPU, epoch=0, seed=0)


def test_ddp_shards_disjoint_and_covering(syn):
    ws, bs = 3, 16
    seen = []
    for rank in range(ws):
        ld = make_loader(syn, "train", bs, device=CPU, epoch=1, seed=0, rank=rank, world_size=ws)
        assert len(ld) == (N_TR // ws) // bs  # same number of batches on every rank
        seen.append(set(ld.indices.tolist()))
    assert not (seen[0] & seen[1]) and not (seen[1] & seen[2]) and not (seen[0] & seen[2])
    # val: disjoint and covering, in order on each rank
    vals = [make_loader(syn, "val", 7, device=CPU, epoch=0, seed=0, rank=r, world_size=ws) for r in range(ws)]
    idx = [v.indices.tolist() for v in vals]
    assert sorted(sum(idx, [])) == list(range(N_VA))
    assert all(i == sorted(i) for i in idx)
    # world_size 1: distinct indices, drop_last
    ld = make_loader(syn, "train", 16, device=CPU, epoch=1, seed=0)
    assert len(set(ld.indices.tolist())) == (N_TR // 16) * 16


def test_val_loader_in_order_no_drop(syn):
    ld = make_loader(syn, "val", 32, device=CPU, epoch=5, seed=9, augment="full")
    out = batches(ld)
    assert len(ld) == len(out) == 4 and out[-1][0].shape[0] == N_VA - 96
    y = torch.cat([b[1] for b in out])
    assert torch.equal(y, syn.val.labels)
    # augment is ignored for val: identical to augment="none"
    ref = batches(make_loader(syn, "val", 32, device=CPU, epoch=0, seed=0, augment="none"))
    assert torch.equal(out[0][0], ref[0][0])


def test_device_copy_cached_on_bundle(syn):
    list(make_loader(syn, "val", 50, device=CPU, epoch=0, seed=0))
    first = syn._device_cache[("val", "cpu")]
    list(make_loader(syn, "val", 50, device=CPU, epoch=1, seed=0))
    assert syn._device_cache[("val", "cpu")] is first


def test_crop_flip_matches_reference():
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    off = torch.tensor([[0, 2], [3, 1]])
    flips = torch.tensor([False, True])
    out = crop_flip(x, off, flips, pad=2)
    xp = torch.nn.functional.pad(x, (2, 2, 2, 2))
    assert torch.equal(out[0], xp[0, :, 0:6, 2:8])
    assert torch.equal(out[1], xp[1, :, 3:9, 1:7].flip(-1))


def test_full_augment_reproducible(syn):
    kw = dict(device=CPU, epoch=0, seed=1, augment="full")
    a = next(iter(make_loader(syn, "train", 16, **kw)))
    b = next(iter(make_loader(syn, "train", 16, **kw)))
    light = next(iter(make_loader(syn, "train", 16, device=CPU, epoch=0, seed=1, augment="light")))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], light[1])
    assert not torch.equal(a[0], light[0])


def test_too_few_images_for_batch(syn):
    with pytest.raises(DataError, match="too few"):
        make_loader(syn, "train", 256, device=CPU, epoch=0, seed=0, world_size=2)


# --- CIFAR ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reads_fixture(tmp_path, name):
    root = write_cifar(tmp_path / name, name)
    b = load_data(f"{name}:{root}", 32)
    assert b.num_classes == (10 if name == "cifar10" else 100)
    assert b.train.images.shape == (100, 3, 32, 32) and b.val.images.shape == (20, 3, 32, 32)
    with open(root / ("data_batch_1" if name == "cifar10" else "train"), "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    assert torch.equal(b.train.images[0], torch.from_numpy(raw[b"data"][0].reshape(3, 32, 32)))
    assert b.train.labels[0] == raw[b"labels" if name == "cifar10" else b"fine_labels"][0]
    x, y = next(iter(make_loader(b, "train", 10, device=CPU, epoch=0, seed=0)))
    assert x.shape == (10, 3, 32, 32)


def test_cifar_resize_and_subset(tmp_path):
    root = write_cifar(tmp_path / "c10", "cifar10")
    b = load_data(f"cifar10:{root}", 48, n_train=30, n_val=10, seed=2)
    assert b.train.images.shape == (30, 3, 48, 48) and len(b.val) == 10
    b2 = load_data(f"cifar10:{root}", 48, n_train=30, n_val=10, seed=2)
    assert torch.equal(b.train.labels, b2.train.labels)


def test_cifar_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(f"cifar10:{tmp_path / 'nope'}")
    root = write_cifar(tmp_path / "c10", "cifar10")
    (root / "data_batch_3").unlink()
    with pytest.raises(DataError, match="missing data_batch_3"):
        load_data(f"cifar10:{root}")
    root = write_cifar(tmp_path / "c10b", "cifar10")
    (root / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match=r"corrupt CIFAR file .*test_batch"):
        load_data(f"cifar10:{root}")
    root = write_cifar(tmp_path / "c10c", "cifar10")
    with open(root / "data_batch_2", "wb") as fh:  # a pickle that would run code
        pickle.dump({b"data": print}, fh)
    with pytest.raises(DataError, match="corrupt CIFAR file"):
        load_data(f"cifar10:{root}")
    root = write_cifar(tmp_path / "c100", "cifar100")
    with pytest.raises(DataError, match="missing"):  # cifar100 folder read as cifar10
        load_data(f"cifar10:{root}")


# --- imagefolder ------------------------------------------------------------------------

def _write_folder(root, classes=("ant", "bee", "cat"), per_class=4, corrupt=True):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (20 + i, 28, 3), dtype=np.uint8)
                ext = "png" if i % 2 else "JPEG"
                Image.fromarray(arr).save(d / f"{c}_{i}.{ext}")
    if corrupt:
        (root / "train" / classes[0] / "broken.JPEG").write_bytes(b"\xff\xd8 truncated")
        (root / "val" / classes[1] / "broken.png").write_bytes(b"nope")
    return root


def test_imagefolder_loads_and_counts_corrupt(tmp_path):
    root = _write_folder(tmp_path / "imnet", per_class=5)
    b = load_data(f"imagefolder:{root}", 16)
    assert b.num_classes == 3 and b.class_names == ("ant", "bee", "cat")
    assert len(b.train) == 16 and len(b.val) == 16
    ld = make_loader(b, "train", 4, device=CPU, epoch=0, seed=0, augment="full")
    with pytest.warns(RuntimeWarning, match=r"1 unreadable image.*replaced.*epoch 0.*broken"):
        out = batches(ld)  # all 16 drawn: the broken one is met, replaced, counted
    assert len(out) == len(ld) == 4 and all(x.shape == (4, 3, 16, 16) for x, _ in out)
    assert ld.n_skipped == 1
    assert any("broken" in p for p in b.train.corrupt_files)
    # val: in order, no augmentation, broken file left out and counted
    vl = make_loader(b, "val", 5, device=CPU, epoch=0, seed=0)
    with pytest.warns(RuntimeWarning, match=r"1 unreadable image.*left out"):
        vb = batches(vl)
    assert sum(len(y) for _, y in vb) == 15 and vl.n_skipped == 1
    assert torch.cat([y for _, y in vb]).tolist() == sorted(torch.cat([y for _, y in vb]).tolist())


def test_imagefolder_reproducible_with_workers(tmp_path):
    root = _write_folder(tmp_path / "imnet", corrupt=False)
    b = load_data(f"imagefolder:{root}", 16)
    kw = dict(device=CPU, epoch=1, seed=3, augment="light")
    a = batches(make_loader(b, "train", 4, workers=0, **kw))
    c = batches(make_loader(b, "train", 4, workers=2, **kw))
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, c))
    shards = [make_loader(b, "train", 2, rank=r, world_size=2, **kw).indices.tolist() for r in range(2)]
    assert not set(shards[0]) & set(shards[1])


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_data(f"imagefolder:{tmp_path / 'missing'}")
    (tmp_path / "a" / "val" / "x").mkdir(parents=True)
    with pytest.raises(DataError, match="no train/ folder"):
        load_data(f"imagefolder:{tmp_path / 'a'}")
    root = _write_folder(tmp_path / "b", corrupt=False)
    (root / "val" / "dog").mkdir()
    with pytest.raises(DataError, match="differ.*only in val: \\['dog'\\]"):
        load_data(f"imagefolder:{root}")
    (root / "train" / "dog").mkdir()
    with pytest.raises(DataError, match="empty class.*dog"):
        load_data(f"imagefolder:{root}")


# --- specs ------------------------------------------------------------------------------

def test_unknown_scheme_lists_valid_ones():
    with pytest.raises(DataError, match="unknown data scheme 'imagenet'.*synthetic.*cifar10.*cifar100.*imagefolder"):
        load_data("imagenet:/data")
    with pytest.raises(DataError, match="needs a folder"):
        load_data("imagefolder")
    with pytest.raises(DataError):
        load_data("synthetic", resolution=4)
    assert issubclass(DataError, ValueError)


# --- reduced-size and on-device JPEG decoding ---------------------------------------------

def _big_jpeg(path, w=1200, h=900, seed=0):
    """A smooth (photo-like) JPEG large enough for DCT scaling to apply at 64 px."""
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, 12, 16, generator=g) * 255
    arr = torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic").clamp(0, 255).to(torch.uint8)
    Image.fromarray(arr[0].permute(1, 2, 0).numpy()).save(path, quality=90)
    return path


def test_train_box_has_torchvision_statistics():
    from scipy.stats import ks_2samp
    from torchvision.transforms import RandomResizedCrop

    from bench.data.crops import train_box

    for w, h in ((500, 375), (1000, 120)):  # typical, and one that often needs the fallback
        ours = [train_box(w, h, s)[0] for s in range(2000)]
        torch.manual_seed(0)
        ref = [RandomResizedCrop.get_params(torch.empty(3, h, w), (0.08, 1.0), (3 / 4, 4 / 3)) for _ in range(2000)]
        assert all(0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h for x0, y0, x1, y1 in ours)
        for f_ours, f_ref in ((lambda b: (b[2] - b[0]) * (b[3] - b[1]), lambda p: p[2] * p[3]),
                              (lambda b: (b[2] - b[0]) / (b[3] - b[1]), lambda p: p[3] / p[2]),
                              (lambda b: b[0], lambda p: p[1])):
            assert ks_2samp([f_ours(b) for b in ours], [f_ref(p) for p in ref]).pvalue > 1e-3
    flips = [train_box(500, 375, s)[1] for s in range(2000)]
    assert 0.45 < np.mean(flips) < 0.55


def test_draft_size_shrinks_only_while_the_crop_keeps_its_pixels(tmp_path):
    from PIL import Image

    from bench.data.crops import draft_size, val_box

    path = _big_jpeg(tmp_path / "big.jpg")
    cases = [((0, 0, 1200, 900), 64, 8), ((100, 100, 400, 400), 64, 4), ((0, 0, 300, 300), 224, 1),
             (val_box(1200, 900), 224, 2)]
    for box, out, expected_scale in cases:
        with Image.open(path) as img:
            img.draft("RGB", draft_size(1200, 900, box, out))
            scale = 1200 / img.size[0]
            assert (box[2] - box[0]) / scale >= out and (box[3] - box[1]) / scale >= out
        assert round(scale) == expected_scale, (box, out, scale)


def _jpeg_folder(root, per_class=4, size=(1200, 900)):
    for split in ("train", "val"):
        for c, name in enumerate(("a", "b")):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                _big_jpeg(root / split / name / f"{i}.JPEG", *size, seed=100 * c + i + (split == "val") * 50)
    return root


def test_reduced_decode_matches_full_decode(tmp_path):
    b = load_data(f"imagefolder:{_jpeg_folder(tmp_path / 'f')}", 64)
    for split, augment in (("train", "light"), ("val", "none")):
        ds = getattr(b, split)
        keys = [(i, 1000 + i, split, augment) for i in range(len(ds))]
        reduced = [ds[k] for k in keys]
        ds.draft = False
        full = [ds[k] for k in keys]
        for (xr, yr, _), (xf, yf, _) in zip(reduced, full):
            assert yr == yf and xr.shape == xf.shape == (3, 64, 64)
            assert (xr.float() - xf.float()).abs().mean() < 3  # the same crop, another downsampling filter


def test_device_decode_matches_cpu_decode_and_reports_bad_files(tmp_path):
    root = _jpeg_folder(tmp_path / "f", size=(320, 240))
    good = (root / "train" / "a" / "0.JPEG").read_bytes()
    (root / "train" / "a" / "trunc.JPEG").write_bytes(good[: len(good) // 2])  # header fine, data cut
    (root / "val" / "b" / "trunc.JPEG").write_bytes(good[: len(good) // 2])
    b = load_data(f"imagefolder:{root}", 32)
    for split, bs in (("train", 4), ("val", 3)):
        out = {}
        for decode in ("cpu", "device"):
            ld = make_loader(b, split, bs, device=CPU, epoch=0, seed=0, augment="light", decode=decode)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out[decode] = (batches(ld), ld.n_skipped)
            assert ld.n_skipped == 0 or any("unreadable" in str(w.message) for w in caught)
        (cpu, skipped_cpu), (dev, skipped_dev) = out["cpu"], out["device"]
        assert skipped_cpu == skipped_dev and (split == "train" or skipped_dev == 1)
        assert len(cpu) == len(dev)
        for (xc, yc), (xd, yd) in zip(cpu, dev):
            assert torch.equal(yc, yd) and xc.shape == xd.shape
            assert (xc - xd).abs().mean() < 0.1  # normalised units: the same crops and flips


def test_make_imagenet_like_is_seeded_and_imagenet_sized(tmp_path):
    from PIL import Image

    from bench.data import imagenet_like as gen

    a = gen.render(3, "train", 7, 10)
    assert a == gen.render(3, "train", 7, 10) and a != gen.render(4, "train", 7, 10)
    r = gen.make(tmp_path / "imnet", classes=2, train_per_class=6, val_per_class=2, seed=0)
    files = sorted((tmp_path / "imnet").rglob("*.JPEG"))
    assert r["images"] == len(files) == 16
    sizes = [Image.open(f).size for f in files]
    assert sum(max(s) == 500 for s in sizes) >= 8 and all(64 <= min(s) and max(s) <= 1000 for s in sizes)
    bytes_per_px = np.median([f.stat().st_size / (w * h) for f, (w, h) in zip(files, sizes)])
    assert 0.3 < bytes_per_px < 1.2  # ImageNet averages ~0.6-0.8 at quality ~90
    b = load_data(f"imagefolder:{tmp_path / 'imnet'}", 32)
    assert b.num_classes == 2 and len(b.train) == 12 and len(b.val) == 4


def test_region_decoder_returns_a_full_decodes_pixels(tmp_path):
    """scripts/region_decode.c (the bound scripts/bench_decode.py measures): exact pixels for any region,
    errors instead of crashes, and the same transform as the full decode (the script's --check)."""
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_decode.py"), "--check", str(tmp_path)],
                         capture_output=True, text=True)
    if out.returncode == 77:  # CI (.ci/run) installs gcc and libjpeg's headers and sets HPBENCH_REQUIRE_CC=1
        pytest.fail(out.stderr) if os.environ.get("HPBENCH_REQUIRE_CC") == "1" else pytest.skip(out.stderr.strip())
    assert out.returncode == 0, out.stdout + out.stderr


def test_perf_reports_loader_against_model(tmp_path, capsys):
    import json

    from bench.cli import main

    root = _jpeg_folder(tmp_path / "f", per_class=8, size=(320, 240))
    rc = main(["perf", "--model", "vitc_mini", "--batch-size", "4", "--steps", "1", "--rounds", "1",
               "--data", f"imagefolder:{root}", "--workers", "1", "--loader-batches", "2", "--json"])
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and r["decode"] == "auto" and r["workers"] == 1
    assert r["loader_img_per_s_per_worker"] > 0 and r["loader_img_per_s"] > 0 and r["model_img_per_s"] > 0
    assert r["bound"] == ("loader" if r["loader_img_per_s"] < r["model_img_per_s"] else "model")
    assert main(["perf", "--model", "vitc_mini", "--data", f"imagefolder:{tmp_path / 'nope'}"]) == 2
    assert "does not exist" in capsys.readouterr().err
