"""What a fused mini study achieved, from its trial dirs: trials per hour, peak memory and MFU.

    python scripts/fuse_report.py RESULTS/STUDY --seconds WALL --fuse K

Trials/hour counts the result.json files written within WALL seconds (a run cut short by its
timeout still counts its finished trials). MFU is training-only: 6 x the paper's multiply-adds per
image x the images per second of all K members together (each member's ``img_per_s`` is the fused
group's) against the GPU's dense bf16 peak (bench.perf.PEAK_BF16_TFLOPS); evaluation is not in it.
"""
import argparse
import json
from pathlib import Path

from bench.core.layout import StudyDir
from bench.perf import PEAK_BF16_TFLOPS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("study_dir", type=Path)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--fuse", type=int, required=True)
    a = p.parse_args()
    results = [r for r in (t.read_result() for t in StudyDir(a.study_dir.parent, a.study_dir.name).trial_dirs()) if r]
    out = dict(fuse=a.fuse, trials=len(results), seconds=a.seconds, trials_per_hour=len(results) / a.seconds * 3600)
    if results:
        import torch

        rows = [row for r in results for row in r["curve"] if not row["diverged"]]
        img_s = a.fuse * sum(row["img_per_s"] for row in rows) / max(len(rows), 1)
        tflops = 6 * results[0]["gflops"] * 1e9 * img_s / 1e12
        name = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
        peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
        out.update(gpu=name, peak_mem_mb=max(row["peak_mem_mb"] for r in results for row in r["curve"]),
                   train_img_per_s=img_s, tflops=tflops, mfu=tflops / peak if peak else None,
                   diverged=sum(r["diverged"] for r in results))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
