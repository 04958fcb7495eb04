"""What runs on a worker: one trial as a submitit Checkpointable (requeue resumes from disk)."""
from __future__ import annotations

import os
import socket
import threading
import time
import traceback
from pathlib import Path

import submitit

from bench.core.identity import TrialConfig
from bench.core.layout import TrialDir

HEARTBEAT_S = 5.0


class TrialJob(submitit.helpers.Checkpointable):
    """Train a chunk of trials, one after another in one process (``items``: (config, out_dir)
    pairs). Each trial keeps its own dir, checkpoint and result; one that fails leaves its error
    in its dir and the next one starts. On preemption/timeout submitit requeues the job: finished
    trials return their result at once and the interrupted one resumes from its checkpoint (all
    state lives on disk, not in this object). With ``fuse`` > 1, the items that differ only in
    (lr, wd) train in lockstep in groups of at most ``fuse`` (bench.fused); a group that fails
    leaves its error in every member's dir."""

    def __init__(self, items: list[tuple[TrialConfig, str]], threads: int | None = None, fuse: int = 1):
        self.items, self.threads, self.fuse = [(cfg, str(out)) for cfg, out in items], threads, fuse

    def __call__(self) -> list[dict | None]:
        env = submitit.JobEnvironment()
        if self.threads:
            os.environ["OMP_NUM_THREADS"] = str(self.threads)
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        if env.num_tasks > 1:
            _export_distributed()
        rank0 = env.global_rank == 0
        outs = [Path(out) for _, out in self.items]
        stop = threading.Event()
        if rank0:
            threading.Thread(target=_heartbeat, args=(outs, stop), daemon=True).start()
        results: list[dict | None] = [None] * len(self.items)
        try:
            for unit in self._units():
                members = [(self.items[i][0], outs[i]) for i in unit]
                for i, r in zip(unit, self._one(members, env, rank0)):
                    results[i] = r
        finally:
            stop.set()
        if len(results) == 1 and results[0] is None:  # a job of one trial fails as that trial did
            raise RuntimeError(TrialDir(outs[0]).error_line() or "the trial failed")
        return results

    def _units(self) -> list[list[int]]:
        """Indices of the items, one list per run: a fused group, or one trial."""
        if self.fuse <= 1:
            return [[i] for i in range(len(self.items))]
        from bench.fused import groups

        return [[i for _, i in g] for g in groups([(cfg, i) for i, (cfg, _) in enumerate(self.items)], self.fuse)]

    @staticmethod
    def _one(members: list[tuple[TrialConfig, Path]], env, rank0: bool) -> list[dict | None]:
        """Run one trial (or a fused group of them); a failure is recorded in each one's dir."""
        log = lambda *a: print(*a, flush=True)  # noqa: E731
        for _, out in members if rank0 else ():
            out.mkdir(parents=True, exist_ok=True)
            trial = TrialDir(out)
            trial.clear_error()
            trial.add_attempt(dict(
                job_id=env.job_id, host=socket.gethostname(), pid=os.getpid(), time=time.time(), tasks=env.num_tasks,
                restart=int(os.environ.get("SLURM_RESTART_COUNT", 0)), checkpoint=trial.checkpoint.exists(),
                fused=len(members)))
        try:
            if len(members) == 1:
                from bench.trial import run_trial

                return [run_trial(*members[0], log=log)]
            from bench.fused import run_fused

            return run_fused(members, log=log)
        except Exception as e:  # recorded as these trials' failure; their chunk-mates go on
            for _, out in members if rank0 else ():
                TrialDir(out).write_error(f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}")
            print(f"trial(s) in {', '.join(str(o) for _, o in members)} failed: {type(e).__name__}: {e}", flush=True)
            return [None] * len(members)


def _export_distributed() -> None:
    """Set RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT/LOCAL_RANK from submitit's job environment
    (the engine picks GPU ``LOCAL_RANK`` among the job's visible GPUs)."""
    submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)


def _heartbeat(outs: list[Path], stop: threading.Event) -> None:
    """Touch every trial dir's heartbeat: each trial of the chunk is alive while its job is."""
    while True:
        for out in outs:
            if out.is_dir():
                TrialDir(out).beat()
        if stop.wait(HEARTBEAT_S):
            return

