"""Loading trials from a real optuna JournalStorage and from exported tables."""

import numpy as np
import pytest
from helpers import empty_journal, write_journal

import analysis
from analysis import load, synthetic
from bench.core import records
from bench.core.storages import StorageError


@pytest.fixture
def table():
    df = synthetic.trials(n_points=6, models=["vitp_mini", "vitc_mini"], study="s1", budget="laptop", num_classes=10)
    df.loc[2, "diverged"] = True  # one diverged trial (the writer stores value = chance)
    df.loc[2, "error"] = np.nan
    return df


def test_journal_roundtrip(tmp_path, table):
    path = write_journal(table, tmp_path / "results" / "s1" / "optuna.journal", failed=1)
    for source in (path, path.parent, tmp_path / "results", str(path)):
        df = analysis.load_trials(source)
        assert list(df.columns) == list(records.COLUMNS)
        assert len(df) == len(table) + 4  # one FAIL per optuna study (2 models x 2 optimizers)
        fail = df[df["state"].eq("FAIL")]
        assert len(fail) == 4 and fail["error"].isna().all() and not fail["diverged"].any()
        div = df[df["diverged"]]
        assert len(div) == 1 and div["error"].iloc[0] == pytest.approx(90.0)  # 100 * (1 - 1/10)
        ok = df[df["state"].eq("COMPLETE")].sort_values(["model", "optimizer", "point"])
        assert set(ok["model"]) == {"vitp_mini", "vitc_mini"} and ok["point"].notna().all()
        assert ok["lr"].gt(0).all() and (ok["epochs"] == 50).all() and set(ok["budget"]) == {"laptop"}


def test_load_by_study_name_and_unknown_study(tmp_path, table):
    write_journal(table, tmp_path / "s1" / "optuna.journal")
    assert len(analysis.load_trials(tmp_path, study="s1")) == len(table)
    with pytest.raises(analysis.AnalysisError, match="unknown study nope; valid: s1"):
        analysis.load_trials(tmp_path, study="nope")
    with pytest.raises(analysis.AnalysisError, match="valid: s1"):
        analysis.load_trials(tmp_path / "s1" / "optuna.journal", study=["nope"])


def test_missing_paths_are_clear_errors(tmp_path):
    with pytest.raises(analysis.AnalysisError, match="not found"):
        analysis.load_trials(tmp_path / "nothing.journal")
    with pytest.raises(analysis.AnalysisError, match="no table"):
        analysis.load_trials(tmp_path / "t.csv")
    with pytest.raises(analysis.AnalysisError, match="valid: \\(none"):
        analysis.load_trials(tmp_path)


def test_empty_study_loads_empty_table(tmp_path):
    df = analysis.load_trials(empty_journal(tmp_path / "optuna.journal"))
    assert df.empty and list(df.columns) == list(records.COLUMNS)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_table_roundtrip(tmp_path, table, ext):
    path = tmp_path / f"t.{ext}"
    getattr(table, f"to_{ext}")(path, index=False)
    df = analysis.load_trials(path)
    assert len(df) == len(table) and df["diverged"].sum() == 1
    assert df.loc[df["diverged"], "error"].iloc[0] == pytest.approx(90.0)
    with pytest.raises(analysis.AnalysisError, match="valid: s1"):
        analysis.load_trials(path, study="x")


def test_table_missing_columns(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(analysis.AnalysisError, match="lacks columns: error, model, optimizer"):
        analysis.load_trials(tmp_path / "bad.csv")


def test_storage_url(tmp_path, table):
    import optuna

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    journal = write_journal(table, tmp_path / "optuna.journal")
    src = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    optuna.copy_study(from_study_name="s1/vitc_mini/sgd/laptop", from_storage=src, to_storage=url)
    df = analysis.load_trials(url)
    assert len(df) == 6 and set(df["model"]) == {"vitc_mini"} and set(df["optimizer"]) == {"sgd"}
    with pytest.raises(StorageError, match="cannot open storage nosuchdriver://x"):  # the runner's one line
        analysis.load_trials("nosuchdriver://x")


def test_storage_keeps_each_trials_curve_and_provenance(tmp_path, table):
    """A storage gives every finished trial's per-epoch curve (the report's learning curves) keyed as
    its table row; an exported table has none."""
    path = write_journal(table, tmp_path / "results" / "s1" / "optuna.journal", failed=1)
    got = load.load(path)
    assert len(got.extras) == len(got.trials) and list(got.extras.columns) == load.EXTRA_KEYS + list(load.EXTRAS)
    both = got.trials.merge(got.extras, on=load.EXTRA_KEYS, validate="one_to_one")
    done = both[both["state"].eq("COMPLETE") & ~both["diverged"]]
    assert all(c[-1]["error"] == pytest.approx(e) for c, e in zip(done["curve"], done["error"]))
    assert both.loc[both["state"].eq("FAIL"), "curve"].isna().all() and both["provenance"].isna().all()
    table.to_csv(tmp_path / "t.csv", index=False)
    assert load.load(tmp_path / "t.csv").extras.empty
