"""Expand a study and a budget (plus command-line overrides) into trial specs."""
from __future__ import annotations

from dataclasses import dataclass, replace

from bench.core import paper
from bench.core import identity
from bench.core.identity import TrialConfig
from bench.runner import sampling
from bench.core.studies import Study, StudyError

CONFIRM_SEED0 = 1000  # seeds of `--confirm` reruns start here, apart from the search seeds


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
    seeds: int | None = None  # None: the budget's, else 1
    family: str | None = None  # ranges for models bench does not register (before the study's [families])
    resolution: int | None = None
    compile: bool = False  # torch.compile every trial's training forward (an execution option)


@dataclass(frozen=True)
class TrialSpec:
    """One training run (``cfg``, what the engine trains) and its place in the study."""

    study: str
    budget: str
    family: str
    point: int
    space: tuple  # ((lr_low, lr_high), (wd_low, wd_high))
    cfg: TrialConfig

    @property
    def study_name(self) -> str:
        """The optuna study holding this trial (docs/records.md)."""
        return identity.study_name(self.study, self.cfg.model, self.cfg.optimizer, self.budget)

    @property
    def key(self) -> str:
        """Deterministic id of the trial: its directory name and its ``key`` user attr."""
        return identity.trial_key(self.cfg, self.budget, self.point)


def expand(study: Study, ov: Overrides) -> list[TrialSpec]:
    """All trial specs of a study under a budget: models x optimizers x points x epochs x seeds."""
    from bench.core import models as registry

    budget = study.budget(ov.budget)
    models = ov.models or budget.models or study.models
    for m in models:
        try:
            registry.check(m)
        except registry.UnknownModelError as e:
            raise StudyError(f"study {study.name!r} (budget {budget.name!r}): {e}") from None
    if ov.family is not None and ov.family not in study.ranges:
        raise StudyError(f"study {study.name!r} has no family {ov.family!r}; it defines: {', '.join(study.ranges)}")
    optimizers = ov.optimizers or study.optimizers
    n = ov.trials or budget.trials or study.trials
    seed = study.seed if ov.seed is None else ov.seed
    epochs = ov.epochs or study.budget_epochs(budget)
    seeds = ov.seeds or budget.seeds or 1
    out = []
    for model in models:
        family = _family(study, model, ov.family)
        for opt in optimizers:
            base = study.space(family, opt)
            space, factor = budget.scale(base, family, opt), budget.lr_factor(family, opt)
            if study.points == "tuned":
                pts = _tuned(study, budget, model, opt, {**space, "lr": tuple(v / factor for v in space["lr"])}, factor)
            else:
                pts = [(lr * factor, wd) for lr, wd in sampling.points(seed, n, base)]
            for point, (lr, wd) in enumerate(pts):
                for ep in epochs:
                    for s in range(seeds):
                        cfg = TrialConfig(model=model, optimizer=opt, lr=lr, wd=wd, epochs=ep,
                                          batch_size=budget.batch_for(model), data=ov.data or budget.data,
                                          resolution=ov.resolution or budget.resolution, seed=s, recipe=budget.recipe,
                                          compile=ov.compile)
                        out.append(TrialSpec(study=study.name, budget=budget.name, family=family, point=point,
                                             space=(space["lr"], space["wd"]), cfg=cfg))
    return out


def confirm(specs: list[TrialSpec], errors: dict, n_best: int, seeds: int) -> list[TrialSpec]:
    """Reruns of the n_best points of each (model, optimizer, epochs), with seeds CONFIRM_SEED0.. .

    ``errors`` maps (model, optimizer, epochs, point) to the final errors of its finished search
    trials (seeds below CONFIRM_SEED0); points are ranked by their mean error.
    """
    best: dict = {}
    for s in specs:
        c = s.cfg
        errs = errors.get((c.model, c.optimizer, c.epochs, s.point))
        if errs and c.seed == 0:
            best.setdefault((c.model, c.optimizer, c.epochs), []).append((sum(errs) / len(errs), s.point, s))
    return [replace(s, cfg=replace(s.cfg, seed=CONFIRM_SEED0 + k))
            for group in best.values() for _, _, s in sorted(group, key=lambda t: t[:2])[:n_best]
            for k in range(seeds)]


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
                         f"[families] \"{model}\" = NAME to the study; its families: {', '.join(study.ranges)}")
    return fam


def _tuned(study: Study, budget, model: str, opt: str, space: dict, factor: float) -> list[tuple[float, float]]:
    """The tuned point of a model: the budget's own (calibrated, used as they are), else the study
    file's or the paper's (Table 4 left) with the budget's lr factor; a model the paper did not tune
    borrows its sibling's (paper.BORROW)."""
    def lookup(table):
        name = model
        while name not in table.get(opt, {}) and name in paper.BORROW:
            name = paper.BORROW[name]
        return table.get(opt, {}).get(name)

    own = lookup(budget.tuned)
    pair = own or lookup(study.tuned) or paper.tuned(model, opt)
    if pair is None:
        have = ", ".join(sorted({*budget.tuned.get(opt, {}), *study.tuned.get(opt, {}), *paper.TUNED, *paper.BORROW}))
        raise StudyError(f"study {study.name!r} has no tuned {opt} values for {model!r} (add it under "
                         f"[budgets.{budget.name}.tuned.{opt}] or [tuned.{opt}]); known: {have or '(none)'}")
    lr, wd = (float(pair[0]), float(pair[1])) if own else (float(pair[0]) * factor, float(pair[1]))
    for name, v, (lo, hi) in (("lr", lr, tuple(x * factor for x in space["lr"])), ("wd", wd, space["wd"])):
        if not lo <= v <= hi:
            raise StudyError(f"study {study.name!r}: tuned {opt} {name} {v:g} of {model!r} is outside its range "
                             f"[{lo:g}, {hi:g}]")
    return [(lr, wd)]
