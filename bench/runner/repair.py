"""``bench repair``: rebuild a damaged journal file from its readable records and the trial dirs.

The readable records are replayed by optuna into a scratch storage, and every study and trial is
copied into a fresh journal through optuna's API (so trial ids are consistent again). A trial whose
dir holds a ``result.json`` (the source of truth) is recorded from it: exactly one COMPLETE trial per
finished key. The original file is kept beside the new one as ``<journal>.bak-<time>``.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from bench.core.layout import StudyDir, TrialDir
from bench.core import journal, records
from bench.runner.storage import Store


def repair(path: Path, trials_dir: Path | None) -> str:
    """Rebuild ``path`` in place (the original becomes a backup); returns a one-paragraph report."""
    path = Path(path)
    lock = StudyDir(path.parent.parent, path.parent.name).lock("repairing it")
    with lock, tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        records, dropped = ([], 0) if path.is_dir() else journal.salvage(path)  # a folder holds no records
        journal.write(Path(tmp) / "salvaged", records)
        old = Store(optuna.storages.JournalStorage(JournalFileBackend(str(Path(tmp) / "salvaged"))), "salvaged")
        new_path = Path(tmp) / "rebuilt"
        new = Store(optuna.storages.JournalStorage(JournalFileBackend(str(new_path))), str(path))
        results = _results(trials_dir)
        n_trials, recorded, seen = _copy(old, new, results)
        n_studies = len(new.summaries())
        backup = path.with_name(f"{path.name}.bak-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, backup)
        os.replace(new_path, path)
    lost = sorted(set(results) - seen)
    return (f"repaired {path}: kept {len(records)} readable records, dropped {dropped} unreadable line(s); "
            f"{n_trials} trials in {n_studies} studies, {recorded} recorded from their trial dirs; "
            f"the original is {backup.name}"
            + (f"; {len(lost)} finished trial dir(s) have no record left ({', '.join(lost[:3])}"
               f"{', ...' if len(lost) > 3 else ''}): the next `bench run` of the study records them" if lost else ""))


def _copy(old: Store, new: Store, results: dict[str, dict]) -> tuple[int, int, set]:
    """Copy every study and trial, except that each key with a result.json gets exactly one COMPLETE
    trial, recorded from it (its RUNNING and COMPLETE records are replaced; failed ones are kept)."""
    n_trials = recorded = 0
    seen: set = set()
    for study in old.optuna.get_all_studies():
        sid = new.optuna.create_new_study(study.directions, study.study_name)
        for k, v in study.user_attrs.items():
            new.optuna.set_study_user_attr(sid, k, v)
        last = {}
        for t in old.trials(study.study_name):
            key = records.key(t)
            last[key] = t
            if key not in results or t.state not in (TrialState.RUNNING, TrialState.COMPLETE):
                new.add(study.study_name, t)
                n_trials += 1
        for key in (k for k in last if k in results):
            _record(new, study.study_name, last[key], results[key])
            recorded += 1
        seen |= set(last)
    return n_trials + recorded, recorded, seen


def _record(store: Store, study: str, trial, result: dict) -> None:
    """A RUNNING copy of ``trial`` (params, identity) completed with ``result``."""
    attrs = {k: v for k, v in trial.user_attrs.items() if k != "fail_reason"}
    template = optuna.trial.create_trial(state=TrialState.RUNNING, params=trial.params,
                                         distributions=trial.distributions, user_attrs=attrs)
    tid = store.add(study, template)
    store.complete(tid, result, host=attrs.get("host", ""), job_id=attrs.get("job_id", ""))


def _results(trials_dir: Path | None) -> dict[str, dict]:
    """key -> result.json of every trial dir that has one."""
    out = {}
    for p in sorted(trials_dir.iterdir()) if trials_dir and trials_dir.is_dir() else []:
        result = TrialDir(p).read_result() if p.is_dir() else None
        if isinstance(result, dict) and isinstance(result.get("config"), dict):  # not null, a list, ...
            out[p.name] = result
    return out
