"""Calibrate the synthetic dataset: is it hard enough, and does it separate the models?

Trains four small models on ``synthetic`` with a minimal, self-contained loop (AdamW,
per-iteration cosine lr with a 1-epoch linear warmup, label smoothing 0.1, no mixup, light
augmentation through ``bench.data.make_loader``) and prints a table of final val errors
and seconds per epoch:

* vitp_mini   -- timm ViT, 32 px, patch 8, dim 64, depth 6, 2 heads, mlp 3
* vitc_mini   -- same, depth 5, conv stem 3x(3x3 s2 conv+BN+ReLU: 16, 32, 64) + 1x1 conv
* convnet     -- 3 stages of 3x3 conv-BN-ReLU (32/64/128 channels, 2x2 max-pool between), pool, linear
* linear      -- one Linear on the flattened normalised pixels

The models come from ``bench.models`` (timm registry names) when it provides them, and
are built here otherwise.  Targets (10 epochs, batch 128, good lr): vitp_mini < 40 %
error, vitc_mini and convnet below vitp_mini, linear > 60 % (near chance, 90 %).

    python scripts/calibrate_synthetic.py --epochs 10 --lrs 1e-3,3e-3 --threads 2
    python scripts/calibrate_synthetic.py --models vitp_mini,linear --knobs '{"n_strokes": 4}'
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing


def conv_stem(channels=(16, 32, 64), embed_dim=64):
    class ConvStem(nn.Module):
        def __init__(self, img_size=32, patch_size=8, in_chans=3, embed_dim=embed_dim, **_):
            super().__init__()
            layers, c_in = [], in_chans
            for c in channels:
                layers += [nn.Conv2d(c_in, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_in = c
            layers.append(nn.Conv2d(c_in, embed_dim, 1, bias=True))
            self.proj = nn.Sequential(*layers)
            self.img_size = (img_size, img_size)
            self.patch_size = (patch_size, patch_size)
            self.grid_size = (img_size // patch_size, img_size // patch_size)
            self.num_patches = self.grid_size[0] * self.grid_size[1]

        def feat_ratio(self, as_scalar=True):
            return self.patch_size[0]

        def forward(self, x):
            return self.proj(x).flatten(2).transpose(1, 2)

    return ConvStem


def build(name: str, num_classes: int = 10, res: int = 32) -> nn.Module:
    try:  # the project's registered versions, when they exist
        import timm

        import bench.models  # noqa: F401

        if name in ("vitp_mini", "vitc_mini") and name in timm.list_models(name):
            return timm.create_model(name, num_classes=num_classes)
    except Exception:  # noqa: BLE001
        pass
    from functools import partial

    from timm.models.vision_transformer import VisionTransformer

    norm = partial(nn.LayerNorm, eps=1e-6)
    if name == "vitp_mini":
        return VisionTransformer(img_size=res, patch_size=8, embed_dim=64, depth=6, num_heads=2, mlp_ratio=3,
                                 class_token=True, norm_layer=norm, num_classes=num_classes)
    if name == "vitc_mini":
        return VisionTransformer(img_size=res, patch_size=8, embed_dim=64, depth=5, num_heads=2, mlp_ratio=3,
                                 class_token=True, norm_layer=norm, num_classes=num_classes,
                                 embed_layer=conv_stem())
    if name == "convnet":
        layers, c_in = [], 3
        for i, c in enumerate((32, 64, 128)):
            layers += [nn.Conv2d(c_in, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if i < 2:
                layers.append(nn.MaxPool2d(2))
            c_in = c
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))
    if name == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * res * res, num_classes))
    raise SystemExit(f"unknown model {name!r}")


def param_groups(model: nn.Module, wd: float):
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


@torch.no_grad()
def evaluate(model, bundle, device, batch_size=500) -> float:
    from bench.data import make_loader

    model.eval()
    wrong = total = 0
    for x, y in make_loader(bundle, "val", batch_size, device=device, epoch=0, seed=0):
        wrong += (model(x).argmax(1) != y).sum()
        total += len(y)
    return 100.0 * float(wrong) / total


def train(name, bundle, *, lr, wd, epochs, batch_size, seed, augment, device, log=False):
    from bench.data import make_loader

    torch.manual_seed(seed)
    model = build(name, bundle.num_classes, bundle.resolution).to(device)
    opt = torch.optim.AdamW(param_groups(model, wd), lr=lr, betas=(0.9, 0.999))
    steps_per_epoch = len(make_loader(bundle, "train", batch_size, device=device, epoch=0, seed=seed))
    total, warm = epochs * steps_per_epoch, steps_per_epoch
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    step, t0, curve = 0, time.perf_counter(), []
    for epoch in range(epochs):
        model.train()
        for x, y in make_loader(bundle, "train", batch_size, device=device, epoch=epoch, seed=seed,
                                augment=augment):
            f = (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / (total - warm)))
            for g in opt.param_groups:
                g["lr"] = lr * f
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        if log:
            curve.append(round(evaluate(model, bundle, device), 1))
            print(f"  {name} lr {lr:.0e} epoch {epoch}: val err {curve[-1]} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    secs = time.perf_counter() - t0
    err = evaluate(model, bundle, device)
    if not math.isfinite(loss.item()):
        err = 100.0 * (1 - 1 / bundle.num_classes)
    return err, secs / epochs, curve


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="vitp_mini,vitc_mini,convnet,linear")
    ap.add_argument("--lrs", default="1e-3,3e-3", help="AdamW lrs for batch 128 (comma-separated)")
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--n-train", type=int, default=10_000)
    ap.add_argument("--n-val", type=int, default=2_000)
    ap.add_argument("--resolution", type=int, default=32)
    ap.add_argument("--augment", default="light")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--knobs", default="", help="JSON dict of synthetic generator knobs (bypasses the cache)")
    ap.add_argument("--curve", action="store_true", help="also print the val error after every epoch")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")

    from bench.data import DataBundle, TensorSplit, load_data, synthetic
    from bench.data.core import channel_stats

    t0 = time.perf_counter()
    if args.knobs:
        knobs = json.loads(args.knobs)
        tr = synthetic.generate(args.n_train, args.resolution, seed=args.seed, split="train", **knobs)
        va = synthetic.generate(args.n_val, args.resolution, seed=args.seed, split="val", **knobs)
        mean, std = channel_stats(tr[0])
        bundle = DataBundle("synthetic*", 10, args.resolution, TensorSplit(*tr), TensorSplit(*va), mean, std)
    else:
        bundle = load_data("synthetic", args.resolution, n_train=args.n_train, n_val=args.n_val,
                           seed=args.seed, cache_dir=args.cache_dir)
    gen_s = time.perf_counter() - t0
    print(f"data: {bundle.name} {len(bundle.train)}+{len(bundle.val)} images at {args.resolution}px, "
          f"loaded/generated in {gen_s:.1f} s ({args.threads} threads); knobs={args.knobs or 'defaults'}",
          flush=True)
    lrs = [float(v) for v in args.lrs.split(",")]
    print(f"{'model':<10} {'lr':>7} {'err %':>6} {'s/epoch':>8}  curve", flush=True)
    for name in args.models.split(","):
        for lr in lrs:
            err, spe, curve = train(name, bundle, lr=lr, wd=args.wd, epochs=args.epochs,
                                    batch_size=args.batch_size, seed=args.seed, augment=args.augment,
                                    device=device, log=args.curve)
            print(f"{name:<10} {lr:>7.0e} {err:>6.1f} {spe:>8.1f}  {curve if curve else ''}", flush=True)


if __name__ == "__main__":
    main()
