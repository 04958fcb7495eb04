"""Executors: local (own queue, GPU and CPU split), slurm (job arrays), debug (in-process)."""
from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import submitit

from bench.core.errors import UserError
from bench.runner.job import TrialJob

CLUSTERS = ("local", "slurm", "debug")
DETACH = "trap '' INT HUP"  # the shell line a local job starts with
# a job's python: -P keeps its working directory (the submitting one) off the front of sys.path, where
# `python -m` would put it and a bench/ folder there would shadow the bench that planned the job
PYTHON = f"{shlex.quote(sys.executable)} -P"
FUSE_GPU = 8  # the default --fuse where trials get a GPU (on CPU fusing saves nothing: 1)
_SLURM_LIVE = {"PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD",
               "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT"}


@dataclass
class LaunchOptions:
    """How trials are launched (``bench run`` flags)."""

    cluster: str = "local"
    parallel: int | None = None  # local: trials at once (default: #GPUs // gpus_per_trial, else 1)
    gpus_per_trial: int | None = None  # default: 1 if a GPU is visible, else 0
    tasks_per_trial: int | None = None  # DDP processes per trial (default: max(1, gpus_per_trial))
    trials_per_gpu: int = 1  # local: trials sharing one GPU at once (small models leave a GPU mostly idle)
    fuse: int | None = None  # trials differing only in (lr, wd) trained in lockstep (default: FUSE_GPU with GPUs, else 1)
    timeout_min: int = 3 * 24 * 60
    max_requeue: int = 3  # submitit max_num_timeout (every signal counts when timeout_min <= 10)
    partition: str | None = None
    array_parallelism: int = 64
    slurm_extra: dict = field(default_factory=dict)


class Launcher:
    """Submit trial jobs, at most ``capacity`` at once; jobs log to ``folder``."""

    capacity: float = float("inf")

    def __init__(self, opts: LaunchOptions, folder: Path):
        self.opts, self.folder = opts, Path(folder)
        gpus = opts.gpus_per_trial
        self.gpus = (1 if _visible_gpus() else 0) if gpus is None else gpus
        self.tasks = opts.tasks_per_trial or max(1, self.gpus)
        if (opts.fuse or 1) > 1 and self.tasks > 1:
            raise UserError(f"--fuse {opts.fuse} trains in one process: it does not combine with {self.tasks} tasks per trial")
        self.fuse = opts.fuse or (FUSE_GPU if self.gpus and self.tasks == 1 else 1)

    def submit(self, chunks: list[list[tuple[dict, Path]]]) -> list:
        """Submit chunks of (config, out_dir) items, one job per chunk; returns the jobs in order."""
        raise NotImplementedError

    def release(self, job) -> None:
        """Called once a job has ended (frees its GPUs)."""

    @staticmethod
    def alive(job_id: str, host: str) -> bool | None:
        """Whether a job submitted by an earlier runner (on ``host``) is still queued or running;
        None if this machine cannot tell."""
        return False


