"""The records contract, said once: how a stored trial becomes one row of the tidy table.

``bench export``, :func:`analysis.load_trials` and the report all build their table here, and
the runner stores exactly :data:`RESULT_FIELDS` of an engine result (docs/storage.md). The module
lives on the analysis side and imports neither torch nor ``bench``: the runner imports it, so the
dependency runs one way (bench -> analysis) and the analysis side stays installable alone.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.core import identity

# column -> pandas dtype, in table order
COLUMNS = {
    "study": "string", "model": "string", "family": "string", "optimizer": "string", "budget": "string",
    "epochs": "Int64", "seed": "Int64", "point": "Int64", "sampling_seed": "Int64", "lr": "float64", "wd": "float64",
    "lr_low": "float64", "lr_high": "float64", "wd_low": "float64", "wd_high": "float64", "error": "float64", "raw_error": "float64", "diverged": "bool", "num_classes": "Int64", "chance": "float64",
    "gflops": "float64", "params_m": "float64", "acts_m": "float64", "resolution": "Int64",
    "batch_size": "Int64", "data": "string", "seconds": "float64", "host": "string", "job_id": "string",
    "state": "string", "trial_number": "Int64",
}  # fmt: skip
# what the runner copies from an engine result into the trial's user attrs
RESULT_FIELDS = ("error", "raw_error", "diverged", "num_classes", "chance", "gflops", "params_m", "acts_m",
                 "resolution", "batch_size", "data", "seconds", "curve", "provenance")  # fmt: skip


def upgrade(rec: dict) -> dict:
    """A result or record written before the EMA error became the headline (it had ``error`` =
    raw model, ``ema_error`` = EMA model) in today's terms; others unchanged."""
    if "raw_error" in rec or "ema_error" not in rec:
        return rec
    out = {k: v for k, v in rec.items() if k != "ema_error"}
    return out | {"error": rec["ema_error"], "raw_error": rec.get("error")}


def value(result: dict) -> float | None:
    """The optuna objective of an engine result: its error, or the chance error if it diverged."""
    v = result["chance"] if result.get("diverged") else result.get("error")
    return float(v) if v is not None and math.isfinite(v) else None


def row(trial, study_attrs: dict, study_name: str) -> dict:
    """One table row from an optuna FrozenTrial and its study's user attrs."""
    parts = identity.parse_study_name(study_name)
    attrs = {**parts, **study_attrs, **upgrade(dict(trial.user_attrs)), **trial.params}
    attrs.setdefault("sampling_seed", attrs.get("sampler_seed"))  # the attr's name before 0.2
    space = study_attrs.get("space") or {}
    for hp in ("lr", "wd"):  # the searched window, from the study's attrs
        attrs[f"{hp}_low"], attrs[f"{hp}_high"] = (space.get(hp) or (None, None))[:2]
    out = {c: attrs.get(c) for c in COLUMNS}
    complete = trial.state.name == "COMPLETE"
    if complete and "ema_error" not in trial.user_attrs:
        out["error"] = trial.value  # the objective; equals the error attr except for diverged runs
    elif not complete:
        out["error"] = math.nan
    return out | {"state": trial.state.name, "trial_number": trial.number}


def study_of(summary) -> str:
    """The bench study an optuna study belongs to (its ``study`` attr, else its name's first part)."""
    return summary.user_attrs.get("study", identity.parse_study_name(summary.study_name)["study"])


def from_storage(storage, studies=None) -> pd.DataFrame:
    """The tidy table of every finished trial in an optuna storage (of ``studies`` only, if given)."""
    rows = []
    for s in storage.get_all_studies():
        if studies and study_of(s) not in studies:
            continue
        sid = storage.get_study_id_from_name(s.study_name)
        rows += [row(t, s.user_attrs, s.study_name) for t in storage.get_all_trials(sid, deepcopy=False)
                 if t.state.is_finished()]
    return tidy(pd.DataFrame(rows, columns=list(COLUMNS)))


def tidy(df: pd.DataFrame) -> pd.DataFrame:
    """Columns in order with their dtypes; diverged (or non-finite COMPLETE) trials at the chance error."""
    df = upgrade_table(df).reindex(columns=list(COLUMNS))
    if df["state"].isna().all():
        df["state"] = "COMPLETE"  # a table exported without states holds results only
    for c, dtype in COLUMNS.items():
        if dtype == "float64":
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
        elif dtype == "Int64":
            df[c] = pd.to_numeric(df[c], errors="coerce").round().astype("Int64")
        elif dtype == "string":
            df[c] = df[c].astype("string")
    for c in ("study", "model", "family", "optimizer", "budget", "state"):
        df[c] = df[c].fillna("")
    df["chance"] = df["chance"].fillna(100.0 * (1.0 - 1.0 / df["num_classes"].astype(float)))
    complete = df["state"].eq("COMPLETE")
    div = df["diverged"].map(lambda v: str(v).lower() in ("true", "1", "1.0")).astype(bool)
    df["diverged"] = (div | (complete & ~np.isfinite(df["error"]))) & complete
    df.loc[df["diverged"], "error"] = df.loc[df["diverged"], "chance"]
    return df.reset_index(drop=True)


def upgrade_table(df: pd.DataFrame) -> pd.DataFrame:
    """:func:`upgrade` for a table (an export made before ``raw_error`` existed)."""
    if "raw_error" in df or "ema_error" not in df:
        return df
    return df.assign(raw_error=df["error"], error=df["ema_error"]).drop(columns="ema_error")
