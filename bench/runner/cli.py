"""The runner's subcommands: ``bench run``, ``bench calibrate``, ``bench status``, ``bench export`` and
``bench repair``."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from bench.core.errors import UserError
from bench.core.layout import StudyDir
from bench.io import cannot_write
from bench.recipe import OPTIMIZERS

MAX_POINTS = 128  # --until-decided's default cap, points per model and optimizer


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
    p.add_argument("--seed", type=_nonnegative, help="sampling seed (default: the study file's)")
    p.add_argument("--seeds", type=_positive, help="training seeds per point (default: the budget's, else 1)")
    p.add_argument("--confirm", type=_positive, metavar="N",
                   help="rerun the best N points of each model/optimizer/epochs with --seeds more seeds")
    p.add_argument("--until-decided", nargs="*", metavar="CLAIM",
                   help="grow the study by doubling its points until these claims (default: every claim) are decided, "
                        "alpha split over the planned looks (claims: robust, better, best, sgd, gap)")
    p.add_argument("--max-points", type=_positive, metavar="N",
                   help="with --until-decided: points per model and optimizer to stop at (default: 128)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and cost estimate, launch nothing")
    p.add_argument("--no-estimate", action="store_true", help="skip the measured cost estimate")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--reference", metavar="NAME_OR_PATH",
                   help="say in the plan whether the study pairs with this reference study, and why not "
                        "(default: the budget's committed reference, named only when it pairs)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile each trial's training forward (pays off on GPU)")
    _launch_args(p)
    _storage_args(p)
    p.set_defaults(func=run)

    p = sub.add_parser("calibrate", help="measure where a budget's lr windows belong (lr grid on every model)",
                       description=calibrate.__doc__)
    p.add_argument("--study", required=True, help="study name (studies/<name>.toml) or path to a .toml")
    p.add_argument("--budget", default="local", help="budget in the study file (default: local)")
    p.add_argument("--families", nargs="+", help="model families to calibrate (default: all in the budget)")
    p.add_argument("--models", nargs="+", help="bench models (default: the budget's or study's bench models)")
    p.add_argument("--data", help="data spec instead of the budget's (e.g. cifar10:DIR:50000)")
    p.add_argument("--seeds", type=_positive, default=2, help="training seeds per grid point (default: 2)")
    p.add_argument("--points", type=_positive, default=5, help="lrs in the starting grid (default: 5)")
    p.add_argument("--step", type=_factor, default=2.0, help="factor between grid lrs, > 1 (default: 2)")
    p.add_argument("--out", help="record file (default: <results>/calibrate_<study>/<budget>.json)")
    p.add_argument("--write-reference", action="store_true",
                   help="write the record where the committed references are read: "
                        "results/reference/calibration/<study>_<budget>.json of this checkout")
    p.add_argument("--dry-run", action="store_true", help="print the first grid's plan, launch nothing")
    p.add_argument("--no-estimate", action="store_true", help="skip the measured cost estimate")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _launch_args(p)
    _storage_args(p)
    p.set_defaults(func=calibrate)

    p = sub.add_parser("status", help="trial counts per model x optimizer", description=status.__doc__)
    p.add_argument("--study", help="only this study")
    _storage_args(p)
    p.set_defaults(func=status)

    p = sub.add_parser("export", help="tidy table of a study's trials", description=export.__doc__)
    p.add_argument("--study", required=True, help="the study to export (results/<study>/)")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", help="csv or parquet (default: csv)")
    p.add_argument("--out", help="output file (default: results/<study>/trials.<format>; '-' for stdout csv)")
    _storage_args(p)
    p.set_defaults(func=export)

    p = sub.add_parser("repair", help="rebuild a study's damaged journal file", description=repair.__doc__)
    p.add_argument("--study", help="the study whose results/<study>/optuna.journal to repair")
    p.add_argument("--results", default="results", help="results directory (default: results)")
    p.add_argument("--storage", help="a journal file to repair instead (its trial dirs: --trials-dir)")
    p.add_argument("--trials-dir", help="trial dirs of --storage's study (default: none)")
    p.set_defaults(func=repair)


def run(args) -> int:
    """Run a study: sample (lr, wd) points, launch the trials, record them in optuna. Running the
    same command again resumes: finished trials are skipped, failed and stale ones rerun."""
    from bench.core import models, studies

    for name in args.models or ():  # before optuna and pandas load (a second)
        models.check(name)
    from bench.runner import orchestrate

    study = studies.load(args.study)
    ov = studies.Overrides(budget=args.budget, models=_tuple(args.models), optimizers=_tuple(args.optimizer),
                   trials=args.trials, epochs=_tuple(args.epochs), data=args.data, seed=args.seed, seeds=args.seeds,
                   family=args.family, resolution=args.res, compile=args.compile)
    if args.until_decided is not None:
        from bench.runner import grow

        if args.confirm:
            raise UserError("--until-decided and --confirm are separate runs: grow the study first, then confirm")
        return grow.run(study, ov, _launch_options(args), _run_options(args), list(args.until_decided),
                        args.max_points or MAX_POINTS)
    if args.max_points:
        raise UserError(f"--max-points caps a study grown with --until-decided: give both, or give --trials N "
                        f"for {args.max_points} points")
    return orchestrate.run(study, ov, _launch_options(args), _run_options(args, confirm=args.confirm))


def calibrate(args) -> int:
    """Calibrate a budget's lr windows: per family and optimizer, a log-spaced lr grid trained on
    every model of the family with several seeds, grown until the family's mean-error minimum is
    bracketed; writes a record and prints the lr_scale line for the study file."""
    from bench.core import studies
    from bench.runner import calibrate as cal

    study = studies.load(args.study)
    if args.data:  # the budget's grid on other data: the budget as run says so in the record
        study = studies.with_data(study, args.budget, args.data)
    out = record_path(args, study.name)
    cal.run(study, args.budget, _launch_options(args), _run_options(args), families=args.families,
            models=_tuple(args.models), seeds=args.seeds, points=args.points, step=args.step, out=out)
    return 0


def record_path(args, study: str) -> Path:
    """Where ``bench calibrate`` writes its record, checked writable now, not after hours of training."""
    from bench.core import layout

    if args.write_reference and args.out:
        raise UserError("--out and --write-reference both say where the record goes: give one")
    if args.write_reference:
        out = layout.reference_calibration(study, args.budget)
    else:
        out = Path(args.out) if args.out else StudyDir(args.results, layout.calibration_name(study)).calibration(args.budget)
    _writable(out, "--write-reference" if args.write_reference else "--out")
    return out


def status(args) -> int:
    """Print done / diverged / running / stale / failed counts and the best error per
    study/model/optimizer/budget."""
    from bench.core import records
    from bench.runner import orchestrate, progress

    rows = []
    for study_dir, store in _storages(args):
        for name, attrs in store.summaries():
            if args.study and attrs.get("study") != args.study:
                continue
            where = study_dir or StudyDir(args.results, attrs.get("study", ""))

            def alive(t, where=where):
                key = records.key(t)
                return key is not None and orchestrate.job_alive(where.trial(key))

            rows.append((name, progress.counts(store.trials(name), alive)))
    if not rows:
        raise UserError(f"no trials stored{' for study ' + repr(args.study) if args.study else ''} "
                         f"in {_where(args)}")
    print(progress.table(rows))
    return 0


def export(args) -> int:
    """Write one tidy table (one row per finished trial) of a study: csv or parquet."""
    from bench.runner import export as ex

    (_, store), = _storages(args)
    df = ex.table(store.optuna, args.study)
    if df.empty:
        raise UserError(f"study {args.study!r} has no finished trials in {_where(args)}")
    out = args.out or str(StudyDir(args.results, args.study).export(args.format))
    if out == "-":
        if args.format != "csv":
            raise UserError("--out - (stdout) is for --format csv only")
        df.to_csv(sys.stdout, index=False)
        return 0
    try:
        ex.write(df, out, args.format)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    print(f"wrote {len(df)} trials to {out}", file=sys.stderr)
    return 0


def _storages(args):
    """(study dir or None, storage.Store) pairs that the command reads."""
    from bench.core import layout
    from bench.runner import storage

    if args.storage:
        return [(None, storage.Store.open(args.storage, create=False) or _no_file(args.storage))]
    found = layout.studies_in(args.results)
    if args.study:
        if args.study not in found:
            raise UserError(f"no results for study {args.study!r} in {args.results}/"
                            + (f"; studies with results: {', '.join(found)}" if found else ""))
        found = {args.study: found[args.study]}
    if not found:
        raise UserError(f"no results in {args.results}/ (no <study>/{layout.JOURNAL} there)")
    return [(where, storage.Store.open(where.journal, create=False)) for where in found.values()]


def repair(args) -> int:
    """Rebuild a damaged journal: keep every readable record, record the finished trials again from
    their trial dirs (result.json), and keep the original beside it as a backup."""
    from bench.runner import repair as rp, storage

    if bool(args.study) == bool(args.storage):
        raise UserError("give --study S (results/S/optuna.journal) or --storage FILE")
    if args.storage and "://" in args.storage:
        raise UserError(f"{storage.redact(args.storage)} is a database: only journal files need repair")
    path = Path(args.storage) if args.storage else StudyDir(args.results, args.study).journal
    trials_dir = Path(args.trials_dir) if args.trials_dir else None if args.storage else StudyDir(args.results, args.study).trials
    report = rp.repair(path if path.exists() else _no_file(path), trials_dir)
    print(report)
    return 0


def _no_file(path):
    raise UserError(f"no such journal file: {path}")


def _launch_args(p) -> None:
    g = p.add_argument_group("launching")
    g.add_argument("--cluster", default="local", choices=("local", "slurm", "debug"),
                   help="local: submitit jobs on this machine; slurm: job arrays; debug: in this process (default: local)")
    g.add_argument("--parallel", type=_positive, help="local: trials at once (default: #GPUs or 1)")
    g.add_argument("--gpus-per-trial", type=_nonnegative, help="GPUs per trial (default: 1 if any, else 0)")
    g.add_argument("--trials-per-gpu", type=_positive, default=1, metavar="K",
                   help="local: K trials share each GPU at once (small models; default: 1)")
    g.add_argument("--trials-per-job", type=_positive, metavar="N",
                   help="trials run one after another in one job, sharing its start-up "
                        "(default: from the cost estimate, so start-up stays under 5%% of a job; 1 without it)")
    g.add_argument("--fuse", type=_positive, metavar="K",
                   help="train up to K trials that differ only in (lr, wd) in lockstep in one process, one data "
                        "stream and one batched forward/backward (default: 8 with a GPU per trial, else 1)")
    g.add_argument("--tasks-per-trial", type=_positive,
                   help="DDP processes per trial (default: max(1, gpus-per-trial))")
    g.add_argument("--timeout", type=_positive, default=3 * 24 * 60, help="minutes per job (default: 3 days)")
    g.add_argument("--max-requeue", type=_nonnegative, default=3, help="requeues on timeout/preemption (default: 3)")
    g.add_argument("--partition", help="slurm partition")
    g.add_argument("--array-parallelism", type=_positive, default=64, help="slurm: array tasks at once")
    g.add_argument("--slurm-extra", nargs="+", default=[], metavar="KEY=VALUE", help="extra sbatch flags")


def _launch_options(args):
    from bench.runner import launch

    return launch.LaunchOptions(
        cluster=args.cluster, parallel=args.parallel, gpus_per_trial=args.gpus_per_trial,
        trials_per_gpu=args.trials_per_gpu, fuse=args.fuse, tasks_per_trial=args.tasks_per_trial, timeout_min=args.timeout,
        max_requeue=args.max_requeue, partition=args.partition, array_parallelism=args.array_parallelism,
        slurm_extra=_pairs(args.slurm_extra))


def _run_options(args, confirm=None):
    from bench.core.storages import check_name
    from bench.runner import orchestrate

    if args.storage:
        check_name(args.storage)  # before the study's lock file is made

    return orchestrate.RunOptions(results=Path(args.results), storage=args.storage, dry_run=args.dry_run,
                                  confirm=confirm, estimate=not args.no_estimate,
                                  trials_per_job=args.trials_per_job, quiet=args.no_progress,
                                  reference=getattr(args, "reference", None))


def _storage_args(p) -> None:
    p.add_argument("--results", default="results", help="results directory (default: results)")
    p.add_argument("--storage", help="optuna storage URL (e.g. postgresql://...) instead of the journal file")


def _writable(path: Path, flag: str) -> None:
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder: give a file (e.g. {path / 'record.json'})")
    why = cannot_write(path.parent)
    if why:
        raise UserError(f"{flag} {path}: {why}; give a file in a folder you can write")


def _factor(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if not (math.isfinite(v) and v > 1):
        raise argparse.ArgumentTypeError(f"must be a finite number > 1 (e.g. 2), got {s}")
    return v


def _nonnegative(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


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
            raise UserError(f"--slurm-extra takes KEY=VALUE, got {item!r}")
        out[key.replace("-", "_")] = value
    return out


def _tuple(v):
    return tuple(v) if v else None


def _where(args) -> str:
    from bench.runner.storage import redact

    return redact(args.storage) if args.storage else f"{args.results}/"
