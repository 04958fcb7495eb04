"""Helpers for the analysis tests: write trial tables into a real optuna JournalStorage exactly
as docs/records.md specifies (imported by tests/test_analysis_*.py)."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from bench.core import records
from bench.core.paper import RANGES

ATTRS = [c for c in records.COLUMNS if c not in ("family", "lr", "wd", "state", "trial_number")]


def _plain(v):
    return v.item() if hasattr(v, "item") else v


def write_journal(df, path: Path, failed: int = 0) -> Path:
    """One optuna study per (study, model, optimizer, budget) named "<study>/<model>/<optimizer>/<budget>";
    each row becomes a COMPLETE trial (diverged ones at value = chance); ``failed`` extra FAIL
    trials per optuna study."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    for (s, m, f, o, b), g in df.groupby(["study", "model", "family", "optimizer", "budget"], sort=False):
        study = optuna.create_study(study_name=f"{s}/{m}/{o}/{b}", storage=storage, direction="minimize")
        for k, v in dict(study=s, model=m, optimizer=o, budget=b, family=f).items():
            study.set_user_attr(k, v)
        dist = {hp: FloatDistribution(*RANGES[(f, o)][hp], log=True) for hp in ("lr", "wd")}
        trials = []
        for r in g.to_dict("records"):
            ua = {k: _plain(r[k]) for k in ATTRS}
            ua["diverged"] = bool(ua["diverged"])
            ua["curve"] = [{"epoch": 0, "train_loss": 6.9, "error": ua["error"], "raw_error": ua["raw_error"],
                            "img_per_s": 100.0, "seconds": 1.0, "peak_mem_mb": 10.0}]  # fmt: skip
            params = {hp: min(max(float(r[hp]), dist[hp].low), dist[hp].high) for hp in ("lr", "wd")}
            value = ua["chance"] if ua["diverged"] else ua["error"]
            trials.append(optuna.trial.create_trial(value=value, params=params, distributions=dist, user_attrs=ua))
        for i in range(failed):
            ua = {"study": s, "model": m, "optimizer": o, "budget": b, "point": i, "seed": 0, "diverged": False}
            trials.append(optuna.trial.create_trial(state=TrialState.FAIL, params=params, distributions=dist, user_attrs=ua))
        study.add_trials(trials)
    return path


def empty_journal(path: Path, name: str = "empty") -> Path:
    """A journal holding one optuna study with no trials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name=f"{name}/vitc_mini/adamw/laptop", storage=storage)
    for k, v in dict(study=name, model="vitc_mini", optimizer="adamw", budget="laptop", family="vit").items():
        study.set_user_attr(k, v)
    return path

