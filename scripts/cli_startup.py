"""Wall time of `bench` commands that should answer at once, each run N times in fresh processes.

    python scripts/cli_startup.py [-n 5] [--repo DIR]

Runs them on a study of 16 recorded trials it writes to a temporary results dir (with this
checkout's runner), against the code in --repo (default: this checkout; give another checkout
to measure a baseline). Prints the median (and min/max) seconds per command, and whether torch or
timm got imported (checked with `python -X importtime`). Run it on an idle machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commands(study: str, results: str, out: str) -> dict[str, list[str]]:
    src = ["--study", study, "--results", results]
    return {
        "bench --help": ["--help"],
        "bench status": ["status", *src],
        "bench export": ["export", *src, "--out", f"{out}/t.csv"],
        "bench run --dry-run --no-estimate": ["run", "--study", study, "--results", f"{out}/fresh", "--dry-run",
                                              "--no-estimate"],
        "bench plot edf": ["plot", "edf", *src, "--out", f"{out}/edf.png"],
        "bench report": ["report", *src, "--out", f"{out}/report.html"],
    }


def seed(results: Path) -> None:
    """A lr_wd study of 16 finished trials (errors made up: only the commands' start-up is timed)."""
    sys.path.insert(0, str(ROOT))
    from bench.core import studies
    from bench.core.layout import StudyDir
    from bench.runner import storage
    from bench.runner.specs import expand

    store = storage.Store.open(StudyDir(results, "lr_wd").journal)
    specs = expand(studies.load("lr_wd"), studies.Overrides(models=("vitp_mini", "vitc_mini"), trials=4))
    for i, s in enumerate(specs):
        err = 20.0 + (7 * i) % 30
        store.complete(store.start(store.optuna_study(s, 0), s), dict(
            error=err, raw_error=err, diverged=False, num_classes=10, chance=90.0, gflops=0.0045, params_m=0.2,
            acts_m=0.05, resolution=32, batch_size=s.cfg.batch_size, data=s.cfg.data, seconds=1.0,
            curve=[dict(epoch=1, train_loss=1.0, error=err, raw_error=err, img_per_s=1.0, seconds=1.0,
                        peak_mem_mb=1.0)]), host="h", job_id="1")


def timed(argv: list[str], repo: Path) -> tuple[float, set]:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    tic = time.perf_counter()
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "bench.cli", *argv], env=env, cwd=repo,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - tic
    if out.returncode:
        raise SystemExit(f"bench {' '.join(argv)} failed: {out.stderr.strip().splitlines()[-1]}")
    heavy = {name for line in out.stderr.splitlines() if "|" in line
             for name in [line.rsplit("|", 1)[1].strip()] if name in ("torch", "timm")}
    return seconds, heavy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=5, help="fresh runs per command (default: 5)")
    ap.add_argument("--repo", type=Path, default=ROOT, help="checkout whose bench/ is timed")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as out:
        seed(Path(out) / "results")
        print(f"{'command':36s} {'median s':>8s} {'min':>6s} {'max':>6s}  imports")
        for name, argv in commands("lr_wd", f"{out}/results", out).items():
            runs = [timed(argv, args.repo) for _ in range(args.n)]
            secs = [s for s, _ in runs]
            heavy = set().union(*(h for _, h in runs))
            print(f"{name:36s} {statistics.median(secs):8.2f} {min(secs):6.2f} {max(secs):6.2f}  "
                  f"{', '.join(sorted(heavy)) or '-'}")


if __name__ == "__main__":
    main()