class LocalLauncher(Launcher):
    """submitit LocalExecutor, queued here: LocalExecutor itself starts every job at once."""

    def __init__(self, opts: LaunchOptions, folder: Path):
        super().__init__(opts, folder)
        visible, k = list(_visible_gpus()), opts.trials_per_gpu
        if self.gpus > len(visible):
            raise UserError(f"--gpus-per-trial {self.gpus} but only {len(visible)} GPU(s) are visible")
        if k > 1 and self.gpus != 1:
            raise UserError(f"--trials-per-gpu {k} needs exactly one GPU per trial (--gpus-per-trial 1), got {self.gpus}")
        self.free_gpus = [g for g in visible for _ in range(k)]  # each GPU has k places
        self.capacity = opts.parallel or (len(self.free_gpus) // self.gpus if self.gpus else 1)
        self.threads = max(1, (os.cpu_count() or 1) // (self.capacity * self.tasks))
        self._held: dict[str, list[int]] = {}

    def submit(self, chunks):
        jobs = []
        for chunk in chunks:
            gpus, self.free_gpus = self.free_gpus[:self.gpus], self.free_gpus[self.gpus:]
            ex = submitit.LocalExecutor(folder=self.folder / "%j", max_num_timeout=self.opts.max_requeue, python=PYTHON)
            # a terminal's Ctrl-C (SIGINT) and hang-up reach the runner's whole process group, which
            # submitit starts its local jobs in: the job's shell ignores both, and so, inheriting that,
            # do its controller and its tasks; the runner stops, the jobs train on (kill them by pid)
            ex.update_parameters(timeout_min=self.opts.timeout_min, tasks_per_node=self.tasks,
                                 gpus_per_node=len(gpus), visible_gpus=tuple(gpus), setup=[DETACH])
            job = ex.submit(TrialJob(chunk, self.threads, self.fuse))
            self._held[job.job_id] = gpus
            jobs.append(job)
        return jobs

    def release(self, job):
        self.free_gpus += self._held.pop(job.job_id, [])

    @staticmethod
    def alive(job_id, host):
        if host != socket.gethostname():
            return None
        try:
            return b"submitit" in Path(f"/proc/{int(job_id)}/cmdline").read_bytes()
        except (OSError, ValueError):
            return False


class SlurmLauncher(Launcher):
    """One Slurm job array per submit call (``--array=0-N%array_parallelism``)."""

    def submit(self, chunks):
        o = self.opts
        ex = submitit.AutoExecutor(folder=self.folder / "%j", cluster="slurm", slurm_max_num_timeout=o.max_requeue,
                                   slurm_python=PYTHON)
        params = dict(timeout_min=o.timeout_min, tasks_per_node=self.tasks, nodes=1,
                      slurm_array_parallelism=o.array_parallelism, slurm_additional_parameters=dict(o.slurm_extra))
        if self.gpus:
            params["gpus_per_node"] = self.gpus
        if o.partition:
            params["slurm_partition"] = o.partition
        ex.update_parameters(**params)
        with ex.batch():
            jobs = [ex.submit(TrialJob(chunk, fuse=self.fuse)) for chunk in chunks]
        return jobs

    @staticmethod
    def alive(job_id, host):
        try:
            out = subprocess.run(["squeue", "-h", "-j", str(job_id), "-o", "%T"], capture_output=True, text=True,
                                 timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode and "Invalid job id" not in out.stderr:
            return None
        return bool(set(out.stdout.split()) & _SLURM_LIVE)


class DebugLauncher(Launcher):
    """In-process, one trial at a time, at ``submit`` (no pickling, no subprocess)."""

    capacity = 1

    def submit(self, chunks):
        return [_DebugJob(TrialJob(chunk, fuse=self.fuse)) for chunk in chunks]


class _DebugJob:
    """The finished-at-once job of DebugLauncher (same surface as a submitit job)."""

    _count = 0

    def __init__(self, fn: TrialJob):
        _DebugJob._count += 1
        self.job_id, self._exc = f"debug_{os.getpid()}_{_DebugJob._count}", None
        old = os.environ.get("SUBMITIT_DEBUG_JOB_ID")
        os.environ["SUBMITIT_DEBUG_JOB_ID"] = self.job_id
        try:
            fn()
        except Exception as e:
            self._exc = e
        finally:
            os.environ.pop("SUBMITIT_DEBUG_JOB_ID") if old is None else os.environ.update(SUBMITIT_DEBUG_JOB_ID=old)

    def done(self) -> bool:
        return True

    def exception(self):
        return self._exc


def make(opts: LaunchOptions, folder: Path, factories: bool = False) -> Launcher:
    """The launcher of ``opts.cluster``. Jobs import the ``bench`` that planned them: its folder goes
    first on their PYTHONPATH, so a ``bench/`` folder in the working directory (another checkout, say)
    cannot shadow it; the working directory follows only when a model is a ``module:function``
    factory, which imports from there."""
    if opts.cluster not in CLUSTERS:
        raise UserError(f"unknown cluster {opts.cluster!r}; valid: {', '.join(CLUSTERS)}")
    own = str(Path(__file__).resolve().parents[2])  # the folder holding the bench package that runs
    paths = [own] + ([os.getcwd()] if factories else [])
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in paths]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths + rest)
    return {"local": LocalLauncher, "slurm": SlurmLauncher, "debug": DebugLauncher}[opts.cluster](opts, folder)


def alive(cluster: str, job_id: str, host: str) -> bool | None:
    """Whether job ``job_id`` of ``cluster`` still lives (None: cannot tell from here)."""
    return {"local": LocalLauncher, "slurm": SlurmLauncher}.get(cluster, Launcher).alive(job_id, host)


def _visible_gpus() -> list[int]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [int(g) for g in env.split(",") if g.strip().isdigit()]
    if not (shutil.which("nvidia-smi") or shutil.which("rocm-smi")):  # no GPU driver: spare the torch import
        return []
    import torch

    return list(range(torch.cuda.device_count()))
