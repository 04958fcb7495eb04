"""Benchmark: time to load and report on N synthetic trials (default 100k).

Usage: python scripts/bench_report.py [--trials 100000] [--out DIR]
Prints seconds per stage and the report size. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import load, report, synthetic  # noqa: E402

MODELS = [f"{f}_{s}" for f in ("vitp", "vitc") for s in ("1gf", "4gf", "18gf", "36gf")] + [
    f"regnety_{s}" for s in ("1gf", "4gf", "16gf", "32gf")
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, default=2, help="seed replicates per point")
    ap.add_argument("--out", help="directory for the table and report (default: a temp dir)")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_report_"))
    out.mkdir(parents=True, exist_ok=True)
    points = max(1, round(args.trials / (len(MODELS) * 2 * args.seeds)))

    t0 = time.perf_counter()
    df = synthetic.trials(n_points=points, models=MODELS, seeds=args.seeds, study="bench")
    df.to_parquet(out / "trials.parquet")
    t1 = time.perf_counter()
    df = load.load_trials(out / "trials.parquet")
    t2 = time.perf_counter()
    html = report.build(df, title=f"benchmark: {len(df)} trials", source=str(out / "trials.parquet"))
    t3 = time.perf_counter()
    path = report.write(html, out / "report.html")
    t4 = time.perf_counter()

    print(f"trials             {len(df)} ({len(MODELS)} models x 2 optimizers x {points} points x {args.seeds} seeds)")
    print(f"synthesise+parquet {t1 - t0:6.2f} s")
    print(f"load_trials        {t2 - t1:6.2f} s")
    print(f"report.build       {t3 - t2:6.2f} s")
    print(f"write              {t4 - t3:6.2f} s")
    print(f"load+report total  {t4 - t1:6.2f} s  (target < 10 s on 2 cores)")
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"cpu: this process  {me.ru_utime + me.ru_stime:6.2f} s, worker processes {kids.ru_utime + kids.ru_stime:6.2f} s")
    print(f"load average       {os.getloadavg()[0]:6.2f} on {os.cpu_count()} cores (other jobs slow the wall times)")
    print(f"report size        {path.stat().st_size / 1e6:6.2f} MB  -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
