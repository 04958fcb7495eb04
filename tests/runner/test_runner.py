"""The runner without training: records, storage, launchers, the CLI's bad input."""
from __future__ import annotations

import dataclasses
from wsgiref.util import setup_testing_defaults
import json
from pathlib import Path

import optuna
import pytest
from helpers import MINI, RECORD_ATTRS, fake_result, write_study  # noqa: F401
from optuna.trial import TrialState

from bench.cli import main
from bench.core import records, studies
from bench.core.errors import UserError
from bench.runner import export, storage
from bench.runner.launch import LaunchOptions, LocalLauncher
from bench.runner.specs import Overrides, expand


def test_records_follow_the_contract(tmp_path):
    store = storage.Store.open(tmp_path / "optuna.journal")
    ss = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("adamw",), trials=2))
    name = store.optuna_study(ss[0], sampling_seed=0)
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
    store.optuna_study(s, sampling_seed=0)
    with pytest.raises(storage.StorageError, match="space"):
        store.optuna_study(dataclasses.replace(s, space=((1e-5, 1e-3), s.space[1])), 0)
    with pytest.raises(storage.StorageError, match="sampling_seed"):
        store.optuna_study(s, sampling_seed=1)


def test_journals_with_the_old_seed_attr_still_open(tmp_path):
    """Journals written before the rename hold `sampler_seed`: it is still read and compared."""
    store = storage.Store.open(tmp_path / "optuna.journal")
    s = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("adamw",), trials=1))[0]
    sid = store.optuna.create_new_study([optuna.study.StudyDirection.MINIMIZE], s.optuna_name)
    for k, v in dict(space={"lr": list(s.space[0]), "wd": list(s.space[1])}, sampler_seed=3).items():
        store.optuna.set_study_user_attr(sid, k, v)
    assert store.optuna_study(s, sampling_seed=3) == s.optuna_name
    with pytest.raises(storage.StorageError, match="sampling_seed 3 but the study file gives 4"):
        store.optuna_study(s, sampling_seed=4)


def test_optuna_dashboard_opens_the_journal(tmp_path):
    import optuna_dashboard

    store = storage.Store.open(tmp_path / "optuna.journal")
    s = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("sgd",), trials=1))[0]
    tid = store.start(store.optuna_study(s, 0), s)
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
    store.optuna_study(s, 0)
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
    store.complete(store.start(store.optuna_study(s, 0), s), fake_result(s), host="h", job_id="7")
    assert main(["status", "--storage", url]) == 0
    assert "lr_wd/vitp_mini/adamw/local" in capsys.readouterr().out
    assert main(["export", "--study", "lr_wd", "--storage", url, "--out", "t.csv"]) == 0
    assert len(open("t.csv").read().splitlines()) == 2


def test_fuse_defaults_to_8_with_a_gpu_and_1_without(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert LocalLauncher(LaunchOptions(), tmp_path).fuse == 8
    assert LocalLauncher(LaunchOptions(fuse=32, trials_per_gpu=2), tmp_path).fuse == 32  # composes with K per GPU
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert LocalLauncher(LaunchOptions(), tmp_path).fuse == 1
    with pytest.raises(UserError, match="does not combine"):
        LocalLauncher(LaunchOptions(fuse=4, tasks_per_trial=2), tmp_path)


def test_fused_jobs_hold_whole_groups_of_trials_differing_in_lr_wd(tmp_path, monkeypatch, capsys):
    """--fuse 2 on 3 points per model x optimizer: points 0-1 train fused, point 2 alone; all are recorded."""
    import bench.fused
    import bench.trial

    calls = []

    def result(cfg, out):
        r = dict(config=cfg.identity(), error=40.0, raw_error=41.0, diverged=False, num_classes=10, chance=90.0,
                 gflops=0.004, params_m=0.26, acts_m=0.06, resolution=32, batch_size=cfg.batch_size, data=cfg.data,
                 seconds=1.5, curve=[dict(epoch=1, train_loss=2.0, error=40.0, raw_error=41.0, img_per_s=100.0,
                                          seconds=1.5, peak_mem_mb=10.0)])
        (Path(out) / "result.json").write_text(json.dumps(r))
        return r

    def fake_fused(items, log=print):
        assert len({dataclasses.replace(c, lr=0.0, wd=0.0) for c, _ in items}) == 1
        calls.append(len(items))
        return [result(c, o) for c, o in items]

    def fake_trial(cfg, out, log=print):
        calls.append(1)
        return result(cfg, out)

    monkeypatch.setattr(bench.fused, "run_fused", fake_fused)
    monkeypatch.setattr(bench.trial, "run_trial", fake_trial)
    monkeypatch.chdir(tmp_path)
    path = write_study(tmp_path, MINI)
    assert main(["run", "--study", path, "--cluster", "debug", "--fuse", "2", "--no-estimate", "--no-progress"]) == 0
    assert sorted(calls) == [1] * 4 + [2] * 4
    store = storage.Store.open(tmp_path / "results" / "mini" / "optuna.journal", create=False)
    done = [t for name, _ in store.summaries() for t in store.trials(name) if t.state == TrialState.COMPLETE]
    assert len(done) == 12


def test_the_start_up_scripts_study_is_one_bench_reads(tmp_path, capsys):
    """scripts/cli_startup.py (docs' start-up numbers) seeds a study of 16 recorded trials that the
    commands it times read."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cli_startup", Path(__file__).resolve().parents[2] / "scripts" / "cli_startup.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.seed(tmp_path / "results")
    assert main(["status", "--study", "lr_wd", "--results", str(tmp_path / "results")]) == 0
    assert capsys.readouterr().out.count("lr_wd/") == 4
    assert len(export.table(storage.Store.open(tmp_path / "results" / "lr_wd" / "optuna.journal").optuna)) == 16
