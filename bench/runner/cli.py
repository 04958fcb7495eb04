"""``bench run``, ``bench status``, ``bench export``: the runner's subcommands."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import BenchError
from bench.recipe import OPTIMIZERS


def register(sub) -> None:
    """Add the runner's subcommands to the ``bench`` argparse subparsers."""
    p = sub.add_parser("run", help="run (or resume) a study", description=run.__doc__)
    p.add_argument("--study", required=True, help="study name (studies/<name>.toml) or path to a .toml")
    p.add_argument("--budget", default="local", help="budget in the study file (default: local)")
    p.add_argument("--models", nargs="+",
                   help="models (default: the budget's or study's): bench or timm names, or module:function")
    p.add_argument("--family", help="whose lr/wd ranges models that bench does not register take, e.g. vit "
                                    "(default: the study's [families] table)")
    p.add_argument("--optimizer", nargs="+", choices=OPTIMIZERS, help="optimizers (default: both)")
    p.add_argument("--trials", type=_positive, help="(lr, wd) points per model and optimizer")
    p.add_argument("--epochs", type=_positive, nargs="+", help="epochs of every trial (no budget scaling)")
    p.add_argument("--data", help="data spec, e.g. synthetic:256 or imagefolder:/data/imagenet")
    p.add_argument("--res", type=_positive,
                   help="resolution of every model (default: the budget's, else each model's own)")
    p.add_argument("--seed", type=int, help="sampling seed (default: the study file's)")
    p.add_argument("--seeds", type=_positive, default=1, help="training seeds per point (default: 1)")
    p.add_argument("--confirm", type=_positive, metavar="N",
                   help="rerun the best N points of each model/optimizer/epochs with --seeds more seeds")
    p.add_argument("--dry-run", action="store_true", help="print the plan and cost estimate, launch nothing")
    p.add_argument("--no-estimate", action="store_true", help="skip the measured cost estimate")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("launching")
    g.add_argument("--cluster", default="local", choices=("local", "slurm", "debug"))
    g.add_argument("--parallel", type=_positive, help="local: trials at once (default: #GPUs or 1)")
    g.add_argument("--gpus-per-trial", type=int, help="GPUs per trial (default: 1 if any, else 0)")
    g.add_argument("--tasks-per-trial", type=_positive,
                   help="DDP processes per trial (default: max(1, gpus-per-trial))")
    g.add_argument("--timeout", type=_positive, default=3 * 24 * 60, help="minutes per job (default: 3 days)")
    g.add_argument("--max-requeue", type=int, default=3, help="requeues on timeout/preemption (default: 3)")
    g.add_argument("--partition", help="slurm partition")
    g.add_argument("--array-parallelism", type=_positive, default=64, help="slurm: array tasks at once")
    g.add_argument("--slurm-extra", nargs="+", default=[], metavar="KEY=VALUE", help="extra sbatch flags")
    _storage_args(p)
    p.set_defaults(func=run)

    p = sub.add_parser("status", help="trial counts per model x optimizer", description=status.__doc__)
    p.add_argument("--study", help="only this study")
    _storage_args(p)
    p.set_defaults(func=status)

    p = sub.add_parser("export", help="tidy table of a study's trials", description=export.__doc__)
    p.add_argument("--study", required=True)
    p.add_argument("--format", choices=("csv", "parquet"), default="csv")
    p.add_argument("--out", help="output file (default: results/<study>/trials.<format>; '-' for stdout csv)")
    _storage_args(p)
    p.set_defaults(func=export)


def run(args) -> int:
    """Run a study: sample (lr, wd) points, launch the trials, record them in optuna. Running the
    same command again resumes: finished trials are skipped, failed and stale ones rerun."""
    from bench.runner import launch, orchestrate, studies
    from bench.runner.specs import Overrides

    study = studies.load(args.study)
    ov = Overrides(budget=args.budget, models=_tuple(args.models), optimizers=_tuple(args.optimizer),
                   trials=args.trials, epochs=_tuple(args.epochs), data=args.data, seed=args.seed, seeds=args.seeds,
                   family=args.family, resolution=args.res)
    lopts = launch.LaunchOptions(
        cluster=args.cluster, parallel=args.parallel, gpus_per_trial=args.gpus_per_trial,
        tasks_per_trial=args.tasks_per_trial, timeout_min=args.timeout, max_requeue=args.max_requeue,
        partition=args.partition, array_parallelism=args.array_parallelism, slurm_extra=_pairs(args.slurm_extra))
    ropts = orchestrate.RunOptions(results=Path(args.results), storage=args.storage, dry_run=args.dry_run,
                                   confirm=args.confirm, estimate=not args.no_estimate,
                                   quiet=args.no_progress)
    return orchestrate.run(study, ov, lopts, ropts)


def status(args) -> int:
    """Print done / diverged / running / stale / failed counts and the best error per
    study/model/optimizer/budget."""
    import optuna

    from bench.runner import orchestrate, progress

    rows = []
    for study_dir, store in _storages(args):
        for summary in optuna.get_all_study_summaries(store, include_best_trial=False):
            if args.study and summary.user_attrs.get("study") != args.study:
                continue
            trials = optuna.load_study(study_name=summary.study_name, storage=store).get_trials(deepcopy=False)
            root = study_dir or Path(args.results) / summary.user_attrs.get("study", "")
            alive = lambda t, root=root: orchestrate.job_alive(root / "trials" / t.user_attrs.get("key", ""))  # noqa: E731
            rows.append((summary.study_name, progress.counts(trials, alive)))
    if not rows:
        raise BenchError(f"no trials stored{' for study ' + repr(args.study) if args.study else ''} "
                         f"in {args.storage or args.results}")
    print(progress.table(rows))
    return 0


def export(args) -> int:
    """Write one tidy table (one row per finished trial) of a study: csv or parquet."""
    from bench.runner import export as ex

    (_, store), = _storages(args)
    df = ex.table(store, args.study)
    if df.empty:
        raise BenchError(f"study {args.study!r} has no finished trials in {args.storage or args.results}")
    out = args.out or str(Path(args.results) / args.study / f"trials.{args.format}")
    if out == "-":
        if args.format != "csv":
            raise BenchError("--out - (stdout) is for --format csv only")
        df.to_csv(sys.stdout, index=False)
        return 0
    ex.write(df, out, args.format)
    print(f"wrote {len(df)} trials to {out}", file=sys.stderr)
    return 0


def _storages(args):
    """(study dir or None, optuna storage) pairs that the command reads."""
    from bench.runner import storage

    if args.storage:
        return [(None, storage.open_storage(args.storage))]
    results = Path(args.results)
    paths = [storage.journal_path(results, args.study)] if args.study else sorted(results.glob("*/optuna.journal"))
    found = [p for p in paths if p.exists()]
    if not found:
        have = sorted(p.parent.name for p in results.glob("*/optuna.journal"))
        raise BenchError(f"no results{' for study ' + repr(args.study) if args.study else ''} in {results}/"
                         + (f"; studies with results: {', '.join(have)}" if have else ""))
    return [(p.parent, storage.open_storage(p)) for p in found]


def _storage_args(p) -> None:
    p.add_argument("--results", default="results", help="results directory (default: results)")
    p.add_argument("--storage", help="optuna storage URL (e.g. postgresql://...) instead of the journal file")


def _positive(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _pairs(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BenchError(f"--slurm-extra takes KEY=VALUE, got {item!r}")
        out[key.replace("-", "_")] = value
    return out


def _tuple(v):
    return tuple(v) if v else None
