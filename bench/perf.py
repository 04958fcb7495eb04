"""``bench perf``: training-step throughput of our loop against a bare PyTorch loop, same model and batch.

Ours is ``bench.trial.Trainer.step`` (scheduler, mixup when the recipe has it, loss, optimizer
groups, EMA); bare is forward + label-smoothed cross-entropy + backward + ``torch.optim.AdamW`` with
the same precision and memory format.  The two are timed in alternating rounds and the best round
of each counts, so machine noise does not land on one side.  On CUDA it also reports achieved TFLOP/s and MFU, counting
3 x forward multiply-adds x 2 flops per image (forward + backward).

With ``--data SPEC`` it also times the input pipeline of that data (the train split, the recipe's
augmentation, on the device): ``loader_img_per_s_per_worker`` in-process (one core, ``workers=0``),
``loader_img_per_s`` with ``--workers`` processes, and ``bound``: "loader" when that is below the
model's training step (``model_img_per_s``, the same as ``ours_img_s``), else "model".
"""
from __future__ import annotations

import json
import os
import sys
import time

from bench.core import models as names
from bench.core.dataspec import DECODES
from bench.core.identity import DEFAULT_RECIPE
from bench.recipe import RECIPES

# torch, timm and the models are imported where used: `bench perf --help` must answer at once

# dense bf16 peak TFLOP/s by device-name substring (vendor datasheets, SXM parts)
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "V100": 125.0}


def _random_bundle(batch_size: int, resolution: int, num_classes: int):
    import torch

    from bench.data import DataBundle, TensorSplit

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2 * batch_size, 3, resolution, resolution), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, num_classes, (2 * batch_size,), generator=g)
    split = TensorSplit(images, labels)
    return DataBundle("random", num_classes, resolution, split, split, (0.5,) * 3, (0.25,) * 3)


def _time(step, steps: int, device, offset: int = 0) -> float:
    """Seconds for ``steps`` steps, synchronised once at the end."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    tic = time.perf_counter()
    for i in range(steps):
        loss = step(offset + i)
    loss.item()  # one sync: the work is done
    return time.perf_counter() - tic


def _batch(batch_size, resolution, num_classes, device):
    import torch

    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch_size, 3, resolution, resolution, generator=g).to(device)
    y = torch.randint(0, num_classes, (batch_size,), generator=g).to(device)
    return x, y


def ours_step(model: str, resolution: int, batch_size: int, device: str = "cpu", recipe: str = DEFAULT_RECIPE,
              num_classes: int = 1000, compile: bool = False):
    """``(step(i), device)`` running ``Trainer.step`` (the real training step) on a fixed batch."""
    from bench.trial import TrialConfig, Trainer

    cfg = TrialConfig(model=model, optimizer="adamw", lr=1e-3, wd=0.05, epochs=1000, batch_size=batch_size,
                      resolution=resolution, recipe=recipe, device=device, compile=compile)
    trainer = Trainer(cfg, data=_random_bundle(batch_size, resolution, num_classes))
    trainer.net.train()
    x, y = _batch(batch_size, resolution, num_classes, trainer.device)
    return (lambda i: trainer.step(x, y, i)), trainer.device


def bare_step(model: str, resolution: int, batch_size: int, device: str = "cpu", num_classes: int = 1000,
              compile: bool = False):
    """``(step(i), device)`` of the plainest PyTorch loop on the same model, batch, loss and precision."""
    import torch
    from torch import nn

    from bench import models

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    net = models.create(model, num_classes=num_classes, img_size=resolution)
    net.to(dev, memory_format=torch.channels_last if cuda else torch.contiguous_format).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.05)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    x, y = _batch(batch_size, resolution, num_classes, dev)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(net) if compile else net

    def step(_):
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = loss_fn(forward(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    return step, dev


def compare(model: str, resolution: int, batch_size: int, device: str = "cpu", steps: int = 10, rounds: int = 5,
            recipe: str = DEFAULT_RECIPE, compile: bool = False) -> tuple[float, float]:
    """Best-of-``rounds`` img/s of ours and bare, timed in alternation so both see the same machine load;
    with ``compile`` both forwards are compiled (round 0, untimed, pays the compilation)."""
    ours, dev = ours_step(model, resolution, batch_size, device, recipe, compile=compile)
    bare, _ = bare_step(model, resolution, batch_size, device, compile=compile)
    best = {"ours": 0.0, "bare": 0.0}
    for r in range(rounds + 1):  # round 0 warms up
        for name, step in (("ours", ours), ("bare", bare)):
            seconds = _time(step, steps if r else 3, dev, offset=r * steps)
            if r:
                best[name] = max(best[name], batch_size * steps / seconds)
    return best["ours"], best["bare"]


def measure_train_throughput(model: str, resolution: int, batch_size: int, device: str = "cpu", steps: int = 3,
                             rounds: int = 3) -> float:
    """Images/s of our training step, the fastest of ``rounds`` timings of ``steps`` steps after one warm-up
    step: the runner's cost estimate before a study (one timing read 477 img/s where the trials then
    trained at 587: a moment's other load, not the step)."""
    step, dev = ours_step(model, resolution, batch_size, device)
    _time(step, 1, dev)
    return max(batch_size * steps / _time(step, steps, dev, offset=1 + r * steps) for r in range(rounds))


