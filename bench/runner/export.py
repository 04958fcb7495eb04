"""``bench export``: the tidy table of a study's finished trials (built by bench.core.records)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.core import records


def table(storage, study: str | None = None) -> pd.DataFrame:
    """Rows of every COMPLETE or FAIL trial in ``storage`` (of ``study`` only, if given)."""
    return records.from_storage(storage, [study] if study else None)


def write(df: pd.DataFrame, path, fmt: str) -> None:
    """Write the table, creating the folders on the way (a reference folder, say)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
