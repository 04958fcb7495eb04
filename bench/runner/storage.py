"""optuna records of trials, exactly as docs/records.md describes them."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from analysis import records
from bench.errors import BenchError
from bench.runner.specs import TrialSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)



class StorageError(BenchError):
    """The storage holds something that contradicts the study file."""


def journal_path(results: Path, study: str) -> Path:
    return Path(results) / study / "optuna.journal"


def open_storage(url_or_path: str | Path, create: bool = True) -> optuna.storages.BaseStorage | None:
    """An RDB storage for a URL (``postgresql://...``), else a journal file (None if absent and not create)."""
    s = str(url_or_path)
    if "://" in s:
        return optuna.storages.RDBStorage(s)
    path = Path(s)
    if not path.exists() and not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def distributions(space) -> dict:
    (lr_lo, lr_hi), (wd_lo, wd_hi) = space
    return {"lr": FloatDistribution(lr_lo, lr_hi, log=True), "wd": FloatDistribution(wd_lo, wd_hi, log=True)}


def get_study(storage, spec: TrialSpec, sampler_seed: int, create: bool = True) -> optuna.Study | None:
    """The optuna study of spec's (study, model, optimizer, budget); checks its search space."""
    name = spec.study_name
    if not create:
        try:
            storage.get_study_id_from_name(name)
        except KeyError:
            return None
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True)
    want = {"space": {"lr": list(spec.space[0]), "wd": list(spec.space[1])}, "sampler_seed": sampler_seed}
    attrs = study.user_attrs
    if "space" not in attrs:
        for k, v in dict(study=spec.study, model=spec.model, optimizer=spec.optimizer, budget=spec.budget,
                         family=spec.family, **want).items():
            study.set_user_attr(k, v)
        return study
    for k, v in want.items():
        if attrs.get(k) != v:
            raise StorageError(f"storage already holds study {name!r} with {k} {attrs.get(k)} but the study file "
                               f"gives {v}: use another --results/--storage or restore the file")
    return study


def by_key(study: optuna.Study) -> dict[str, list]:
    """The study's trials grouped by their ``key`` user attr (oldest first)."""
    out: dict[str, list] = {}
    for t in study.get_trials(deepcopy=False):
        out.setdefault(t.user_attrs.get("key", ""), []).append(t)
    return out


def start(study: optuna.Study, spec: TrialSpec) -> int:
    """Add a RUNNING trial for spec (params, distributions, identity attrs); returns its trial id."""
    attrs = dict(study=spec.study, model=spec.model, optimizer=spec.optimizer, budget=spec.budget,
                 epochs=spec.epochs, seed=spec.seed, point=spec.point, key=spec.key, job_id="", host="")
    template = optuna.trial.create_trial(state=TrialState.RUNNING, params={"lr": spec.lr, "wd": spec.wd},
                                         distributions=distributions(spec.space), user_attrs=attrs)
    return study._storage.create_new_trial(study._study_id, template_trial=template)


def set_attrs(storage, trial_id: int, **attrs) -> None:
    for k, v in attrs.items():
        storage.set_trial_user_attr(trial_id, k, v)


def complete(storage, trial_id: int, result: dict, host: str, job_id: str) -> None:
    """Record an engine result: COMPLETE with value = error (chance error if diverged)."""
    result = records.upgrade(result)
    res = json.loads(json.dumps({k: result.get(k) for k in records.RESULT_FIELDS}, default=float))
    res["diverged"] = bool(res["diverged"])
    value = records.value(res)
    set_attrs(storage, trial_id, **res, host=host, job_id=str(job_id))
    if value is None:
        set_attrs(storage, trial_id, fail_reason="the engine returned no finite error")
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    else:
        storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [value])


def fail(storage, trial_id: int, reason: str, host: str = "", job_id: str = "") -> None:
    """Record a crashed trial: FAIL, with a one-line ``fail_reason``."""
    set_attrs(storage, trial_id, fail_reason=reason[:500], host=host, job_id=str(job_id))
    storage.set_trial_state_values(trial_id, TrialState.FAIL)
