"""Images/s per core of the imagefolder transforms: reduced-size JPEG decoding (draft) vs full-size,
and region decoding (``scripts/region_decode.c``) as the bound on what skipping pixels can save.

One process, one thread: each round decodes and transforms the same images (train:
RandomResizedCrop + flip; val: resize + centre crop) with ``draft=True``, with ``draft=False``
and, where a C compiler and libjpeg's headers are present, with the region decoder; the arms
alternate so that machine load falls on all of them, and the median round counts.  Also
printed: the share of images the draft shrinks at all (the crop must span >= 2R source pixels
each way for DCT scaling by 1/2), and the largest pixel difference between the region arm's
output and the full decode's (the same transform, so at most 1 from rounding).

    python -m bench.data.imagenet_like /tmp/imnet --classes 10 --train-per-class 30 --val-per-class 10
    python scripts/bench_decode.py /tmp/imnet --res 224 --rounds 7 [--json]
    python scripts/bench_decode.py --check DIR   # the region decoder's pixels against a full decode
                                                 # (exit 0 equal, 1 not, 77 when it cannot be built)
"""
from __future__ import annotations

import argparse
import ctypes
import io
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.data import load_data
from bench.data.crops import draft_size, train_box, val_box
from bench.data.loader import mix_seed

REGION_SOURCE = Path(__file__).with_name("region_decode.c")


