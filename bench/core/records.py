"""The records contract, said once: the user attrs the runner writes into optuna (docs/storage.md)
and how a stored trial becomes one row of the tidy table, each written and read here.

The runner stores :func:`study_attrs`, :func:`trial_attrs` and :func:`result_attrs` (exactly
:data:`RESULT_FIELDS` of an engine result); ``bench export``, :func:`analysis.load_trials` and the
report build their table with :func:`from_storage` / :func:`tidy`. Part of the foundation: it
imports neither torch nor the engine, the runner or ``analysis``.
"""

from __future__ import annotations

import json
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
SEARCH = ("space", "sampling_seed")  # what a stored study must agree on to take more trials


def chance_error(num_classes):
    """The top-1 error (%) of a guess: a diverged trial's error (a number, or a column of them)."""
    return 100.0 * (1.0 - 1.0 / num_classes)


def study_attrs(spec, sampling_seed: int) -> dict:
    """The user attrs of the optuna study that holds a trial spec (bench.runner.specs.TrialSpec)."""
    c = spec.cfg
    return dict(study=spec.study_name, model=c.model, optimizer=c.optimizer, budget=spec.budget, family=spec.family,
                space={"lr": list(spec.space[0]), "wd": list(spec.space[1])}, sampling_seed=sampling_seed)


def search(attrs: dict) -> dict:
    """The :data:`SEARCH` attrs of a study's user attrs (None where absent)."""
    return {"space": attrs.get("space"), "sampling_seed": sampling_seed(attrs)}


def sampling_seed(attrs: dict) -> int | None:
    """A study's sampling seed; journals written before 0.2 name the attr ``sampler_seed``."""
    return attrs.get("sampling_seed", attrs.get("sampler_seed"))


def trial_attrs(spec) -> dict:
    """The user attrs a trial starts with: its place in the study and its ``key``."""
    c = spec.cfg
    return dict(study=spec.study_name, model=c.model, optimizer=c.optimizer, budget=spec.budget, epochs=c.epochs,
                seed=c.seed, point=spec.point, key=spec.key, job_id="", host="")


def key(trial) -> str | None:
    """A stored trial's ``key`` (its trial folder's name); None for a trial that bench did not start."""
    return trial.user_attrs.get("key")


def result_attrs(result: dict, host: str, job_id) -> dict:
    """The user attrs an engine result adds to its trial: its :data:`RESULT_FIELDS` as plain JSON, and
    where it ran."""
    result = upgrade(result)
    res = json.loads(json.dumps({k: result.get(k) for k in RESULT_FIELDS}, default=float))
    res["diverged"] = bool(res["diverged"])
    return {**res, "host": host, "job_id": str(job_id)}


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


def row(trial, of_study: dict, study_name: str) -> dict:
    """One table row from an optuna FrozenTrial and its study's user attrs (``of_study``)."""
    parts = identity.parse_study_name(study_name)
    attrs = {**parts, **of_study, **upgrade(dict(trial.user_attrs)), **trial.params}
    attrs["sampling_seed"] = sampling_seed(attrs)
    space = of_study.get("space") or {}
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
    df["chance"] = df["chance"].fillna(chance_error(df["num_classes"].astype(float)))
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