def loader_rate(bundle, batch_size: int, device: str, augment: str, workers: int, decode: str,
                batches: int) -> float:
    """Images/s of ``batches`` train batches on ``device`` after one warm-up batch (worker start-up excluded)."""
    import torch

    from bench.data import make_loader

    dev = torch.device(device)
    loader = make_loader(bundle, "train", batch_size, device=dev, epoch=0, seed=0, augment=augment,
                         workers=workers, decode=decode)
    n, it = 0, iter(loader)
    next(it)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    tic = time.perf_counter()
    for b, (x, _) in enumerate(it):
        n += x.shape[0]
        if b + 1 == batches:
            break
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    if n == 0:
        raise ValueError(f"{bundle.name}: need at least 2 train batches of {batch_size} to time the loader")
    return n / (time.perf_counter() - tic)


def data_report(bundle, batch_size: int, device: str, recipe: str, workers: int, decode: str,
                batches: int) -> dict:
    """Loader throughput of ``bundle``'s train split at one core and at ``workers`` processes."""
    augment = RECIPES[recipe].augment
    one = loader_rate(bundle, batch_size, device, augment, 0, decode, max(1, batches // 4))
    many = loader_rate(bundle, batch_size, device, augment, workers, decode, batches) if workers else one
    return dict(data=bundle.name, decode=decode, workers=workers, loader_img_per_s_per_worker=one, loader_img_per_s=many)


def report(model: str, resolution: int | None, batch_size: int, device: str, steps: int, recipe: str,
           rounds: int = 5, compile: bool = False) -> dict:
    import torch

    from bench import models
    from bench.complexity import complexity

    res = resolution or models.default_resolution(model)
    ours, bare = compare(model, res, batch_size, device, steps, rounds, recipe, compile)
    out = dict(model=model, resolution=res, batch_size=batch_size, device=device, recipe=recipe, rounds=rounds,
               compile=compile,
               threads=torch.get_num_threads(), ours_img_s=ours, bare_img_s=bare, ratio=ours / bare)
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
        tflops = 6 * complexity(model, res)["flops"] * ours / 1e12
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        out.update(gpu=name, tflops=tflops, mfu=tflops / peak if peak else None)
    return out


def run(args) -> int:
    import torch

    from bench import models
    from bench.data import load_data

    names.check(args.model)
    names.check_resolution(args.model, args.res)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("bench perf: error: --device cuda but no CUDA device is available", file=sys.stderr)
        return 2
    if args.workers < 0 or args.loader_batches < 1:
        print("bench perf: error: --workers must be >= 0 and --loader-batches >= 1", file=sys.stderr)
        return 2
    res = args.res or models.default_resolution(args.model)
    bundle = load_data(args.data, res) if args.data else None  # a bad spec fails before the timing
    r = report(args.model, res, args.batch_size, args.device, args.steps, args.recipe, args.rounds, args.compile)
    if bundle is not None:
        d = data_report(bundle, args.batch_size, args.device, args.recipe, args.workers, args.decode,
                        args.loader_batches)
        r.update(d, model_img_per_s=r["ours_img_s"],
                 bound="loader" if d["loader_img_per_s"] < r["ours_img_s"] else "model")
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"{r['model']} @ {r['resolution']}px, batch {r['batch_size']}, {r['device']} ({r['threads']} threads), "
          f"recipe {r['recipe']}{', compiled' if r['compile'] else ''}")
    print(f"  ours  {r['ours_img_s']:10.1f} img/s\n  bare  {r['bare_img_s']:10.1f} img/s\n  ratio {r['ratio']:10.3f}")
    if "tflops" in r:
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] else "n/a (unknown peak)"
        print(f"  {r['gpu']}: {r['tflops']:.1f} TFLOP/s achieved, MFU {mfu}")
    if "bound" in r:
        print(f"  loader ({r['data']}, decode {r['decode']}): {r['loader_img_per_s_per_worker']:.1f} img/s on one core, "
              f"{r['loader_img_per_s']:.1f} img/s with {r['workers']} workers -> {r['bound']}-bound")
    return 0


def register(sub) -> None:
    p = sub.add_parser("perf", help="training-step throughput: our loop vs a bare PyTorch loop")
    p.add_argument("--model", required=True, help="a bench or timm model name, or module:function")
    p.add_argument("--res", type=int, help="resolution (default: the model's own)")
    p.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--steps", type=int, default=10, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds of ours and bare; the best of each counts")
    p.add_argument("--recipe", choices=list(RECIPES), default=DEFAULT_RECIPE,
                   help=f"paper or light (default: {DEFAULT_RECIPE})")
    p.add_argument("--data", help="also time this data's train loader, e.g. imagefolder:DIR (see bench train --data)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="loader processes (with --data)")
    p.add_argument("--decode", choices=DECODES, default="auto", help="where JPEGs are decoded (with --data)")
    p.add_argument("--loader-batches", type=int, default=20, help="timed loader batches (with --data)")
    p.add_argument("--compile", action="store_true", help="torch.compile both loops' forward (pays off on GPU)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the text")
    p.set_defaults(func=run)
