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

from bench.core import records
from bench.cli import main
from bench.core.errors import UserError
from bench.core import studies
from bench.runner import export, sampling, specs, storage
from bench.runner.launch import LaunchOptions, LocalLauncher
from bench.runner.specs import Overrides, expand

RECORD_ATTRS = {"study", "model", "optimizer", "budget", "epochs", "seed", "point", "error", "raw_error", "diverged",
                "num_classes", "chance", "gflops", "params_m", "acts_m", "resolution", "batch_size", "data",
                "seconds", "host", "job_id", "curve"}


def fake_result(spec, error=40.0, diverged=False):
    return dict(config=spec.cfg.identity(), error=error, raw_error=error + 1, diverged=diverged, num_classes=10,
                chance=90.0, gflops=0.004, params_m=0.26, acts_m=0.06, resolution=32, batch_size=spec.cfg.batch_size,
                data=spec.cfg.data, seconds=1.5, curve=[dict(epoch=1, train_loss=2.0, error=error, raw_error=error + 1,
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
        assert ss and all(s.cfg.lr > 0 and s.cfg.wd > 0 for s in ss)
        assert len({s.key for s in ss}) == len(ss)


def test_lr_wd_paper_budget_matches_the_paper():
    study = studies.load("lr_wd")
    ss = expand(study, Overrides(budget="paper"))
    vitp = [s for s in ss if s.cfg.model == "vitp_4gf" and s.cfg.optimizer == "adamw"]
    assert len(vitp) == 64 and {s.cfg.epochs for s in vitp} == {50} and vitp[0].cfg.recipe == "paper"
    assert {s.cfg.optimizer for s in ss} == {"adamw", "sgd"}
    assert study.window("vit", "sgd") == ((0.1, 3.2), (4e-6, 1.2e-4))
    assert study.window("regnety", "adamw") == ((1.25e-3, 4e-2), (0.0075, 0.24))
    assert {s.cfg.batch_size for s in ss if s.cfg.model == "regnety_16gf"} == {1024}


def test_optimizer_study_epochs_scale_with_the_budget():
    study = studies.load("optimizer")
    paper = expand(study, Overrides(budget="paper", models=("vitc_4gf",)))
    assert sorted({s.cfg.epochs for s in paper}) == [50, 100, 200, 400]
    sgd = [s for s in paper if s.cfg.optimizer == "sgd"][0]
    assert (sgd.cfg.lr, sgd.cfg.wd, sgd.point) == (1.3, 2.2e-5, 0)
    local = expand(study, Overrides(budget="local"))
    assert sorted({s.cfg.epochs for s in local}) == [3, 6, 12]  # 0.06 x the budget's [50, 100, 200]
    assert {s.cfg.model for s in local} == {f"{fam}_{n}mf" for fam in ("vitp", "vitc", "regnety") for n in (1, 4, 18)}
    assert {s.cfg.seed for s in local} == {0, 1} and len(local) == 9 * 2 * 3 * 2  # the budget's 2 seeds


def test_local_budget_scales_lrs_on_the_same_draws():
    study = studies.load("lr_wd")
    paper = {(s.cfg.optimizer, s.point): s for s in expand(study, Overrides(budget="paper", models=("vitc_1gf",)))}
    local = expand(study, Overrides(budget="local", models=("vitc_mini",)))
    budget = study.budget("local")
    assert {s.cfg.epochs for s in local} == {budget.epochs(50)}
    for s in local:
        ref, factor = paper[(s.cfg.optimizer, s.point)], budget.lr_factor("vit", s.cfg.optimizer)
        assert s.cfg.lr == pytest.approx(factor * ref.cfg.lr) and s.cfg.wd == ref.cfg.wd
        assert s.space[0] == tuple(factor * v for v in study.window("vit", s.cfg.optimizer).lr)
    opt_study = studies.load("optimizer")
    tuned = expand(opt_study, Overrides(budget="local", models=("vitc_mini",), optimizers=("adamw",)))
    assert tuned[0].cfg.lr == pytest.approx(opt_study.budget("local").lr_factor("vit", "adamw") * 2.5e-3)


@pytest.mark.parametrize("lr_scale,family,opt,factor", [
    (3.0, "vit", "sgd", 3.0),
    ({"adamw": 16}, "vit", "sgd", 1.0),
    ({"vit": {"adamw": 20, "sgd": 0.5}, "regnety": {"adamw": 8}}, "vit", "sgd", 0.5),
    ({"vit": {"adamw": 20, "sgd": 0.5}, "regnety": {"adamw": 8}}, "regnety", "adamw", 8.0),
    ({"vit": {"adamw": 20, "sgd": 0.5}}, "regnety", "sgd", 1.0),
])
def test_lr_scale_per_family_and_optimizer(lr_scale, family, opt, factor):
    raw = {"epochs": [50], "models": ["vitc_mini"], "ranges": {"vit": {"adamw": {"lr": [1, 2], "wd": [1, 2]}}},
           "budgets": {"local": {"data": "synthetic", "lr_scale": lr_scale}}}
    assert studies.parse(raw, "t").budget("local").lr_factor(family, opt) == factor


@pytest.mark.parametrize("lr_scale,msg", [
    ({"vit": {"adam": 2}}, "unknown optimizer"), ({"vit": {"sgd": -1}}, "must be a number > 0"),
    ({"vit": {"sgd": 1}, "adamw": 2}, "not both"),
])
def test_lr_scale_errors(lr_scale, msg):
    raw = {"epochs": [50], "models": ["vitc_mini"], "ranges": {"vit": {"adamw": {"lr": [1, 2], "wd": [1, 2]}}},
           "budgets": {"local": {"data": "synthetic", "lr_scale": lr_scale}}}
    with pytest.raises(studies.StudyError, match=msg):
        studies.parse(raw, "t")


def test_overrides_replace_the_file():
    study = studies.load("lr_wd")
    ss = expand(study, Overrides(budget="local", models=("vitc_mini",), optimizers=("sgd",), trials=5, epochs=(3,),
                                 data="synthetic:64", seeds=2))
    assert len(ss) == 5 * 2
    assert {(s.cfg.model, s.cfg.optimizer, s.cfg.epochs, s.cfg.data) for s in ss} == {("vitc_mini", "sgd", 3, "synthetic:64")}
    assert {s.cfg.seed for s in ss} == {0, 1}


def test_stem_study_names_its_models():
    study = studies.load("stem")
    assert {s.cfg.model for s in expand(study, Overrides(budget="paper"))} == {
        "vitp_4gf", "vitc_4gf", "vitc_4gf_s1", "vitc_4gf_s2", "vitc_4gf_s3", "vitc_4gf_s4"}


def test_unregistered_model_is_named(tmp_path):
    path = write_study(tmp_path, MINI.replace('"regnety_mini"]', '"regnety_mini", "vitc_4gf_s9"]'))
    with pytest.raises(studies.StudyError, match="unknown model 'vitc_4gf_s9'; valid models: .*vitp_mini"):
        expand(studies.load(path), Overrides())


@pytest.mark.parametrize("old,new,msg", [
    ("lr = [1e-4, 1e-2]", "lr = [0, 1e-2]", "low > 0"),
    ("lr = [1e-4, 1e-2]", "lr = [1e-2, 1e-4]", "low < high"),
    ("trials = 3", "trials = 3\ncolour = 1", "unknown key 'colour'; valid: budgets, "),
    ('epoch_scale = 0.04', 'epoch_scale = 0.04\nepoch = 3', "unknown key 'epoch'; valid: batch_size"),
    ('points = "random"', 'points = "grid"', "points must be one of random, tuned, got 'grid'"),
    ("trials = 3", 'trials = 3\noptimizers = ["adam"]', "unknown optimizer 'adam'; valid: adamw, sgd"),
    ("trials = 3", "trials = 3 3", "not valid TOML"),
    ('epoch_scale = 0.04', 'epoch_scale = 0.04\nlr_scale = 0', "lr_scale: must be a number > 0"),
    ('epoch_scale = 0.04', 'epoch_scale = 0.04\nlr_scale = { adam = 2 }', "lr_scale.adam names an unknown optimizer"),
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
    u = sampling.uniforms(0, study.budget("local").trials)
    for s in ss:
        (lo, hi), (wlo, whi) = s.space
        # every model's point i is the same draw u_i, mapped into its family's range
        assert np.log(s.cfg.lr / lo) / np.log(hi / lo) == pytest.approx(u[s.point, 0])
        assert np.log(s.cfg.wd / wlo) / np.log(whi / wlo) == pytest.approx(u[s.point, 1])
    by = {(s.cfg.model, s.point): s for s in ss}
    assert by["vitp_mini", 3].cfg.lr == by["vitc_mini", 3].cfg.lr != by["regnety_mini", 3].cfg.lr


def test_sampling_is_seeded_and_prefix_stable():
    space = studies.Window(studies.Range(1e-4, 1e-2), studies.Range(1e-3, 1.0))
    assert sampling.points(7, 10, space) == sampling.points(7, 10, space)
    assert sampling.points(7, 10, space)[:4] == sampling.points(7, 4, space)
    assert sampling.points(7, 4, space) != sampling.points(8, 4, space)
    lrs = np.array([p[0] for p in sampling.points(0, 4000, space)])
    assert lrs.min() >= 1e-4 and lrs.max() < 1e-2
    # log-uniform: each decade holds half the points
    assert abs(np.mean(lrs < 1e-3) - 0.5) < 0.03


def test_confirm_picks_the_best_points_with_new_seeds():
    base = expand(studies.load("lr_wd"), Overrides(models=("vitp_mini",), optimizers=("sgd",), trials=4))
    errors = {("vitp_mini", "sgd", base[0].cfg.epochs, p): [e] for p, e in enumerate([50.0, 20.0, 70.0, 30.0])}
    out = specs.confirm(base, errors, n_best=2, seeds=3)
    assert sorted({s.point for s in out}) == [1, 3]
    assert sorted({s.cfg.seed for s in out}) == [1000, 1001, 1002]
    assert len({s.key for s in out}) == 6


# ---------------------------------------------------------------- records
def test_records_follow_the_contract(tmp_path):
    store = storage.Store.open(tmp_path / "optuna.journal")
    ss = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("adamw",), trials=2))
    name = store.study(ss[0], sampling_seed=0)
    tid = store.start(name, ss[0])
    store.complete(tid, fake_result(ss[0]), host="h", job_id="42")
    tid = store.start(name, ss[1])
    store.complete(tid, fake_result(ss[1], error=90.0, diverged=True), host="h", job_id="43")
    st = optuna.load_study(study_name="lr_wd/vitc_mini/adamw/local", storage=store.optuna)
    assert st.direction == optuna.study.StudyDirection.MINIMIZE
    assert st.user_attrs.items() >= {"study": "lr_wd", "model": "vitc_mini", "optimizer": "adamw",
                                     "budget": "local", "family": "vit"}.items()
    t0, t1 = st.trials
    assert RECORD_ATTRS <= set(t0.user_attrs) and t0.value == 40.0 and t0.state == TrialState.COMPLETE
    f = studies.load("lr_wd").budget("local").lr_factor("vit", "adamw")
    assert t0.distributions["lr"] == optuna.distributions.FloatDistribution(f * 2.5e-4, f * 8e-3, log=True)  # local lr_scale
    assert t0.params == {"lr": ss[0].cfg.lr, "wd": ss[0].cfg.wd} and t0.user_attrs["point"] == 0
    assert t1.state == TrialState.COMPLETE and t1.value == 90.0 and t1.user_attrs["diverged"] is True
    df = export.table(store.optuna, "lr_wd")
    assert list(df.columns) == list(records.COLUMNS) and len(df) == 2
    assert df.iloc[1].to_dict().items() >= {"diverged": True, "point": 1, "state": "COMPLETE",
                                            "trial_number": 1}.items()


def test_other_search_space_under_the_same_name_is_refused(tmp_path):
    store = storage.Store.open(tmp_path / "optuna.journal")
    s = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("adamw",), trials=1))[0]
    store.study(s, sampling_seed=0)
    with pytest.raises(storage.StorageError, match="space"):
        store.study(dataclasses.replace(s, space=((1e-5, 1e-3), s.space[1])), 0)
    with pytest.raises(storage.StorageError, match="sampling_seed"):
        store.study(s, sampling_seed=1)


def test_journals_with_the_old_seed_attr_still_open(tmp_path):
    """Journals written before the rename hold `sampler_seed`: it is still read and compared."""
    store = storage.Store.open(tmp_path / "optuna.journal")
    s = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("adamw",), trials=1))[0]
    sid = store.optuna.create_new_study([optuna.study.StudyDirection.MINIMIZE], s.study_name)
    for k, v in dict(space={"lr": list(s.space[0]), "wd": list(s.space[1])}, sampler_seed=3).items():
        store.optuna.set_study_user_attr(sid, k, v)
    assert store.study(s, sampling_seed=3) == s.study_name
    with pytest.raises(storage.StorageError, match="sampling_seed 3 but the study file gives 4"):
        store.study(s, sampling_seed=4)