def build_region_decoder(out_dir: str | None = None):
    """The compiled region decoder (a ctypes function), or the reason it cannot be built."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None, "no C compiler (cc) on PATH"
    lib = Path(out_dir or tempfile.mkdtemp(prefix="region-decode-")) / "region_decode.so"
    built = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(lib), str(REGION_SOURCE), "-ljpeg"],
                           capture_output=True, text=True)
    if built.returncode:
        return None, f"cannot build {REGION_SOURCE.name} (needs libjpeg's headers, e.g. libjpeg-dev): " \
                     f"{built.stderr.strip().splitlines()[-1] if built.stderr.strip() else built.returncode}"
    fn = ctypes.CDLL(str(lib)).region_decode
    fn.argtypes = [ctypes.c_char_p, ctypes.c_ulong] + [ctypes.c_int] * 4 + [ctypes.c_void_p, ctypes.c_char_p]
    fn.restype = ctypes.c_int
    return fn, None


def region_item(dataset, key, decode) -> torch.Tensor:
    """``dataset[key]``'s image, decoding only the crop box plus the resize filter's support."""
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor

    i, sample_seed, split, _ = key
    path, r = dataset.samples[i][0], dataset.resolution
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as img:  # the header only
        w, h = img.size
    box, flip = train_box(w, h, sample_seed) if split == "train" else (val_box(w, h), False)
    mx, my = math.ceil((box[2] - box[0]) / r) + 1, math.ceil((box[3] - box[1]) / r) + 1  # bilinear support
    x0, y0 = max(0, math.floor(box[0]) - mx), max(0, math.floor(box[1]) - my)
    x1, y1 = min(w, math.ceil(box[2]) + mx), min(h, math.ceil(box[3]) + my)
    pixels, error = np.empty((y1 - y0, x1 - x0, 3), np.uint8), ctypes.create_string_buffer(200)
    if decode(data, len(data), x0, y0, x1, y1, pixels.ctypes.data, error):
        raise OSError(f"{path}: {error.value.decode()}")
    out = Image.fromarray(pixels).resize((r, r), Image.BILINEAR,
                                         box=(box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0))
    if flip:
        out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return pil_to_tensor(out)


def rate(item, keys) -> float:
    tic = time.perf_counter()
    for k in keys:
        item(k)
    return len(keys) / (time.perf_counter() - tic)


def reduced_fraction(dataset, keys, resolution: int) -> float:
    """Share of the images whose decode ``draft`` shrinks (PIL's rule: scale s in 8, 4, 2, 1 with
    s <= min(w // rw, h // rh) for the requested size (rw, rh))."""
    from PIL import Image

    n = 0
    for i, seed, split, _ in keys:
        with Image.open(dataset.samples[i][0]) as img:
            w, h = img.size
        box = train_box(w, h, seed)[0] if split == "train" else val_box(w, h)
        rw, rh = draft_size(w, h, box, resolution)
        n += min(w // rw, h // rh) >= 2
    return n / len(keys)


def measure(root: str, resolution: int, rounds: int, n: int | None, region: bool = True) -> dict:
    torch.set_num_threads(1)
    bundle = load_data(f"imagefolder:{root}", resolution)
    decode, why = build_region_decoder() if region else (None, "not asked for")
    out = dict(resolution=resolution, rounds=rounds, region_decoder=why or "built")

    for split, augment in (("train", "light"), ("val", "none")):
        ds = getattr(bundle, split)
        count = min(n or len(ds), len(ds))
        keys = [(i, mix_seed(0, i), split, augment) for i in range(count)]

        def with_draft(flag):
            def item(k):
                ds.draft = flag
                return ds[k][0]
            return item

        arms = dict(reduced=with_draft(True), full=with_draft(False))
        if decode is not None:
            arms["region"] = lambda k: region_item(ds, k, decode)
        runs = {name: [] for name in arms}
        for r in range(rounds + 1):  # round 0 warms the page cache
            for name, item in arms.items():
                v = rate(item, keys)
                if r:
                    runs[name].append(v)
        med = {name: statistics.median(v) for name, v in runs.items()}
        s = dict(images=count, reduced_img_s=med["reduced"], full_img_s=med["full"],
                 ratio=med["reduced"] / med["full"], reduced_fraction=reduced_fraction(ds, keys, resolution),
                 reduced_runs=runs["reduced"], full_runs=runs["full"])
        if decode is not None:
            diff = max(int((arms["full"](k).int() - arms["region"](k).int()).abs().max()) for k in keys)
            s.update(region_img_s=med["region"], region_ratio=med["region"] / med["full"],
                     region_runs=runs["region"], region_max_pixel_diff=diff)
        out[split] = s
    return out


def _smooth_jpeg(path: Path, w: int, h: int, seed: int) -> Path:
    """A smooth (photo-like) JPEG of odd size (partial iMCUs at the edges)."""
    from PIL import Image

    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, 12, 16, generator=g) * 255
    arr = torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic").clamp(0, 255).to(torch.uint8)
    Image.fromarray(arr[0].permute(1, 2, 0).numpy()).save(path, quality=90)
    return path


def check(folder: Path) -> list[str]:
    """What differs between the region decoder and a full decode (empty: nothing): exact pixels for any
    region of an RGB and a greyscale JPEG, errors instead of crashes, and the same transform as the
    imagefolder loader's full decode. Raises RuntimeError when the decoder cannot be built."""
    from PIL import Image

    decode, why = build_region_decoder(str(folder))
    if decode is None:
        raise RuntimeError(why)
    bad = []
    rgb = _smooth_jpeg(folder / "rgb.jpg", 613, 419, seed=3)
    Image.open(rgb).convert("L").save(folder / "gray.jpg", quality=90)
    for path in (rgb, folder / "gray.jpg"):
        data = path.read_bytes()
        full = np.asarray(Image.open(path).convert("RGB"))
        h, w = full.shape[:2]
        rng = np.random.default_rng(0)
        boxes = [(0, 0, w, h), (0, 0, 16, 16), (16, 32, 48, 64), (w - 5, h - 3, w, h), (1, 1, 2, 2)]
        boxes += [tuple(int(v) for v in (x0, y0, rng.integers(x0 + 1, w + 1), rng.integers(y0 + 1, h + 1)))
                  for x0, y0 in zip(rng.integers(0, w - 1, 20), rng.integers(0, h - 1, 20))]
        for x0, y0, x1, y1 in boxes:
            out, err = np.empty((y1 - y0, x1 - x0, 3), np.uint8), ctypes.create_string_buffer(200)
            if decode(data, len(data), x0, y0, x1, y1, out.ctypes.data, err) != 0:
                bad.append(f"{path.name} {(x0, y0, x1, y1)}: {err.value.decode()}")
            elif not np.array_equal(out, full[y0:y1, x0:x1]):
                bad.append(f"{path.name} {(x0, y0, x1, y1)}: other pixels than the full decode")
    out, err = np.empty((8, 8, 3), np.uint8), ctypes.create_string_buffer(200)
    if decode(data, len(data), w - 4, 0, w + 4, 8, out.ctypes.data, err) != -1 or b"outside" not in err.value:
        bad.append("a box outside the image is not an error")
    if decode(data[:40], 40, 0, 0, 8, 8, out.ctypes.data, err) != -1 or not err.value:
        bad.append("a truncated file is not an error")
    root = folder / "f"
    for split in ("train", "val"):
        for c, name in enumerate(("a", "b")):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(2):
                _smooth_jpeg(root / split / name / f"{i}.JPEG", 500, 375, seed=100 * c + i + (split == "val") * 50)
    b = load_data(f"imagefolder:{root}", 64)
    for split, augment in (("train", "light"), ("val", "none")):
        ds = getattr(b, split)
        ds.draft = False
        for k in [(i, 1000 + i, split, augment) for i in range(len(ds))]:
            diff = int((region_item(ds, k, decode).int() - ds[k][0].int()).abs().max())
            if diff > 1:
                bad.append(f"{split} item {k[0]}: the transform differs by {diff} from the loader's")
    return bad


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", nargs="?", help="an imagefolder (DIR/train/<class>/*, DIR/val/<class>/*)")
    p.add_argument("--check", metavar="DIR", type=Path, help="check the region decoder in DIR (scratch) and exit")
    p.add_argument("--res", type=int, default=224)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--images", type=int, help="images per split per round (default: all)")
    p.add_argument("--no-region", action="store_true", help="skip the region decoder")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.check:
        try:
            bad = check(a.check)
        except RuntimeError as e:
            print(f"region decoder not built: {e}", file=sys.stderr)
            return 77
        print("\n".join(bad) or "region decoder: the full decode's pixels", file=sys.stderr if bad else sys.stdout)
        return 1 if bad else 0
    if not a.root:
        p.error("give an imagefolder, or --check DIR")
    r = measure(a.root, a.res, a.rounds, a.images, region=not a.no_region)
    if a.json:
        print(json.dumps(r))
        return 0
    for split in ("train", "val"):
        s = r[split]
        print(f"{split:5s} @ {a.res}px, {s['images']} images, median of {a.rounds}: reduced {s['reduced_img_s']:7.1f} "
              f"img/s/core, full {s['full_img_s']:7.1f} img/s/core, ratio {s['ratio']:.2f} "
              f"({100 * s['reduced_fraction']:.0f}% of the images decoded smaller)")
        if "region_img_s" in s:
            print(f"{'':5s}   region {s['region_img_s']:7.1f} img/s/core, ratio {s['region_ratio']:.2f} "
                  f"to full (largest pixel difference {s['region_max_pixel_diff']})")
    if r["region_decoder"] != "built":
        print(f"region decoding not measured: {r['region_decoder']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
