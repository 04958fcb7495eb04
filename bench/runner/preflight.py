"""Before a run launches: its checks, what it holds (trials x epochs x images), whether it pairs with a
reference, and its cost from a short measured throughput."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from bench.core.studies import StudyError

# Seconds a job spends before its first step (Python, torch, timm, the data cache), measured on the
# 2-core laptop machine: the cost that running several trials per job shares out.
JOB_START_S = 10.0
START_SHARE = 0.05  # the default chunk keeps start-up under this share of a job's cost


def split_sizes(data: str) -> tuple[int, int] | None:
    """(train, val) images of a data spec; None if it cannot be told without loading."""
    from bench.core.dataspec import DataError, parse

    try:
        spec = parse(data)
    except DataError as e:
        raise StudyError(str(e)) from None
    sizes = spec.split_sizes()
    if sizes or spec.scheme != "imagefolder":
        return sizes
    counts = [sum(1 for d in (Path(spec.folder) / split).iterdir() if d.is_dir() for _ in d.iterdir())
              for split in ("train", "val") if (Path(spec.folder) / split).is_dir()]
    return tuple(counts) if len(counts) == 2 else None


def check(specs, cluster: str) -> str:
    """Fail before launch: a resolution a model's stem does not divide, a data folder missing on this
    machine or laid out wrong (missing files, splits or classes, empty classes). On Slurm the folder may
    exist only on the cluster: then a note, not an error."""
    from bench.core.dataspec import DataError, parse
    from bench.core.models import check_resolution, resolution

    for model, res in sorted({(s.cfg.model, s.cfg.resolution) for s in specs}, key=str):
        check_resolution(model, res)
    notes = []
    for data in sorted({s.cfg.data for s in specs}):
        try:
            spec = parse(data)
            folder = spec.missing_folder()
            problems = spec.problems()
        except DataError as e:
            raise StudyError(str(e)) from None
        if folder and cluster != "slurm":
            raise StudyError(f"data folder {folder} (--data {data}) does not exist on this machine")
        if problems:
            raise StudyError("; ".join(problems))
        fixed = spec.fixed_resolution()
        wrong = sorted({f"{s.cfg.model} at {res} px" for s in specs if s.cfg.data == data
                        for res in [s.cfg.resolution or resolution(s.cfg.model)] if res not in (None, fixed)}) if fixed else []
        if wrong:
            raise StudyError(f"--data {data} holds raw arrays at {fixed} px, so its trials train at {fixed} px: "
                             f"{', '.join(wrong)} cannot (give --res {fixed}, or prepare the data as --format jpeg)")
        if folder:
            notes.append(f"  note: data folder {folder} is not on this machine; the cluster's nodes must have it")
    return "\n".join(notes)


def pairing(specs, sampling_seed: int, asked: str | None = None) -> str:
    """One line on whether these trials pair with a reference study (analysis.reference): the one
    ``asked`` for (with the reasons when it does not pair), else the committed reference of their
    budget, said only when it pairs. A user's model that pairs is compared with the reference models
    by ``bench report --reference`` without retraining them. Nothing is built or imported here: a
    model bench does not register pairs only at an explicit --res (its own resolution is known only
    when it is built)."""
    import pandas as pd

    from analysis import reference
    from bench.core.models import resolution

    if not specs:
        return ""
    if asked:
        name, table = asked, reference.locate(asked)
    else:
        found = reference.for_budget(specs[0].study_name, specs[0].budget)
        if found is None:
            return ""
        name, table = found
    unknown = sorted({s.cfg.model for s in specs if (s.cfg.resolution or resolution(s.cfg.model)) is None})
    mine = pd.DataFrame([dict(study=s.study_name, model=s.cfg.model, family=s.family, optimizer=s.cfg.optimizer,
                              budget=s.budget, epochs=s.cfg.epochs, point=s.point, sampling_seed=sampling_seed,
                              lr=s.cfg.lr, wd=s.cfg.wd, data=s.cfg.data,
                              resolution=s.cfg.resolution or resolution(s.cfg.model))
                         for s in specs])  # fmt: skip
    ref = reference.load(table)
    why = reference.mismatches(mine, ref)
    if unknown and not why:
        why = [f"{', '.join(unknown)} train at their own resolution, known only when built: pass --res "
               f"{'/'.join(str(r) for r in sorted(set(ref['resolution'].dropna())))} to pair"]
    if why:
        return f"  reference {name}: does not pair (" + "; ".join(why) + "): bench report --reference refuses it" \
            if asked else ""
    return (f"  reference {name}: pairs (same draws, epochs and data): compare with "
            f"bench report --study {specs[0].study_name} --reference {name}")


def describe(specs, todo, counts: dict) -> str:
    """Lines: what the study holds, what this run does, and its images."""
    if not specs:
        return "nothing to run"
    models = sorted({s.cfg.model for s in specs})
    opts = sorted({s.cfg.optimizer for s in specs})
    epochs = sorted({s.cfg.epochs for s in specs})
    s0 = specs[0]
    lines = [f"study {s0.study_name!r}, budget {s0.budget!r}, data {s0.cfg.data!r}, recipe {s0.cfg.recipe!r}: "
             f"{len(specs)} trials = {len(models)} models x {len(opts)} optimizers x "
             f"{len({(s.point, s.cfg.seed) for s in specs})} point-seeds x epochs {epochs}",
             "  " + ", ".join(f"{k} {v}" for k, v in counts.items())]
    sizes = split_sizes(s0.cfg.data)
    n_img = sizes and sizes[0]
    ep = sum(s.cfg.epochs for s in todo)
    lines.append(f"  to train: {len(todo)} trials, {ep} epochs"
                 + (f", {ep * n_img:,} images ({n_img:,} per epoch)" if n_img else ""))
    return "\n".join(lines)


@dataclass
class Cost:
    """The run's cost: the chunk size, its description, and per trial of ``todo`` its seconds of
    training and evaluation; ``wall(trials)`` is the wall time of some of them on the run's workers."""

    per_job: int
    text: str
    trial_s: dict = field(default_factory=dict)  # spec key -> seconds
    workers: int = 1

    def wall(self, specs) -> float:
        """Wall seconds of training ``specs`` (of the run's todo) on its workers, start-up included."""
        secs = [self.trial_s[s.key] for s in specs if s.key in self.trial_s]
        jobs = math.ceil(len(secs) / self.per_job) if secs else 0
        return (sum(secs) + jobs * JOB_START_S) / max(1, min(self.workers, jobs or 1))


