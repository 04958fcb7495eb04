"""Expand a study's plan (``bench.core.studies.resolve``) into trial specs."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from bench.core import identity
from bench.core.identity import TrialConfig
from bench.core.studies import Overrides, Plan, Study, resolve  # noqa: F401 (Overrides: the runner's input)
from bench.runner import sampling

CONFIRM_SEED0 = 1000  # seeds of `--confirm` reruns start here, apart from the search seeds


@dataclass(frozen=True)
class TrialSpec:
    """One training run (``cfg``, what the engine trains) and its place in the study."""

    study: str
    budget: str
    family: str
    point: int
    space: tuple  # the window: ((lr_low, lr_high), (wd_low, wd_high))
    cfg: TrialConfig

    @property
    def study_name(self) -> str:
        """The optuna study holding this trial (docs/storage.md)."""
        return identity.study_name(self.study, self.cfg.model, self.cfg.optimizer, self.budget)

    @cached_property
    def key(self) -> str:
        """Deterministic id of the trial: its directory name and its ``key`` user attr."""
        return identity.trial_key(self.cfg, self.budget, self.point)


def expand(study: Study, ov: Overrides) -> list[TrialSpec]:
    """All trial specs of a study under a budget: models x optimizers x points x epochs x seeds."""
    return specs_of(resolve(study, ov))


def specs_of(plan: Plan) -> list[TrialSpec]:
    """The trial specs of a plan."""
    out = []
    for model in plan.models:
        for opt in plan.optimizers:
            window = plan.window(model, opt)
            if plan.study.points == "tuned":  # a budget's own tuned point may lie outside the family's window
                points = [plan.tuned(model, opt)]
                window = window.including(*points[0])
            else:  # drawn in the study's window, then scaled: bit for bit the lrs trials were keyed by before
                fam = plan.family_of[model]
                factor = plan.budget.lr_factor(fam, opt)
                points = [(lr * factor, wd) for lr, wd in sampling.points(plan.seed, plan.points, plan.study.window(fam, opt))]
            for point, (lr, wd) in enumerate(points):
                for ep in plan.epochs:
                    for s in range(plan.seeds):
                        cfg = TrialConfig(model=model, optimizer=opt, lr=lr, wd=wd, epochs=ep,
                                          batch_size=plan.budget.batch_for(model), data=plan.data,
                                          resolution=plan.resolution, seed=s, recipe=plan.budget.recipe,
                                          compile=plan.compile)
                        out.append(TrialSpec(study=plan.study.name, budget=plan.budget.name,
                                             family=plan.family_of[model], point=point, space=tuple(window), cfg=cfg))
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
