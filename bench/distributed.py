"""torch.distributed set-up from the standard env vars (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*).

submitit's ``TorchDistributedEnvironment().export()`` sets them in a Slurm or local job; torchrun does
too.  Without them (WORLD_SIZE unset or 1) every method is a no-op and training is single-process.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from torch import nn


@dataclass(frozen=True)
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "DistEnv":
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str | None) -> torch.device:
        """The requested device, else this rank's GPU when there is one, else the CPU."""
        if requested:
            return torch.device(requested)
        return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else torch.device("cpu")

    @contextlib.contextmanager
    def session(self):
        """Initialise the process group (NCCL on GPU, gloo on CPU) for the block, if distributed."""
        if not self.enabled or tdist.is_initialized():
            yield
            return
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(self.local_rank)
        tdist.init_process_group(backend, rank=self.rank, world_size=self.world_size)
        try:
            yield
        finally:
            tdist.destroy_process_group()

    def wrap(self, model: nn.Module) -> nn.Module:
        if not self.enabled:
            return model
        ids = [self.local_rank] if torch.cuda.is_available() else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def all_reduce(self, tensor: torch.Tensor) -> None:
        if self.enabled:
            tdist.all_reduce(tensor)

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier()