def estimate(todo, launcher, per_job: int | None = None) -> Cost:
    """Cost of the trials to train from a short measured throughput (the best of 3 x 3 steps per
    model, at the threads each worker gets), plus evaluation (raw and EMA model, forward only: ~1/3 of a step)
    and job start-up; and the trials per job that keep start-up under ``START_SHARE``."""
    import torch

    from bench.models import default_resolution
    from bench.perf import measure_train_throughput

    device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes = split_sizes(todo[0].cfg.data)
    if not sizes:
        return Cost(per_job or 1, "  cost: unknown (size of the data set unknown before loading)")
    n_train, n_val = sizes
    threads = getattr(launcher, "threads", None)

    def key(s):  # (model, resolution, batch) measured: the real batch at small resolutions, <= 32 else
        c = s.cfg
        res = c.resolution or default_resolution(c.model)
        return c.model, res, c.batch_size if res <= 64 else min(c.batch_size, 32)

    rate = {}
    with _threads(threads):
        for k in dict.fromkeys(key(s) for s in todo):
            rate[k] = measure_train_throughput(*k, device=device, steps=3)
    trial_s = [s.cfg.epochs * (n_train + 2 * n_val / 3) / rate[key(s)] for s in todo]
    mean_s = sum(trial_s) / len(trial_s)
    workers = launcher.capacity if launcher.capacity != float("inf") else launcher.opts.array_parallelism
    auto = math.ceil(JOB_START_S / (START_SHARE * mean_s))
    fuse = getattr(launcher, "fuse", 1)
    per_job = -(-(per_job or max(1, min(auto, len(todo) // (2 * workers)))) // fuse) * fuse  # whole fused groups
    jobs = math.ceil(len(todo) / per_job)
    wall = (sum(trial_s) + jobs * JOB_START_S) / min(workers, jobs)
    rates = ", ".join(f"{m} {r:,.0f} img/s" for (m, _, _), r in rate.items())
    # a fused group is counted at the sum of its trials' times: the same FLOPs, its shared data stream
    # and fuller device not credited (an upper bound; docs/performance.md has what fusing measured)
    fused = f", fused in groups of <= {fuse} (counted at their trials' summed time)" if fuse > 1 else ""
    return Cost(per_job, f"  est. cost: {duration(sum(trial_s))} of training and evaluation on {device} ({rates} at "
                         f"{threads or torch.get_num_threads()} thread(s) per worker), {jobs} jobs of <= {per_job} trials"
                         f"{fused} (start-up {JOB_START_S:g} s each); ~{duration(wall)} wall with {min(workers, jobs):g} at once",
                {s.key: t for s, t in zip(todo, trial_s)}, int(workers))


class _threads:
    """torch's intra-op threads set to ``n`` (None: unchanged) for the measurement only."""

    def __init__(self, n):
        import torch

        self.torch, self.n, self.old = torch, n, torch.get_num_threads()

    def __enter__(self):
        if self.n:
            self.torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        self.torch.set_num_threads(self.old)


def duration(s: float) -> str:
    """Seconds for a reader: as seconds, minutes or hours."""
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"
