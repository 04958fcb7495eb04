"""Check the synthetic dataset's difficulty, and nothing else: no criterion says which model wins.

Criteria (all must hold; the README lists the measured values):

1. a linear probe on the pixels stays near chance: error >= 80 % (chance 90 %), so the class is
   not in the pixel statistics;
2. a small convnet learns it: error < 5 %, so the labels are learnable from local features;
3. both ViT minis end well below chance within the local budget: best error <= 45 % (half of
   chance), read from the calibration record of ``bench calibrate`` (the real engine, at the
   budget's epochs and calibrated lrs).

The two probes train here with bench's own recipe pieces (timm's AdamW with pycls's decay groups,
the per-iteration cosine schedule, label smoothing 0.1, light augmentation), 10 epochs at batch 128.

    python scripts/calibrate_synthetic.py --record results/reference/calibration/lr_wd_local.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from bench import recipe  # noqa: E402
from bench.data import load_data, make_loader  # noqa: E402

LINEAR_MIN, CONVNET_MAX, VIT_MAX = 80.0, 5.0, 45.0


def probe(name: str, num_classes: int, res: int) -> nn.Module:
    """``linear``: one Linear on the pixels; ``convnet``: 3 conv-BN-ReLU stages (32/64/128), pool, linear."""
    if name == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * res * res, num_classes))
    layers, c_in = [], 3
    for i, c in enumerate((32, 64, 128)):
        layers += [nn.Conv2d(c_in, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        layers += [nn.MaxPool2d(2)] if i < 2 else []
        c_in = c
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))


@torch.no_grad()
def evaluate(model: nn.Module, bundle) -> float:
    model.eval()
    wrong = total = 0
    for x, y in make_loader(bundle, "val", 500, device=torch.device("cpu"), epoch=0, seed=0):
        wrong += int((model(x).argmax(1) != y).sum())
        total += len(y)
    return 100.0 * wrong / total


def train(name: str, bundle, lr: float, epochs: int, batch: int = 128, seed: int = 0) -> float:
    """Val error (%) after ``epochs`` of the light recipe; ``lr`` is per batch 2048, as everywhere."""
    torch.manual_seed(seed)
    model = probe(name, bundle.num_classes, bundle.resolution)
    light = recipe.RECIPES["light"]
    steps = len(make_loader(bundle, "train", batch, device=torch.device("cpu"), epoch=0, seed=seed))
    opt = recipe.build_optimizer(model, "adamw", recipe.scaled_lr(lr, batch), 0.05)
    sched = recipe.build_scheduler(opt, light, recipe.scaled_lr(lr, batch), epochs, steps)
    loss_fn = recipe.build_loss(light, None)
    step = 0
    for epoch in range(epochs):
        model.train()
        for x, y in make_loader(bundle, "train", batch, device=torch.device("cpu"), epoch=epoch, seed=seed,
                                augment=light.augment):
            sched.step_update(step)
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
    return evaluate(model, bundle)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", help="calibration record (bench calibrate) holding the ViT minis' errors")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lrs", default="0.016,0.048", help="AdamW lrs per batch 2048 (1e-3 and 3e-3 at batch 128)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    bundle = load_data("synthetic", 32)
    checks = []
    for name, ok in (("linear", lambda e: e >= LINEAR_MIN), ("convnet", lambda e: e < CONVNET_MAX)):
        tic = time.perf_counter()
        errs = {lr: train(name, bundle, float(lr), args.epochs) for lr in args.lrs.split(",")}
        best = min(errs.values())
        print(f"{name}: val error {', '.join(f'{e:.1f}% at lr {lr}' for lr, e in errs.items())} "
              f"({time.perf_counter() - tic:.0f} s)", flush=True)
        checks.append((name, best, ok(best)))
    if args.record:
        record = json.loads(Path(args.record).read_text())
        for w in record["windows"]:
            for model in w["models"]:
                best = min(v for v in w["mean_error"][model] if v == v)
                checks.append((f"{model}/{w['optimizer']} ({record['epochs']} epochs)", best, best <= VIT_MAX))
    for name, value, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'} {name}: {value:.1f}%")
    return 0 if all(ok for _, _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
