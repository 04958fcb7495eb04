"""One trial identity (bench.core.identity): key, digest, study name and same_run from one canonical form."""
import dataclasses
import shutil
from pathlib import Path

import pytest

from bench.core import identity
from bench.core.identity import TrialConfig, same_run, trial_key

OLD = Path(__file__).resolve().parents[1] / "data" / "old_study"
BASE = dict(model="vitp_mini", optimizer="sgd", lr=0.5, wd=1e-5, epochs=1, batch_size=64, data="synthetic:256")


def test_a_new_field_changes_every_name_of_a_trial_unless_declared_how_it_runs():
    """A field added with a default: at its default nothing changes (old trial dirs keep their names
    and results); set, it changes the key, the identity and same_run at once."""
    Extra = dataclasses.make_dataclass("Extra", [("warmup", float, dataclasses.field(default=0.0))], bases=(TrialConfig,),
                                       frozen=True)
    base, same, other = TrialConfig(**BASE), Extra(**BASE), Extra(**BASE, warmup=2.0)
    assert trial_key(same, "b", 0) == trial_key(base, "b", 0) and same.identity() == base.identity()
    assert trial_key(other, "b", 0) != trial_key(base, "b", 0) and other.identity()["warmup"] == 2.0
    assert same_run(base.identity(), same) and not same_run(base.identity(), other)
    assert not same_run(other.identity(), base)


def test_how_a_trial_runs_is_declared_in_one_place():
    assert identity.NOT_IDENTITY == ("device", "compile")
    a, b = TrialConfig(**BASE), TrialConfig(**BASE, device="cuda", compile=True)
    assert trial_key(a, "b", 3) == trial_key(b, "b", 3) and same_run(b.identity(), a)


def test_a_data_spec_is_one_trial_in_every_spelling():
    forms = ["synthetic", "synthetic:10000", "synthetic:10_000", "SYNTHETIC:10000"]
    cfgs = [TrialConfig(**{**BASE, "data": d}) for d in forms]
    assert {c.data for c in cfgs} == {"synthetic"} and len({trial_key(c, "b", 0) for c in cfgs}) == 1
    assert same_run({**cfgs[0].identity(), "data": "synthetic:10000"}, cfgs[0])  # an older record's spelling
    assert TrialConfig(**{**BASE, "data": "imagefolder:/d/x/"}).data == "imagefolder:/d/x"
    with pytest.raises(identity.TrialError, match="synthetic:N needs a whole number"):
        TrialConfig(**{**BASE, "data": "synthetic:1e3"})


def test_study_names_round_trip():
    name = identity.study_name("lr_wd", "vitc_mini", "adamw", "local")
    assert name == "lr_wd/vitc_mini/adamw/local"
    assert identity.parse_study_name(name) == dict(study="lr_wd", model="vitc_mini", optimizer="adamw", budget="local")


def test_a_committed_old_journal_still_reads_and_resumes(tmp_path, monkeypatch):
    """tests/data/old_study: a study recorded before the foundation was split out (journal + result.json
    files). It loads, and `bench run` of the same study finds every trial finished: the keys, the study
    names and same_run of today's identity are the ones it was recorded with."""
    import analysis
    from bench.cli import main

    df = analysis.load_trials(OLD / "results" / "old" / "optuna.journal")
    assert len(df) == 4 and (df["state"] == "COMPLETE").all() and set(df["model"]) == {"vitp_mini", "vitc_mini"}
    shutil.copytree(OLD, tmp_path, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--study", "old.toml", "--budget", "tiny", "--cluster", "debug", "--no-estimate",
                 "--no-progress"]) == 0
    assert len(analysis.load_trials(tmp_path / "results" / "old" / "optuna.journal")) == 4  # nothing retrained
