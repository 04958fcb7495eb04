"""The study schema: the types a study file is parsed into (:class:`Study`, its :class:`Budget`\\ s and
their lr/wd :class:`Window`\\ s), with the paper's budget as their default."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from bench.core import paper
from bench.core.errors import UserError
from bench.core.identity import DEFAULT_BATCH, DEFAULT_RECIPE

KINDS = ("random", "tuned")  # how a study chooses its (lr, wd) points: drawn at random, or the tuned ones
# The paper's protocol as a budget: ImageNet-1k, its recipe, its batches, its lrs (lr_scale 1).
PAPER_BUDGET = {"data": "imagefolder:data/imagenet", "recipe": "paper", "epoch_scale": 1.0,
                "batch_size": {"default": paper.BATCH, **paper.BATCH_OF}}


class StudyError(UserError):
    """A study file or a name given on the command line is invalid."""


class Range(NamedTuple):
    """A log-uniform range, low < high, both > 0."""

    low: float
    high: float

    def scaled(self, factor: float) -> Range:
        return Range(self.low * factor, self.high * factor)

    def contains(self, v: float) -> bool:
        return self.low * (1 - 1e-9) <= v <= self.high * (1 + 1e-9)

    def including(self, v: float) -> Range:
        """The range widened, if need be, to hold ``v``."""
        return self if self.contains(v) else Range(min(self.low, v), max(self.high, v))

    @property
    def centre(self) -> float:
        """The geometric centre."""
        return math.sqrt(self.low * self.high)


class Window(NamedTuple):
    """The (lr, wd) ranges a family samples under one optimizer; lr per batch 2048."""

    lr: Range
    wd: Range

    def scaled(self, lr_factor: float) -> Window:
        return Window(self.lr.scaled(lr_factor), self.wd)

    def including(self, lr: float, wd: float) -> Window:
        return Window(self.lr.including(lr), self.wd.including(wd))

    @property
    def good_lr(self) -> float:
        """The good value the window is built around (paper.WINDOW: good x [1/8, 4])."""
        return self.lr.low / paper.WINDOW[0]


@dataclass(frozen=True)
class Budget:
    """How much of a study to run and on what data; epochs = max(1, round(paper x epoch_scale)).

    ``lr_scale`` multiplies the study's lrs for (family, optimizer) (1 where it has no entry);
    ``tuned`` holds the budget's own tuned (lr, wd) per (optimizer, model), used as they are.
    """

    name: str
    data: str  # canonical data spec
    recipe: str = DEFAULT_RECIPE
    epoch_scale: float = 1.0
    lr_scale: dict = field(default_factory=dict)  # {(family, optimizer) or (None, optimizer) or (None, None): x}
    trials: int | None = None
    models: tuple[str, ...] | None = None
    batch_size: dict = field(default_factory=lambda: {None: DEFAULT_BATCH})  # {model or None (default): batch}
    resolution: int | None = None
    paper_epochs: tuple[int, ...] | None = None  # the study's paper epochs this budget runs (None: all)
    seeds: int | None = None
    tuned: dict = field(default_factory=dict)  # {(optimizer, model): (lr, wd)}

    def epochs(self, paper_epochs: int) -> int:
        return max(1, round(paper_epochs * self.epoch_scale))

    def lr_factor(self, family: str, optimizer: str) -> float:
        s = self.lr_scale
        return s.get((family, optimizer), s.get((None, optimizer), s.get((None, None), 1.0)))

    def batch_for(self, model: str) -> int:
        return self.batch_size.get(model, self.batch_size[None])


@dataclass(frozen=True)
class Study:
    """A validated study file."""

    name: str
    path: Path
    description: str
    kind: str  # how its points are chosen: one of KINDS (the file's ``points = "random" | "tuned"``)
    seed: int
    trials: int
    epochs: tuple[int, ...]
    models: tuple[str, ...]
    optimizers: tuple[str, ...]
    windows: dict  # {(family, optimizer): Window}
    tuned: dict = field(default_factory=dict)  # {(optimizer, model): (lr, wd)}
    budgets: dict = field(default_factory=dict)  # {name: Budget}
    families: dict = field(default_factory=dict)  # {model: family}, for models bench does not register

    def budget(self, name: str) -> Budget:
        if name not in self.budgets:
            raise StudyError(f"study {self.name!r} has no budget {name!r}; valid: {', '.join(self.budgets)}")
        return self.budgets[name]

    @property
    def family_names(self) -> list[str]:
        return list(dict.fromkeys(f for f, _ in self.windows))

    def window(self, family: str, optimizer: str) -> Window:
        """The paper's (or the study file's) window of a family and optimizer, unscaled."""
        try:
            return self.windows[(family, optimizer)]
        except KeyError:
            raise StudyError(f"study {self.name!r} has no range for family {family!r} and optimizer {optimizer!r} "
                             f"(add [ranges.{family}] {optimizer} = {{ lr = [..], wd = [..] }})") from None
