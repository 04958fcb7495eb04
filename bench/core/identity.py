"""What a trial is, said once: ``TrialConfig`` (what the engine trains) and its canonical identity,
from which everything that names or recognises a trial derives: its key (the trial directory's
name and the ``key`` user attr), the key's digest, the optuna study that holds it, and ``same_run``
(whether a stored result or checkpoint is this trial's). Light: no torch, so the runner can decide
"finished?" without importing the engine.

Adding a field to ``TrialConfig`` changes all of them at once, unless it is named in
``NOT_IDENTITY`` (how a trial runs, not what it is). A field at its default is left out of the
canonical form, so a field added with a default orphans no earlier result, and the digest of every
trial recorded before the field existed stays what it was.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
from dataclasses import dataclass, fields, replace
from bench.core import dataspec
from bench.core.errors import UserError
from bench.core.layout import TrialDir

OPTIMIZERS = ("adamw", "sgd")
RECIPE_NAMES = ("paper", "light")  # bench.recipe.RECIPES, named here so that names are checked without torch
DEFAULT_BATCH, DEFAULT_RECIPE = 128, "light"  # a trial's, a budget's and `bench train`'s
NOT_IDENTITY = ("device", "compile")  # where and how a trial runs: a result is the same run whatever they were
KEY_FIELDS = ("model", "optimizer", "epochs", "seed")  # the readable part of a key (with the point)
DIGEST_FIELDS = ("data", "recipe", "batch_size", "resolution", "lr", "wd")  # hashed after the budget, in this order
STUDY_NAME_PARTS = ("study", "model", "optimizer", "budget")  # the optuna study of a trial: "<study>/<model>/..."


class TrialError(UserError):
    """A trial that cannot run as configured (bad names, values, data or checkpoint)."""


@dataclass(frozen=True)
class TrialConfig:
    """Everything that defines a trial; ``lr`` is for batch 2048 and is scaled to ``batch_size``.
    ``data`` is kept in its canonical form (``synthetic:10000`` is ``synthetic``)."""

    model: str
    optimizer: str
    lr: float
    wd: float
    epochs: int
    batch_size: int = DEFAULT_BATCH
    data: str = "synthetic"
    resolution: int | None = None
    seed: int = 0
    recipe: str = DEFAULT_RECIPE
    device: str | None = None
    compile: bool = False  # torch.compile the training forward

    def __post_init__(self):
        try:
            object.__setattr__(self, "data", dataspec.canonical(self.data))
        except dataspec.DataError as e:
            raise TrialError(str(e)) from None

    def validate(self) -> None:
        """Raise TrialError for values no training can use."""
        from bench.core import models

        try:
            models.check(self.model)  # a bench model, a timm name or a module:function whose module exists
        except models.UnknownModelError as e:
            raise TrialError(str(e)) from None
        checks = [
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.recipe in RECIPE_NAMES, f"recipe must be one of {', '.join(RECIPE_NAMES)}"),
            (self.lr > 0 and math.isfinite(self.lr), f"lr must be a positive number, got {self.lr}"),
            (self.wd >= 0 and math.isfinite(self.wd), f"wd must be >= 0, got {self.wd}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 2 and self.batch_size % 2 == 0, f"batch size must be even and >= 2, got {self.batch_size}"),
        ]
        for ok, message in checks:
            if not ok:
                raise TrialError(message)

    def identity(self) -> dict:
        """The canonical form: every identity field, except those at their default that are neither
        in the key nor in the digest (fields added later)."""
        return {f.name: getattr(self, f.name) for f in _identity_fields(type(self))
                if f.name in _NAMED or getattr(self, f.name) != f.default}


_NAMED = set(KEY_FIELDS) | set(DIGEST_FIELDS)


@functools.cache
def _identity_fields(cls) -> tuple:
    return tuple(f for f in fields(cls) if f.name not in NOT_IDENTITY)


FUSE_FIELDS = ("lr", "wd")  # what trials trained fused in lockstep (bench.fused) may differ in


def fuse_key(cfg: TrialConfig) -> TrialConfig:
    """What fused trials share: the config with its FUSE_FIELDS blanked."""
    return replace(cfg, **{f: 0.0 for f in FUSE_FIELDS})


def trial_key(cfg: TrialConfig, budget: str, point: int) -> str:
    """The deterministic id of a trial: ``<model>-<optimizer>-e<epochs>-p<point>-s<seed>-<digest>``."""
    ident = cfg.identity()
    extra = [[k, v] for k, v in ident.items() if k not in KEY_FIELDS and k not in DIGEST_FIELDS]
    ident["data"] = dataspec.identity(ident["data"])  # a named set by its files, not by where they lie
    hashed = [budget] + [repr(ident[k]) if k in ("lr", "wd") else ident[k] for k in DIGEST_FIELDS] + extra
    digest = hashlib.sha1(json.dumps(hashed).encode()).hexdigest()[:8]
    return f"{cfg.model}-{cfg.optimizer}-e{cfg.epochs}-p{point}-s{cfg.seed}-{digest}"


def study_name(study: str, model: str, optimizer: str, budget: str) -> str:
    """The optuna study holding a bench study's trials of one model, optimizer and budget."""
    return "/".join((study, model, optimizer, budget))


def parse_study_name(name: str) -> dict:
    """The parts of an optuna study name (as many as it has)."""
    return dict(zip(STUDY_NAME_PARTS, name.split("/")))


def same_run(stored, cfg: TrialConfig) -> bool:
    """Whether a stored config (a result's or checkpoint's ``config``) is ``cfg``'s run: the canonical
    forms are equal, a field missing from an older record reading as its default (and a field
    ``cfg`` does not have making it another run)."""
    if not isinstance(stored, dict) or set(stored) - {f.name for f in fields(cfg)}:
        return False
    own = [f for f in fields(cfg) if f.name not in NOT_IDENTITY]
    want = {f.name: getattr(cfg, f.name) for f in own}
    have = {f.name: stored.get(f.name, f.default) for f in own}
    if not isinstance(have["data"], str):
        return False
    try:
        have["data"] = dataspec.identity(have["data"])
    except dataspec.DataError:
        return False
    want["data"] = dataspec.identity(want["data"])
    return have == want


def finished(out_dir, cfg: TrialConfig) -> dict | None:
    """The result in the trial folder ``out_dir`` if it is ``cfg``'s run, else None."""
    result = TrialDir(out_dir).read_result()
    return result if isinstance(result, dict) and same_run(result.get("config"), cfg) else None
