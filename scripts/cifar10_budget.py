"""Measure candidate CIFAR-10 laptop budgets (training images x epochs, at a ladder rung) and record them.

The rule (issue 27), fixed before any run and the same for every arm: a budget qualifies when every arm
of an experiment -- ViTp, ViTc and RegNetY, each with AdamW and with SGD -- ends at or below 45% error
(half of chance) at its calibrated point; the chosen budget is the cheapest candidate that qualifies.
Here each arm trains at the tuned point the synthetic calibration gave its rung
(results/reference/calibration/optimizer_local.json, every arm by one rule), one seed: a screen. The
chosen budget is then calibrated on CIFAR-10 itself with ``bench calibrate``, which places every arm's
window by the same rule and shows whether each arm's calibrated point stays below 45%.

Trials run through ``bench train`` (``--parallel`` at once, one thread each) into ``--work`` and resume
there; the record (``--record``, JSON) holds every arm's error, its per-epoch curve and wall time, and
is rewritten after each trial, so a stopped screen loses nothing.

    python scripts/cifar10_budget.py --data-dir DIR --candidates 50000x4 25000x4 --record FILE
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CALIBRATION = ROOT / "results" / "reference" / "calibration" / "optimizer_local.json"
FAMILIES = ("vitp", "vitc", "regnety")
THRESHOLD = 45.0  # half of chance on 10 classes


def arms(rung: str, families=FAMILIES) -> list[tuple[str, str, float, float]]:
    """(model, optimizer, lr, wd) of every arm at a rung, from the synthetic calibration's tuned points."""
    tuned = json.loads(CALIBRATION.read_text())["tuned"]
    return [(f"{fam}_{rung}", opt, *tuned[opt][f"{fam}_{rung}"]) for fam in families for opt in ("adamw", "sgd")]


def carried(record: dict, rung: str, n: int, e: int) -> list[dict]:
    """Arms at or below the threshold at a shorter budget of the same rung and images: more epochs of the
    same schedule do not raise a converging arm's error (assumed, and stated in the record)."""
    out = {}
    for key, c in sorted(record["candidates"].items(), key=lambda kv: kv[1]["epochs"]):
        if c["rung"] == rung and c["train_images"] == n and c["epochs"] < e:
            for r in c["arms"]:
                if r["error"] <= THRESHOLD:
                    out[(r["model"], r["optimizer"])] = {**r, "carried_from": r.get("carried_from", key)}
    return list(out.values())


def train(data_dir: str, work: Path, rung: str, n: int, epochs: int, arm) -> dict:
    model, opt, lr, wd = arm
    out = work / f"{rung}-n{n}-e{epochs}" / f"{model}-{opt}"
    cmd = ["bench", "train", "--model", model, "--optimizer", opt, "--lr", repr(lr), "--wd", repr(wd),
           "--epochs", str(epochs), "--data", f"cifar10:{data_dir}:{n}", "--out", str(out), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    return dict(model=model, optimizer=opt, lr=lr, wd=wd, error=round(res["error"], 2), diverged=res["diverged"],
                seconds=round(res["seconds"], 1), img_per_s=round(res["img_per_s"], 1),
                curve=[round(c["error"], 2) for c in res["curve"]])


def save(record: dict, entry: dict, path: Path) -> None:
    """The candidate's verdict from the arms it has, and the record written (after every trial)."""
    errs = [r["error"] for r in entry["arms"]]
    entry["worst"] = max(errs, default=None)
    entry["qualifies"] = len(errs) == 2 * len(FAMILIES) and max(errs) <= THRESHOLD
    entry["trial_seconds"] = round(sum(r["seconds"] for r in entry["arms"] if "carried_from" not in r), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", required=True, help="the CIFAR-10 folder (image folders or the python folder)")
    ap.add_argument("--candidates", nargs="+", required=True, help="NxE[@rung] (rung default 4mf), cheapest first")
    ap.add_argument("--record", required=True, help="the JSON record to write")
    ap.add_argument("--work", default="results/cifar10_budget", help="trial folders (scratch, resumable)")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--carry", action="store_true",
                    help="take an arm already at or below the threshold at fewer epochs (same rung, images) as passing")
    a = ap.parse_args()
    record_path = Path(a.record)
    record = json.loads(record_path.read_text()) if record_path.exists() else dict(
        rule=f"every arm <= {THRESHOLD}% error at its calibrated point; the cheapest qualifying candidate is chosen",
        screen="one seed per arm at the synthetic calibration's tuned point of its rung (optimizer_local.json)",
        data=f"cifar10:{a.data_dir}", candidates={})
    for cand in a.candidates:
        size, _, rung = cand.partition("@")
        n, e = (int(v) for v in size.lower().split("x"))
        rung = rung or "4mf"
        key = f"{rung} {n}x{e}"
        entry = record["candidates"].setdefault(key, dict(rung=rung, train_images=n, epochs=e, image_steps=n * e,
                                                          arms=[]))
        if a.carry:
            have = {(r["model"], r["optimizer"]) for r in entry["arms"]}
            entry["arms"] += [r for r in carried(record, rung, n, e) if (r["model"], r["optimizer"]) not in have]
        done = {(r["model"], r["optimizer"]) for r in entry["arms"]}
        todo = [arm for arm in arms(rung) if arm[:2] not in done]
        save(record, entry, record_path)
        with ThreadPoolExecutor(a.parallel) as pool:
            for res in pool.map(lambda arm: train(a.data_dir, Path(a.work), rung, n, e, arm), todo):
                entry["arms"].append(res)
                save(record, entry, record_path)
                print(f"{key} {res['model']} {res['optimizer']}: {res['error']:.2f}% in {res['seconds']:.0f} s",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