def test_optuna_dashboard_opens_the_journal(tmp_path):
    import optuna_dashboard

    store = storage.Store.open(tmp_path / "optuna.journal")
    s = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("sgd",), trials=1))[0]
    tid = store.start(store.study(s, 0), s)
    store.complete(tid, fake_result(s), host="h", job_id="1")
    app = optuna_dashboard.wsgi(storage.Store.open(tmp_path / "optuna.journal").optuna)

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
    a, b = la.submit([[({}, tmp_path / "a")], [({}, tmp_path / "b"), ({}, tmp_path / "c")]])
    assert la._held[a.job_id] == [0, 1] and la._held[b.job_id] == [2, 3] and la.free_gpus == []
    la.release(a)
    assert la.free_gpus == [0, 1]


def test_local_launcher_shares_a_gpu_between_k_trials(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    la = LocalLauncher(LaunchOptions(trials_per_gpu=4), tmp_path)
    assert la.capacity == 8 and sorted(la.free_gpus) == [0] * 4 + [1] * 4
    ids = iter(range(100))
    monkeypatch.setattr("submitit.LocalExecutor.submit", lambda self, fn: type("J", (), {"job_id": str(next(ids))})())
    jobs = la.submit([[({}, tmp_path / str(i))] for i in range(8)])
    assert sorted(g for j in jobs for g in la._held[j.job_id]) == [0] * 4 + [1] * 4 and la.free_gpus == []
    with pytest.raises(UserError, match="exactly one GPU per trial"):
        LocalLauncher(LaunchOptions(trials_per_gpu=2, gpus_per_trial=2), tmp_path)


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
    store = storage.Store.open(tmp_path / "results" / "mini" / "optuna.journal")
    s = expand(studies.load(write_study(tmp_path, MINI)), Overrides())[0]
    store.study(s, 0)
    path = write_study(tmp_path, MINI.replace("lr = [1e-4, 1e-2]", "lr = [1e-4, 1e-1]"))
    assert main(["run", "--study", path, "--no-estimate"]) == 2
    err = capsys.readouterr().err
    assert "already holds study 'mini/vitp_mini/adamw/local' with space" in err and "Traceback" not in err


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--study", "lr_wd", "--models", "vitp_mini", "--trials", "3", "--epochs", "5", "--data", "synthetic:256",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "6 trials = 1 models x 2 optimizers x 3 point-seeds x epochs [5]" in out
    assert "7,680 images (256 per epoch)" in out and "est. cost" in out
    assert not (tmp_path / "results").exists()


def test_rdb_storage_url(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'o.db'}"
    s = expand(studies.load("lr_wd"), Overrides(models=("vitp_mini",), optimizers=("adamw",), trials=1))[0]
    store = storage.Store.open(url)
    store.complete(store.start(store.study(s, 0), s), fake_result(s), host="h", job_id="7")
    assert main(["status", "--storage", url]) == 0
    assert "lr_wd/vitp_mini/adamw/local" in capsys.readouterr().out
    assert main(["export", "--study", "lr_wd", "--storage", url, "--out", "t.csv"]) == 0
    assert len(open("t.csv").read().splitlines()) == 2
