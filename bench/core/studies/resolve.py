"""What a study runs under a budget and the command line's overrides: :func:`resolve` applies the
precedence once and returns a :class:`Resolved`, whose :meth:`Resolved.lr_wd` is the one place a
model's (lr, wd) points are made (drawn in the study's window, then the lr scaled)."""
from __future__ import annotations

from dataclasses import dataclass, replace

from bench.core import dataspec, paper, sampling
from bench.core.studies.schema import Budget, Study, StudyError, Window


@dataclass(frozen=True)
class Overrides:
    """Command-line values that replace the study file's (None: keep the file's)."""

    budget: str = "local"
    models: tuple[str, ...] | None = None
    optimizers: tuple[str, ...] | None = None
    trials: int | None = None
    epochs: tuple[int, ...] | None = None
    data: str | None = None
    seed: int | None = None
    seeds: int | None = None
    family: str | None = None  # ranges for models bench does not register (before the study's [families])
    resolution: int | None = None
    compile: bool = False  # torch.compile every trial's training forward (an execution option)


@dataclass(frozen=True)
class Resolved:
    """A study under a budget and overrides: every value after precedence."""

    study: Study
    budget: Budget
    models: tuple[str, ...]
    optimizers: tuple[str, ...]
    n_points: int  # (lr, wd) points per model and optimizer (tuned studies: one)
    seed: int  # sampling seed
    epochs: tuple[int, ...]
    seeds: int  # training seeds per point
    data: str  # canonical
    resolution: int | None
    compile: bool
    family_of: dict  # {model: family}

    def lr_factor(self, model: str, optimizer: str) -> float:
        """The budget's lr_scale for the model's family and the optimizer."""
        return self.budget.lr_factor(self.family_of[model], optimizer)

    def window(self, model: str, optimizer: str) -> Window:
        """The window a model's points are drawn from: the study's for its family x the budget's lr_scale."""
        return self.study.window(self.family_of[model], optimizer).scaled(self.lr_factor(model, optimizer))

    def lr_wd(self, model: str, optimizer: str) -> list[tuple[float, float]]:
        """The model's (lr, wd) points, point i first. Random: draw i of the sampling seed in the study's
        window, its lr then times the lr_scale (this order, bit for bit, is what trials were keyed by);
        tuned: the one tuned point."""
        if self.study.kind == "tuned":
            return [self.tuned(model, optimizer)]
        factor = self.lr_factor(model, optimizer)
        unscaled = self.study.window(self.family_of[model], optimizer)
        return [(lr * factor, wd) for lr, wd in sampling.pairs(self.seed, self.n_points, unscaled)]

    def space(self, model: str, optimizer: str) -> Window:
        """The window recorded as the model's search space: its window, widened to hold a tuned point
        (a budget's own tuned point may lie outside it)."""
        window = self.window(model, optimizer)
        return window.including(*self.tuned(model, optimizer)) if self.study.kind == "tuned" else window

    def tuned(self, model: str, optimizer: str) -> tuple[float, float]:
        """A model's tuned point: the budget's own (calibrated per model: as it is, wherever the family's
        window is), else the study file's or the paper's (Table 4 left) x the budget's lr_scale, which
        must lie in the model's window; a model the paper did not tune borrows its sibling's (paper.BORROW)."""
        own = _borrowed(self.budget.tuned, optimizer, model)
        pair = own or _borrowed(self.study.tuned, optimizer, model) or paper.tuned(model, optimizer)
        if pair is None:
            have = sorted({m for o, m in (*self.budget.tuned, *self.study.tuned) if o == optimizer} | set(paper.TUNED))
            raise StudyError(f"study {self.study.name!r} has no tuned {optimizer} values for {model!r} (add it under "
                             f"[budgets.{self.budget.name}.tuned.{optimizer}] or [tuned.{optimizer}]); known: "
                             f"{', '.join(have) or '(none)'}")
        if own:
            return float(own[0]), float(own[1])
        lr, wd = pair[0] * self.lr_factor(model, optimizer), pair[1]
        window = self.window(model, optimizer)
        for name, v, r in (("lr", lr, window.lr), ("wd", wd, window.wd)):
            if not r.contains(v):
                raise StudyError(f"study {self.study.name!r}: tuned {optimizer} {name} {v:g} of {model!r} is outside "
                                 f"its range [{r.low:g}, {r.high:g}]")
        return lr, wd


def resolve(study: Study, ov: Overrides, check_model=None) -> Resolved:
    """The study under ``ov``: override, else budget, else study file, else paper.
    ``check_model(name)`` raises for a model name that names no model (bench.core.models.check)."""
    from bench.core import models as registry

    budget = study.budget(ov.budget)
    models = ov.models or budget.models or study.models
    for m in models:
        try:
            (check_model or registry.check)(m)
        except registry.UnknownModelError as e:
            raise StudyError(f"study {study.name!r} (budget {budget.name!r}): {e}") from None
    if ov.family is not None and ov.family not in study.family_names:
        raise StudyError(f"study {study.name!r} has no family {ov.family!r}; it defines: {', '.join(study.family_names)}")
    try:
        data = dataspec.canonical(ov.data or budget.data)
    except dataspec.DataError as e:
        raise StudyError(str(e)) from None
    return Resolved(study=study, budget=budget, models=tuple(models), optimizers=tuple(ov.optimizers or study.optimizers),
                    n_points=1 if study.kind == "tuned" else ov.trials or budget.trials or study.trials,
                    seed=study.seed if ov.seed is None else ov.seed,
                    epochs=tuple(ov.epochs or dict.fromkeys(budget.epochs(e) for e in budget.paper_epochs or study.epochs)),
                    seeds=ov.seeds or budget.seeds or 1, data=data, resolution=ov.resolution or budget.resolution,
                    compile=ov.compile, family_of={m: _family(study, m, ov.family) for m in models})


def with_data(study: Study, budget: str, data: str) -> Study:
    """The study with one budget's data replaced (``bench calibrate --data``)."""
    try:
        data = dataspec.canonical(data)
    except dataspec.DataError as e:
        raise StudyError(f"--data: {e}") from None
    return replace(study, budgets={**study.budgets, budget: replace(study.budget(budget), data=data)})


def _family(study: Study, model: str, override: str | None) -> str:
    """Whose lr/wd ranges a model takes: a bench model its own; any other ``--family``, else the
    study's ``[families]`` entry; no default."""
    from bench.core.models import family

    own, listed = family(model), study.families.get(model)
    if own and listed and listed != own:
        raise StudyError(f"study {study.name!r}: [families] gives {model!r} family {listed!r}, but bench's "
                         f"{model!r} is a {own!r} model")
    fam = own or override or listed
    if fam is None:
        raise StudyError(f"model {model!r} has no lr/wd ranges in study {study.name!r}: pass --family NAME or add "
                         f"[families] \"{model}\" = NAME to the study; its families: {', '.join(study.family_names)}")
    return fam


def _borrowed(table: dict, optimizer: str, model: str):
    """``table[(optimizer, model)]``, or the entry of the model it borrows from (paper.BORROW), if any."""
    while (optimizer, model) not in table and model in paper.BORROW:
        model = paper.BORROW[model]
    return table.get((optimizer, model))
