"""The plan of a run (trials x epochs x images) and its cost from a short measured throughput."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.runner.studies import StudyError

CIFAR_TRAIN = 50_000


def train_images(data: str) -> int | None:
    """Training images per epoch of a data spec (None if it cannot be told without loading)."""
    from bench.dataspec import SYNTHETIC_TRAIN, DataError, parse_spec

    try:
        scheme, arg = parse_spec(data)
    except DataError as e:
        raise StudyError(str(e)) from None
    if scheme == "synthetic":
        return int(arg.replace("_", "")) if arg else SYNTHETIC_TRAIN
    if scheme.startswith("cifar"):
        return CIFAR_TRAIN
    train = Path(arg) / "train"
    return sum(1 for d in train.iterdir() if d.is_dir() for _ in d.iterdir()) if train.is_dir() else None


def check(specs, cluster: str) -> str:
    """Fail before launch: a resolution a model's stem does not divide, or a data folder missing
    on this machine. On Slurm the folder may exist only on the cluster: then a note, not an error."""
    from bench.architectures import check_resolution
    from bench.dataspec import DataError, missing_folder

    for model, res in sorted({(s.model, s.resolution) for s in specs}, key=str):
        check_resolution(model, res)
    notes = []
    for data in sorted({s.data for s in specs}):
        try:
            folder = missing_folder(data)
        except DataError as e:
            raise StudyError(str(e)) from None
        if folder and cluster != "slurm":
            raise StudyError(f"data folder {folder} (--data {data}) does not exist on this machine")
        if folder:
            notes.append(f"  note: data folder {folder} is not on this machine; the cluster's nodes must have it")
    return "\n".join(notes)


def describe(specs, todo, counts: dict) -> str:
    """Lines: what the study holds, what this run does, and its images."""
    if not specs:
        return "nothing to run"
    models = sorted({s.model for s in specs})
    opts = sorted({s.optimizer for s in specs})
    epochs = sorted({s.epochs for s in specs})
    s0 = specs[0]
    lines = [f"study {s0.study!r}, budget {s0.budget!r}, data {s0.data!r}, recipe {s0.recipe!r}: "
             f"{len(specs)} trials = {len(models)} models x {len(opts)} optimizers x "
             f"{len({(s.point, s.seed) for s in specs})} point-seeds x epochs {epochs}",
             "  " + ", ".join(f"{k} {v}" for k, v in counts.items())]
    n_img = train_images(s0.data)
    ep = sum(s.epochs for s in todo)
    lines.append(f"  to train: {len(todo)} trials, {ep} epochs"
                 + (f", {ep * n_img:,} images ({n_img:,} per epoch)" if n_img else ""))
    return "\n".join(lines)


def estimate(todo, parallel: float, device: str | None = None) -> str:
    """Cost of the trials to train from a short measured throughput (3 steps per model)."""
    if not todo:
        return ""
    import torch

    from bench.perf import measure_train_throughput

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    n_img = train_images(todo[0].data)
    if not n_img:
        return "  cost: unknown (size of the data set unknown before loading)"
    from bench.models import default_resolution

    rate, seconds, work = {}, 0.0, Counter()
    for s in todo:
        work[(s.model, s.resolution or default_resolution(s.model), min(s.batch_size, 32))] += s.epochs * n_img
    for (model, res, batch), images in work.items():
        rate[model] = measure_train_throughput(model, res, batch, device=device, steps=3)
        seconds += images / rate[model]
    wall = seconds / min(parallel, len(todo))
    rates = ", ".join(f"{m} {r:,.0f} img/s" for m, r in rate.items())
    return (f"  est. cost: {_dur(seconds)} of training on {device} ({rates}, measured here at batch <= 32);"
            f" ~{_dur(wall)} wall at {parallel:g} in parallel")


def _dur(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"
