"""What runs on a worker: one trial as a submitit Checkpointable (requeue resumes from disk)."""
from __future__ import annotations

import json
import os
import socket
import threading
import time
import traceback
from pathlib import Path

import submitit

HEARTBEAT_S = 5.0
ERROR_FILE = "error.txt"


class TrialJob(submitit.helpers.Checkpointable):
    """Train one trial in ``out_dir``; on preemption/timeout submitit requeues it, and the engine
    resumes from ``out_dir/checkpoint.pt`` (all state lives on disk, not in this object)."""

    def __init__(self, config: dict, out_dir: str, threads: int | None = None):
        self.config, self.out_dir, self.threads = config, out_dir, threads

    def __call__(self) -> dict:
        env = submitit.JobEnvironment()
        if self.threads:
            os.environ["OMP_NUM_THREADS"] = str(self.threads)
        import torch

        from bench.trial import TrialConfig, run_trial

        if self.threads:
            torch.set_num_threads(self.threads)
        if env.num_tasks > 1:
            _export_distributed()
        out = Path(self.out_dir)
        rank0 = env.global_rank == 0
        stop = threading.Event()
        if rank0:
            out.mkdir(parents=True, exist_ok=True)
            (out / ERROR_FILE).unlink(missing_ok=True)
            _append(out / "attempts.jsonl", dict(
                job_id=env.job_id, host=socket.gethostname(), pid=os.getpid(), time=time.time(), tasks=env.num_tasks,
                restart=int(os.environ.get("SLURM_RESTART_COUNT", 0)),
                checkpoint=(out / "checkpoint.pt").exists()))
            threading.Thread(target=_heartbeat, args=(out / "heartbeat", stop), daemon=True).start()
        try:
            return run_trial(TrialConfig(**self.config), out, log=lambda *a: print(*a, flush=True))
        except Exception as e:
            if rank0:
                (out / ERROR_FILE).write_text(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
            raise
        finally:
            stop.set()


def read_error(out_dir: Path) -> str | None:
    """The first line of the error a job left in its trial dir, if any."""
    p = Path(out_dir) / ERROR_FILE
    return p.read_text().splitlines()[0] if p.exists() else None


def _export_distributed() -> None:
    """Set RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT/LOCAL_RANK from submitit's job environment
    (the engine picks GPU ``LOCAL_RANK`` among the job's visible GPUs)."""
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def _heartbeat(path: Path, stop: threading.Event) -> None:
    while True:
        path.touch()
        if stop.wait(HEARTBEAT_S):
            return


def _append(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
