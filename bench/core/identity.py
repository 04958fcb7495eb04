"""What a trial is (``TrialConfig``) and the one rule that says whether a stored result or
checkpoint belongs to it (``same_run``). Light: no torch, so the runner can decide "finished?"
without importing the engine."""
from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

from bench.core.errors import UserError


class TrialError(UserError):
    """A trial that cannot run as configured (bad names, values, data or checkpoint)."""


@dataclass(frozen=True)
class TrialConfig:
    """Everything that defines a trial; ``lr`` is for batch 2048 and is scaled to ``batch_size``."""

    model: str
    optimizer: str
    lr: float
    wd: float
    epochs: int
    batch_size: int = 128
    data: str = "synthetic"
    resolution: int | None = None
    seed: int = 0
    recipe: str = "light"
    device: str | None = None  # where it runs, not what it is: not part of its identity
    compile: bool = False  # torch.compile the training forward; how it runs, not part of its identity

    def validate(self) -> None:
        """Raise TrialError for values no training can use."""
        from bench import models
        from bench.recipe import OPTIMIZERS, RECIPES

        try:
            models.check(self.model)  # a bench model, a timm name or an importable module:function
        except models.UnknownModelError as e:
            raise TrialError(str(e)) from None
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.recipe in RECIPES, f"recipe must be one of {', '.join(RECIPES)}"),
            (self.lr > 0 and math.isfinite(self.lr), f"lr must be a positive number, got {self.lr}"),
            (self.wd >= 0 and math.isfinite(self.wd), f"wd must be >= 0, got {self.wd}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 2 and self.batch_size % 2 == 0, f"batch size must be even and >= 2, got {self.batch_size}"),
        ]
        for ok, message in checks:
            if not ok:
                raise TrialError(message)

    @property
    def key(self) -> dict:
        """The fields that define the run (stored with its checkpoint and result)."""
        return {k: v for k, v in asdict(self).items() if k not in _HOW}


_HOW = ("device", "compile")  # execution options: a result is the same run whatever they were
_DEFAULTS = {f.name: f.default for f in fields(TrialConfig) if f.default is not MISSING}


def same_run(stored, cfg: TrialConfig) -> bool:
    """Whether a stored config (a result's or checkpoint's ``config``) is ``cfg``'s run: every field
    that defines the run is equal, and a field missing from an older record reads as its default,
    so adding a field with a default orphans no result."""
    return isinstance(stored, dict) and all(stored.get(k, _DEFAULTS.get(k, MISSING)) == v
                                            for k, v in cfg.key.items())


def finished(out_dir, cfg: TrialConfig) -> dict | None:
    """The result in ``out_dir/result.json`` if it is ``cfg``'s run, else None."""
    try:
        result = json.loads((Path(out_dir) / "result.json").read_text())
    except (OSError, ValueError):
        return None
    return result if same_run(result.get("config"), cfg) else None
