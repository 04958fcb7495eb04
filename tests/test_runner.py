"""Fast tests of the study runner: study files, paired sampling, records, bad input (no training)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from wsgiref.util import setup_testing_defaults

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from bench.cli import main
from bench.runner import export, sampling, specs, storage, studies
from bench.runner.launch import LaunchOptions, LocalLauncher
from bench.runner.specs import Overrides, expand

RECORD_ATTRS = {"study", "model", "optimizer", "budget", "epochs", "seed", "point", "error", "ema_error", "diverged",
                "num_classes", "chance", "gflops", "params_m", "acts_m", "resolution", "batch_size", "data",
                "seconds", "host", "job_id", "curve"}


def fake_result(spec, error=40.0, diverged=False):
    return dict(config=spec.config(), error=error, ema_error=error - 1, diverged=diverged, num_classes=10,
                chance=90.0, gflops=0.004, params_m=0.26, acts_m=0.06, resolution=32, batch_size=spec.batch_size,
                data=spec.data, seconds=1.5, curve=[dict(epoch=1, train_loss=2.0, error=error, ema_error=error - 1,
                                                         img_per_s=100.0, seconds=1.5, peak_mem_mb=10.0)])


def write_study(tmp_path: Path, text: str, name="mini") -> str:
    p = tmp_path / f"{name}.toml"
    p.write_text(text)
    return str(p)


MINI = """
points = "random"
trials = 3
epochs = [50]
models = ["vitp_mini", "regnety_mini"]
[ranges.vit]
adamw = { lr = [1e-4, 1e-2], wd = [0.01, 1.0] }
sgd = { lr = [0.1, 3.2], wd = [4e-6, 1.2e-4] }
[ranges.regnety]
adamw = { lr = [1e-3, 1e-1], wd = [0.001, 0.1] }
sgd = { lr = [0.25, 8.0], wd = [3e-6, 8e-5] }
[budgets.local]
data = "synthetic:256"
epoch_scale = 0.04
"""


# ---------------------------------------------------------------- study files
@pytest.mark.parametrize("name", ["lr_wd", "optimizer", "stem"])
def test_shipped_studies_load_and_expand(name):
    study = studies.load(name)
    assert {"paper", "local"} <= set(study.budgets)
    for budget in ("paper", "local"):
        ss = expand(study, Overrides(budget=budget))
        assert ss and all(s.lr > 0 and s.wd > 0 for s in ss)
        assert len({s.key for s in ss}) == len(ss)


def test_lr_wd_paper_budget_matches_the_paper():
    study = studies.load("lr_wd")
    ss = expand(study, Overrides(budget="paper"))
    vitp = [s for s in ss if s.model == "vitp_4gf" and s.optimizer == "adamw"]
    assert len(vitp) == 64 and {s.epochs for s in vitp} == {50} and vitp[0].recipe == "paper"
    assert {s.optimizer for s in ss} == {"adamw", "sgd"}
    assert study.space("vit", "sgd") == {"lr": (0.1, 3.2), "wd": (4e-6, 1.2e-4)}
    assert study.space("regnety", "adamw") == {"lr": (1.25e-3, 4e-2), "wd": (0.0075, 0.24)}
    assert {s.batch_size for s in ss if s.model == "regnety_16gf"} == {1024}


def test_optimizer_study_epochs_scale_with_the_budget():
    study = studies.load("optimizer")
    paper = expand(study, Overrides(budget="paper", models=("vitc_4gf",)))
    assert sorted({s.epochs for s in paper}) == [50, 100, 200, 400]
    sgd = [s for s in paper if s.optimizer == "sgd"][0]
    assert (sgd.lr, sgd.wd, sgd.point) == (1.3, 2.2e-5, 0)
    local = expand(study, Overrides(budget="local"))
    assert sorted({s.epochs for s in local}) == [1, 2, 4, 8]  # 0.02 x [50, 100, 200, 400]
    assert {s.model for s in local} == {"vitp_mini", "vitc_mini", "regnety_mini"}


def test_local_budget_scales_lrs_on_the_same_draws():
    study = studies.load("lr_wd")
    paper = {(s.optimizer, s.point): s for s in expand(study, Overrides(budget="paper", models=("vitc_1gf",)))}
    local = expand(study, Overrides(budget="local", models=("vitc_mini",)))
    assert study.budget("local").lr_scale == {"adamw": 16, "sgd": 1} and {s.epochs for s in local} == {5}
    for s in local:
        ref, factor = paper[(s.optimizer, s.point)], {"adamw": 16, "sgd": 1}[s.optimizer]
        assert s.lr == pytest.approx(factor * ref.lr) and s.wd == ref.wd
        assert s.space[0] == tuple(factor * v for v in study.space("vit", s.optimizer)["lr"])
    tuned = expand(studies.load("optimizer"), Overrides(budget="local", models=("vitc_mini",), optimizers=("adamw",)))
    assert tuned[0].lr == pytest.approx(16 * 2.5e-3)


def test_overrides_replace_the_file():
    study = studies.load("lr_wd")
    ss = expand(study, Overrides(budget="local", models=("vitc_mini",), optimizers=("sgd",), trials=5, epochs=(3,),
                                 data="synthetic:64", seeds=2))
    assert len(ss) == 5 * 2
    assert {(s.model, s.optimizer, s.epochs, s.data) for s in ss} == {("vitc_mini", "sgd", 3, "synthetic:64")}
    assert {s.seed for s in ss} == {0, 1}


def test_stem_study_names_its_models():
    study = studies.load("stem")
    assert {s.model for s in expand(study, Overrides(budget="paper"))} == {
        "vitp_4gf", "vitc_4gf", "vitc_4gf_s1", "vitc_4gf_s2", "vitc_4gf_s3", "vitc_4gf_s4"}


def test_unregistered_model_is_named(tmp_path):
    path = write_study(tmp_path, MINI.replace('"regnety_mini"]', '"regnety_mini", "vitc_4gf_s9"]'))
    with pytest.raises(studies.StudyError, match="unknown model 'vitc_4gf_s9'; valid models: .*vitp_mini"):
        expand(studies.load(path), Overrides())


@pytest.mark.parametrize("old,new,msg", [
    ("lr = [1e-4, 1e-2]", "lr = [0, 1e-2]", "low > 0"),
    ("lr = [1e-4, 1e-2]", "lr = [1e-2, 1e-4]", "low < high"),
    ("trials = 3", "trials = 3\ncolour = 1", "unknown key 'colour'; valid: budgets, "),
    ('epoch_scale = 0.04', 'epoch_scale = 0.04\nepochs = 3', "unknown key 'epochs'; valid: batch_size"),
    ('points = "random"', 'points = "grid"', "points must be 'random' or 'tuned'"),
    ("trials = 3", 'trials = 3\noptimizers = ["adam"]', "unknown optimizer 'adam'; valid: adamw, sgd"),
    ("trials = 3", "trials = 3 3", "not valid TOML"),
    ('epoch_scale = 0.04', 'epoch_scale = 0.04\nlr_scale = 0', "lr_scale must be a number > 0"),
    ('epoch_scale = 0.04', 'epoch_scale = 0.04\nlr_scale = { adam = 2 }', "lr_scale has unknown optimizer 'adam'"),
])
def test_bad_study_files(tmp_path, old, new, msg):
    with pytest.raises(studies.StudyError, match=msg):
        studies.load(write_study(tmp_path, MINI.replace(old, new)))


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(studies.StudyError, match="unknown study 'nope'; valid: lr_wd, optimizer, stem"):
        studies.load("nope")
    with pytest.raises(studies.StudyError, match="no budget 'huge'; valid: paper, local"):
        expand(studies.load("lr_wd"), Overrides(budget="huge"))


# ---------------------------------------------------------------- sampling
def test_common_random_numbers_pair_models():
    study = studies.load("lr_wd")
    ss = expand(study, Overrides(budget="local", models=("vitp_mini", "vitc_mini", "regnety_mini"),
                                 optimizers=("adamw",)))
    u = sampling.uniforms(0, 8)
    for s in ss:
        (lo, hi), (wlo, whi) = s.space
        # every model's point i is the same draw u_i, mapped into its family's range
        assert np.log(s.lr / lo) / np.log(hi / lo) == pytest.approx(u[s.point, 0])
        assert np.log(s.wd / wlo) / np.log(whi / wlo) == pytest.approx(u[s.point, 1])
    by = {(s.model, s.point): s for s in ss}
    assert by["vitp_mini", 3].lr == by["vitc_mini", 3].lr != by["regnety_mini", 3].lr


def test_sampling_is_seeded_and_prefix_stable():
    space = {"lr": (1e-4, 1e-2), "wd": (1e-3, 1.0)}
    assert sampling.points(7, 10, space) == sampling.points(7, 10, space)
    assert sampling.points(7, 10, space)[:4] == sampling.points(7, 4, space)
    assert sampling.points(7, 4, space) != sampling.points(8, 4, space)
    lrs = np.array([p[0] for p in sampling.points(0, 4000, space)])
    assert lrs.min() >= 1e-4 and lrs.max() < 1e-2
    # log-uniform: each decade holds half the points
    assert abs(np.mean(lrs < 1e-3) - 0.5) < 0.03


def test_confirm_picks_the_best_points_with_new_seeds():
    base = expand(studies.load("lr_wd"), Overrides(models=("vitp_mini",), optimizers=("sgd",), trials=4))
    errors = {("vitp_mini", "sgd", 5, p): [e] for p, e in enumerate([50.0, 20.0, 70.0, 30.0])}
    out = specs.confirm(base, errors, n_best=2, seeds=3)
    assert sorted({s.point for s in out}) == [1, 3]
    assert sorted({s.seed for s in out}) == [1000, 1001, 1002]
    assert len({s.key for s in out}) == 6


# ---------------------------------------------------------------- records
def test_records_follow_the_contract(tmp_path):
    store = storage.open_storage(tmp_path / "optuna.journal")
    ss = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("adamw",), trials=2))
    st = storage.get_study(store, ss[0], sampler_seed=0)
    tid = storage.start(st, ss[0])
    storage.complete(store, tid, fake_result(ss[0]), host="h", job_id="42")
    tid = storage.start(st, ss[1])
    storage.complete(store, tid, fake_result(ss[1], error=90.0, diverged=True), host="h", job_id="43")
    st = optuna.load_study(study_name="lr_wd/vitc_mini/adamw/local", storage=store)
    assert st.direction == optuna.study.StudyDirection.MINIMIZE
    assert st.user_attrs.items() >= {"study": "lr_wd", "model": "vitc_mini", "optimizer": "adamw",
                                     "budget": "local", "family": "vit"}.items()
    t0, t1 = st.trials
    assert RECORD_ATTRS <= set(t0.user_attrs) and t0.value == 40.0 and t0.state == TrialState.COMPLETE
    assert t0.distributions["lr"] == optuna.distributions.FloatDistribution(16 * 2.5e-4, 16 * 8e-3, log=True)  # local lr_scale
    assert t0.params == {"lr": ss[0].lr, "wd": ss[0].wd} and t0.user_attrs["point"] == 0
    assert t1.state == TrialState.COMPLETE and t1.value == 90.0 and t1.user_attrs["diverged"] is True
    df = export.table(store, "lr_wd")
    assert list(df.columns) == list(export.COLUMNS) and len(df) == 2
    assert df.iloc[1].to_dict().items() >= {"diverged": True, "point": 1, "state": "COMPLETE",
                                            "trial_number": 1}.items()


def test_other_search_space_under_the_same_name_is_refused(tmp_path):
    store = storage.open_storage(tmp_path / "optuna.journal")
    s = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("adamw",), trials=1))[0]
    storage.get_study(store, s, sampler_seed=0)
    with pytest.raises(storage.StorageError, match="space"):
        storage.get_study(store, dataclasses.replace(s, space=((1e-5, 1e-3), s.space[1])), 0)
    with pytest.raises(storage.StorageError, match="sampler_seed"):
        storage.get_study(store, s, sampler_seed=1)


def test_optuna_dashboard_opens_the_journal(tmp_path):
    import optuna_dashboard

    store = storage.open_storage(tmp_path / "optuna.journal")
    s = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("sgd",), trials=1))[0]
    tid = storage.start(storage.get_study(store, s, 0), s)
    storage.complete(store, tid, fake_result(s), host="h", job_id="1")
    app = optuna_dashboard.wsgi(storage.open_storage(tmp_path / "optuna.journal"))

    def get(path):
        env, status = {}, []
        setup_testing_defaults(env)
        env["PATH_INFO"] = path
        body = b"".join(app(env, lambda st, headers, exc=None: status.append(st)))
        assert status == ["200 OK"], body[:500]
        return json.loads(body)

    summaries = get("/api/studies")["study_summaries"]
    assert [x["study_name"] for x in summaries] == ["lr_wd/vitc_mini/sgd/local"]
    trials = get(f"/api/studies/{summaries[0]['study_id']}")["trials"]
    assert len(trials) == 1 and trials[0]["state"] == "Complete"


# ---------------------------------------------------------------- launching
def test_local_launcher_splits_cpu_threads(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    la = LocalLauncher(LaunchOptions(parallel=4), tmp_path)
    assert (la.capacity, la.threads, la.gpus) == (4, 4, 0)
    la = LocalLauncher(LaunchOptions(parallel=2, tasks_per_trial=2), tmp_path)
    assert la.threads == 4


def test_local_launcher_gives_each_trial_its_own_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    la = LocalLauncher(LaunchOptions(gpus_per_trial=2), tmp_path)
    assert (la.capacity, la.tasks) == (2, 2)
    monkeypatch.setattr("submitit.LocalExecutor.submit", lambda self, fn: type("J", (), {"job_id": str(id(fn))})())
    a, b = la.submit([({}, tmp_path / "a"), ({}, tmp_path / "b")])
    assert la._held[a.job_id] == [0, 1] and la._held[b.job_id] == [2, 3] and la.free_gpus == []
    la.release(a)
    assert la.free_gpus == [0, 1]


# ---------------------------------------------------------------- command line
@pytest.mark.parametrize("argv,msg", [
    (["run", "--study", "nope"], "unknown study 'nope'; valid: lr_wd, optimizer, stem"),
    (["run", "--study", "lr_wd", "--budget", "huge"], "no budget 'huge'; valid: paper, local"),
    (["run", "--study", "lr_wd", "--models", "vitq_mini"], "unknown model 'vitq_mini'; valid models: vitp_1gf"),
    (["run", "--study", "lr_wd", "--slurm-extra", "qos"], "--slurm-extra takes KEY=VALUE"),
    (["status", "--study", "lr_wd"], "no results for study 'lr_wd'"),
    (["export", "--study", "lr_wd"], "no results for study 'lr_wd'"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, capsys, argv, msg):
    monkeypatch.chdir(tmp_path)
    assert main(argv + ["--dry-run"] * (argv[0] == "run") + ["--no-estimate"] * (argv[0] == "run")) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err and "Traceback" not in err


def test_bad_range_in_a_study_file_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, MINI.replace("wd = [0.01, 1.0]", "wd = [-1, 1.0]"))
    assert main(["run", "--study", path, "--dry-run"]) == 2
    assert "low > 0" in capsys.readouterr().err


def test_other_space_in_storage_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    store = storage.open_storage(tmp_path / "results" / "mini" / "optuna.journal")
    s = expand(studies.load(write_study(tmp_path, MINI)), Overrides())[0]
    storage.get_study(store, s, 0)
    path = write_study(tmp_path, MINI.replace("lr = [1e-4, 1e-2]", "lr = [1e-4, 1e-1]"))
    assert main(["run", "--study", path, "--no-estimate"]) == 2
    err = capsys.readouterr().err
    assert "already holds study 'mini/vitp_mini/adamw/local' with space" in err and "Traceback" not in err


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--study", "lr_wd", "--models", "vitp_mini", "--trials", "3", "--data", "synthetic:256",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6 trials = 1 models x 2 optimizers x 3 point-seeds x epochs [5]" in out
    assert "7,680 images (256 per epoch)" in out and "est. cost" in out
    assert not (tmp_path / "results").exists()


def test_rdb_storage_url(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    s = expand(studies.load("lr_wd"), Overrides(models=("vitp_mini",), optimizers=("adamw",), trials=1))[0]
    store = storage.open_storage(url)
    storage.complete(store, storage.start(storage.get_study(store, s, 0), s), fake_result(s), host="h", job_id="7")
    assert main(["status", "--storage", url]) == 0
    assert "lr_wd/vitp_mini/adamw/local" in capsys.readouterr().out
    assert main(["export", "--study", "lr_wd", "--storage", url, "--out", "t.csv"]) == 0
    assert len(open("t.csv").read().splitlines()) == 2
