"""The tidy table of a study's finished trials (one row per optuna trial, docs/records.md)."""
from __future__ import annotations

import optuna
import pandas as pd
from optuna.trial import TrialState

COLUMNS = ("study", "model", "optimizer", "budget", "epochs", "seed", "point", "lr", "wd", "error", "ema_error",
           "diverged", "num_classes", "chance", "gflops", "params_m", "acts_m", "resolution", "batch_size", "data",
           "seconds", "host", "job_id", "state", "trial_number")
_FINISHED = (TrialState.COMPLETE, TrialState.FAIL)


def table(storage, study: str | None = None) -> pd.DataFrame:
    """Rows of every COMPLETE or FAIL trial in ``storage`` (of ``study`` only, if given)."""
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if study and summary.user_attrs.get("study") != study:
            continue
        st = optuna.load_study(study_name=summary.study_name, storage=storage)
        for t in st.get_trials(deepcopy=False, states=_FINISHED):
            row = {**summary.user_attrs, **t.user_attrs, **t.params, "state": t.state.name, "trial_number": t.number}
            rows.append({c: row.get(c) for c in COLUMNS})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write(df: pd.DataFrame, path, fmt: str) -> None:
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
