"""Expand a resolved study (``bench.core.studies.resolve``) into trial specs."""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

from bench.core import identity
from bench.core.identity import TrialConfig
from bench.core.studies import Overrides, Resolved, Study, resolve

CONFIRM_SEED0 = 1000  # seeds of `--confirm` reruns start here, apart from the search seeds


@dataclass(frozen=True)
class TrialSpec:
    """One training run (``cfg``, what the engine trains) and its place in the study."""

    study_name: str  # the bench study's
    budget: str
    family: str
    point: int
    space: tuple  # the window: ((lr_low, lr_high), (wd_low, wd_high))
    cfg: TrialConfig

    @property
    def optuna_name(self) -> str:
        """The optuna study holding this trial (docs/storage.md)."""
        return identity.study_name(self.study_name, self.cfg.model, self.cfg.optimizer, self.budget)

    @cached_property
    def key(self) -> str:
        """Deterministic id of the trial: its directory name and its ``key`` user attr."""
        return identity.trial_key(self.cfg, self.budget, self.point)


def expand(study: Study, ov: Overrides) -> list[TrialSpec]:
    """All trial specs of a study under a budget: models x optimizers x points x epochs x seeds."""
    return specs_of(resolve(study, ov))


def specs_of(r: Resolved) -> list[TrialSpec]:
    """The trial specs of a resolved study."""
    out = []
    for model in r.models:
        for opt in r.optimizers:
            space = tuple(r.space(model, opt))
            for point, (lr, wd) in enumerate(r.lr_wd(model, opt)):
                for ep in r.epochs:
                    for s in range(r.seeds):
                        cfg = TrialConfig(model=model, optimizer=opt, lr=lr, wd=wd, epochs=ep,
                                          batch_size=r.budget.batch_for(model), data=r.data, resolution=r.resolution,
                                          seed=s, recipe=r.budget.recipe, compile=r.compile)
                        out.append(TrialSpec(study_name=r.study.name, budget=r.budget.name, family=r.family_of[model],
                                             point=point, space=space, cfg=cfg))
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
