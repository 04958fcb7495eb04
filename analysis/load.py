"""Load trial records (docs/storage.md) into one tidy DataFrame.

Sources: an optuna storage URL, a journal file, a ``results/<study>/`` directory holding
``optuna.journal``, a results root holding several of those, or an exported csv (.csv.gz) or parquet.
Diverged trials stay in at the chance error; FAIL trials are kept with ``state="FAIL"``
and a NaN error so they can be counted, never plotted as results. A storage also gives each
trial's per-epoch curve and provenance (:func:`load`); an exported table has neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.core import identity, layout, records, storages
from bench.core.errors import UserError

TABLES = (".csv", ".csv.gz", ".parquet")  # an exported table (the report's download may be gzipped)
EXTRA_KEYS = ["study", "model", "optimizer", "budget", "trial_number"]  # a trial, across optuna studies
EXTRAS = ("curve", "provenance")  # what a stored trial keeps beyond its table row (bench.core.records)


class AnalysisError(UserError, ValueError):
    """A problem the user can fix (bad path, unknown name, empty data); one-line message."""


def _open_storage(source: str):
    """The storage at ``source`` (bench.core.storages: one line for a bad journal or database)."""
    if not storages.is_url(source) and not Path(source).exists():
        raise AnalysisError(f"{source} not found (expected a results dir, optuna journal, storage URL or csv/parquet)")
    return storages.open_storage(source)


def _from_storage(source: str, study: str | list[str] | None) -> tuple[pd.DataFrame, dict]:
    storage = _open_storage(source)
    summaries = storage.get_all_studies()
    wanted = [study] if isinstance(study, str) else study
    if wanted:
        known = sorted({records.study_of(s) for s in summaries})
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise AnalysisError(f"unknown study {', '.join(unknown)}; valid: {', '.join(known) or '(none)'}")
    attrs = {s.study_name: dict(s.user_attrs) for s in summaries
             if not wanted or records.study_of(s) in wanted}
    return records.from_storage(storage, wanted), attrs, _extras(storage, summaries, wanted)


def _extras(storage, summaries, wanted) -> pd.DataFrame:
    """Per finished trial: its key (EXTRA_KEYS) and what it kept of EXTRAS (None where it has none)."""
    rows = []
    for s in summaries:
        if wanted and records.study_of(s) not in wanted:
            continue
        sid = storage.get_study_id_from_name(s.study_name)
        base = {**identity.parse_study_name(s.study_name), "study": records.study_of(s)}
        rows += [dict(base, trial_number=t.number, **{k: t.user_attrs.get(k) for k in EXTRAS})
                 for t in storage.get_all_trials(sid, deepcopy=False) if t.state.is_finished()]
    return pd.DataFrame(rows, columns=EXTRA_KEYS + list(EXTRAS))


def _from_table(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - unreadable file is a user error
        raise AnalysisError(f"cannot read table {path}: {exc}".splitlines()[0]) from None
    missing = {"model", "optimizer", "error"} - set(df.columns)
    if missing:
        raise AnalysisError(f"table {path} lacks columns: {', '.join(sorted(missing))}")
    _check_errors(df, path)
    return df


def _check_errors(df: pd.DataFrame, path: Path) -> None:
    """Errors are percentages: numbers from 0 to 100, or missing where the run diverged (``diverged``)
    or did not finish (``state`` other than COMPLETE)."""
    err = pd.to_numeric(df["error"], errors="coerce")
    bad = df.index[err.isna() & df["error"].notna()]
    if len(bad):
        raise AnalysisError(f"table {path}: error is not a number in row {bad[0] + 2} ({df['error'][bad[0]]!r}); "
                            "errors are percentages from 0 to 100")
    out = df.index[(err < 0) | (err > 100)]
    if len(out):
        raise AnalysisError(f"table {path}: error {err[out[0]]:g} in row {out[0] + 2} is not a percentage (0 to 100)")
    finished = df["state"].fillna("COMPLETE").eq("COMPLETE") if "state" in df else pd.Series(True, index=df.index)
    diverged = df["diverged"].map(lambda v: str(v).lower() in ("true", "1", "1.0")) if "diverged" in df else False
    empty = df.index[err.isna() & finished & ~diverged]
    if len(empty):
        raise AnalysisError(f"table {path}: {len(empty)} finished row(s) have no error (first: row {empty[0] + 2}) "
                            "and are not marked diverged: mark diverged runs in a `diverged` column (they count at "
                            "chance), failed ones in a `state` column (FAIL), or drop them")


@dataclass
class Loaded:
    """What a source holds: the tidy ``trials``, each optuna study's user ``attrs`` by name, and the
    trials' ``extras`` (EXTRA_KEYS + EXTRAS; empty for a table)."""

    trials: pd.DataFrame
    attrs: dict = field(default_factory=dict)
    extras: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=EXTRA_KEYS + list(EXTRAS)))


