"""optuna records of trials, exactly as docs/storage.md describes them, behind one handle: ``Store``.

Every ``Store`` method takes optuna study names and trial ids (never an optuna ``Study``), and the
module uses only optuna's public storage API. A journal file is checked on opening (a bad record
names its line and ``bench repair``) and, when opened for writing, healed of a torn tail first.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.distributions import FloatDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from bench.core import records
from bench.core.storages import StorageError, cause, is_url, lost_connection, open_storage, redact  # noqa: F401
from bench.runner.specs import TrialSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)


class StorageUnavailable(StorageError):
    """The storage server stopped answering mid-run."""


class Store:
    """One optuna storage (``optuna``: for optuna's own tools) and what the runner does with it."""

    def __init__(self, storage: optuna.storages.BaseStorage, where: str):
        self.optuna, self.where = storage, where

    @classmethod
    def open(cls, url_or_path: str | Path, create: bool = True) -> Store | None:
        """The storage at a URL or journal file (None: an absent journal, when not ``create``);
        opened for writing (``create``), a journal is healed of a torn tail first."""
        storage = open_storage(url_or_path, create=create)
        return None if storage is None else cls(storage, redact(url_or_path) if is_url(url_or_path) else str(url_or_path))

    # ---- studies
    def optuna_study(self, spec: TrialSpec, sampling_seed: int, create: bool = True) -> str | None:
        """The name of spec's optuna study (created if ``create``, else None if absent), after checking
        that its search space and sampling seed are the study file's."""
        name, new = spec.optuna_name, records.study_attrs(spec, sampling_seed)
        with self._answering():
            try:
                sid = self.optuna.get_study_id_from_name(name)
            except KeyError:
                if not create:
                    return None
                sid = self.optuna.create_new_study([StudyDirection.MINIMIZE], name)
            attrs = self.optuna.get_study_user_attrs(sid)
            if "space" not in attrs:
                for k, v in new.items():
                    self.optuna.set_study_user_attr(sid, k, v)
                return name
        have, want = records.search(attrs), records.search(new)
        for k, v in want.items():
            if have[k] != v:
                raise StorageError(f"storage already holds study {name!r} with {k} {have[k]} but the study file "
                                   f"gives {v}: use another --results/--storage or restore the file")
        return name

    def summaries(self) -> list[tuple[str, dict]]:
        """(study name, study user attrs) of every optuna study in the storage."""
        with self._answering():
            return [(s.study_name, s.user_attrs) for s in self.optuna.get_all_studies()]

    # ---- trials
    def trials(self, study: str, states: tuple[TrialState, ...] | None = None) -> list[FrozenTrial]:
        with self._answering():
            return self.optuna.get_all_trials(self.optuna.get_study_id_from_name(study), deepcopy=False,
                                              states=states)

    def by_key(self, study: str) -> dict[str, list[FrozenTrial]]:
        """The study's trials grouped by their ``key`` user attr (oldest first)."""
        out: dict = {}
        for t in self.trials(study):
            out.setdefault(records.key(t), []).append(t)
        return out

    def trial_id(self, study: str, trial: FrozenTrial) -> int:
        """The storage's id of a trial (a FrozenTrial carries it only privately)."""
        with self._answering():
            return self.optuna.get_trial_id_from_study_id_trial_number(
                self.optuna.get_study_id_from_name(study), trial.number)

    def start(self, study: str, spec: TrialSpec) -> int:
        """Add a RUNNING trial for spec (params, distributions, identity attrs); returns its trial id."""
        template = optuna.trial.create_trial(state=TrialState.RUNNING, params={"lr": spec.cfg.lr, "wd": spec.cfg.wd},
                                             distributions=distributions(spec.space), user_attrs=records.trial_attrs(spec))
        return self.add(study, template)

    def add(self, study: str, template: FrozenTrial) -> int:
        """Add a copy of a trial to a study; returns its trial id."""
        with self._answering():
            return self.optuna.create_new_trial(self.optuna.get_study_id_from_name(study), template_trial=template)

    def attrs(self, trial_id: int) -> dict:
        with self._answering():
            return self.optuna.get_trial_user_attrs(trial_id)

    def state(self, trial_id: int) -> TrialState:
        with self._answering():
            return self.optuna.get_trial(trial_id).state

    def set_attrs(self, trial_id: int, **attrs) -> None:
        with self._answering():
            for k, v in attrs.items():
                self.optuna.set_trial_user_attr(trial_id, k, v)

    def complete(self, trial_id: int, result: dict, host: str, job_id: str) -> TrialState:
        """Record an engine result: COMPLETE with value = error (chance error if diverged; FAIL if
        the error is not finite); returns the state recorded."""
        attrs = records.result_attrs(result, host, job_id)
        value = records.value(attrs)
        self.set_attrs(trial_id, **attrs)
        with self._answering():
            if value is None:
                self.optuna.set_trial_user_attr(trial_id, "fail_reason", "the engine returned no finite error")
                self.optuna.set_trial_state_values(trial_id, TrialState.FAIL)
                return TrialState.FAIL
            self.optuna.set_trial_state_values(trial_id, TrialState.COMPLETE, [value])
            return TrialState.COMPLETE

    def fail(self, trial_id: int, reason: str, host: str = "", job_id: str = "") -> None:
        """Record a crashed trial: FAIL, with a one-line ``fail_reason``."""
        self.set_attrs(trial_id, fail_reason=reason[:500], host=host, job_id=str(job_id))
        with self._answering():
            self.optuna.set_trial_state_values(trial_id, TrialState.FAIL)

    @contextmanager
    def _answering(self):
        """Turn a lost database connection into one StorageUnavailable line."""
        try:
            yield
        except Exception as e:
            if not lost_connection(e):
                raise
            raise StorageUnavailable(f"storage {self.where} stopped answering ({cause(e)}); submitted jobs keep "
                                     "running: rerun the same command once it is back") from None


def distributions(space) -> dict:
    (lr_lo, lr_hi), (wd_lo, wd_hi) = space
    return {"lr": FloatDistribution(lr_lo, lr_hi, log=True), "wd": FloatDistribution(wd_lo, wd_hi, log=True)}