def load(source, study=None) -> Loaded:
    """Everything :func:`load_trials` reads from ``source``, with the study attrs and trial extras."""
    src = str(source)
    path = Path(src)
    if storages.is_url(src):
        parts = [_from_storage(src, study)]
    elif path.name.endswith(TABLES):
        if not path.is_file():
            raise AnalysisError(f"no table at {path}")
        df = _from_table(path)
        if study:
            wanted = [study] if isinstance(study, str) else list(study)
            known = sorted(df["study"].dropna().astype(str).unique())
            unknown = [w for w in wanted if w not in known]
            if unknown:
                raise AnalysisError(f"unknown study {', '.join(unknown)}; valid: {', '.join(known) or '(none)'}")
            df = df[df["study"].isin(wanted)]
        _refuse_duplicates(df, path)
        return Loaded(records.tidy(df))
    elif path.is_dir() and (path / layout.JOURNAL).is_file():
        parts = [_from_storage(str(path / layout.JOURNAL), study)]
    elif path.is_dir():
        found = {name: where.journal for name, where in layout.studies_in(path).items()}
        wanted = [study] if isinstance(study, str) else list(study or found)
        unknown = [w for w in wanted if w not in found]
        if unknown or not found:
            valid = ", ".join(found) or f"(none: no */{layout.JOURNAL} under {path})"
            raise AnalysisError(f"unknown study {', '.join(unknown) or '(any)'}; valid: {valid}")
        parts = [_from_storage(str(found[w]), None) for w in wanted]
    else:
        parts = [_from_storage(src, study)]
    df = pd.concat([p[0] for p in parts], ignore_index=True)
    extras = pd.concat([p[2] for p in parts], ignore_index=True)
    return Loaded(records.tidy(df), {k: v for p in parts for k, v in p[1].items()}, extras)


RUN_KEYS = ("study", "budget", "model", "optimizer", "epochs", "point", "seed", "lr", "wd")  # one run


def _refuse_duplicates(df: pd.DataFrame, path: Path) -> None:
    """A table that holds one run twice with different errors (two exports concatenated, say) would be
    averaged into one point without a word: refused, naming the first such run."""
    keys = [k for k in RUN_KEYS if k in df]
    dup = df[df.duplicated(keys, keep=False)]
    clash = dup.groupby(keys, dropna=False)["error"].nunique(dropna=False) > 1 if len(dup) else dup
    if len(clash) and clash.any():
        first = dict(zip(keys, clash[clash].index[0]))
        raise AnalysisError(f"{path}: {int(clash.sum())} run(s) appear more than once with different errors, e.g. "
                            + ", ".join(f"{k}={first[k]}" for k in ("model", "optimizer", "epochs", "point", "seed")
                                        if k in first)
                            + f"; each ({', '.join(keys)}) must be one row: remove the stale copy")


def load_trials_with_attrs(source, study=None) -> tuple[pd.DataFrame, dict]:
    """Like :func:`load_trials`, also returning each optuna study's user attrs by name."""
    got = load(source, study)
    return got.trials, got.attrs


def load_trials(source, study=None) -> pd.DataFrame:
    """Load every finished trial from ``source`` into the tidy table of docs/storage.md.

    ``source``: optuna storage URL, journal file, ``results/<study>/`` dir, results root,
    or a csv/parquet export. ``study`` (name or list) restricts to those studies; an
    unknown name raises :class:`AnalysisError` listing the valid ones.
    """
    return load_trials_with_attrs(source, study)[0]
