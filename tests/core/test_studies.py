"""The study schema (bench.core.studies): study files, budgets, precedence, paired points."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import MINI, RECORD_ATTRS, fake_result, write_study  # noqa: F401

from bench.core import records, sampling, studies
from bench.runner import specs
from bench.runner.specs import Overrides, expand


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
    assert sorted({s.cfg.epochs for s in local}) == [2, 4, 8]  # 0.04 x the budget's [50, 100, 200]
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
    assert sampling.pairs(7, 10, space) == sampling.pairs(7, 10, space)
    assert sampling.pairs(7, 10, space)[:4] == sampling.pairs(7, 4, space)
    assert sampling.pairs(7, 4, space) != sampling.pairs(8, 4, space)
    lrs = np.array([p[0] for p in sampling.pairs(0, 4000, space)])
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


def test_a_budgets_own_tuned_point_is_used_as_it_is_wherever_the_window_is(tmp_path):
    """A calibrated per-model optimum may lie outside its family's window (the record says when): it is
    used as it is, and the trial's search space widens to hold it; a paper value outside is an error."""
    text = MINI.replace('points = "random"', 'points = "tuned"') + '''lr_scale = 1
[budgets.local.tuned.adamw]
vitp_mini = [0.5, 0.05]
'''
    ss = expand(studies.load(write_study(tmp_path, text)), Overrides(models=("vitp_mini",), optimizers=("adamw",)))
    assert {(s.cfg.lr, s.cfg.wd) for s in ss} == {(0.5, 0.05)}
    assert ss[0].space[0][1] == 0.5 and ss[0].space[0][0] == 1e-4  # the window, widened to hold the point


OLD = Path(__file__).resolve().parents[1] / "data" / "old_study"
REFERENCE = Path(__file__).resolve().parents[2] / "results" / "reference"


def test_draw_then_scale_gives_a_committed_old_journals_trials_bit_for_bit(tmp_path):
    """tests/data/old_study (lr_scale 4): every recorded trial's lr, wd, key, search space and attrs are
    what today's one draw-then-scale (Resolved.lr_wd) and records' writers make, to the last bit."""
    import shutil

    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    shutil.copy(OLD / "results" / "old" / "optuna.journal", tmp_path / "old.journal")  # read a copy: never the original
    stored = JournalStorage(JournalFileBackend(str(tmp_path / "old.journal")))
    made = {s.key: s for s in expand(studies.load(str(OLD / "old.toml")), Overrides(budget="tiny"))}
    seen = 0
    for summary in stored.get_all_studies():
        for t in stored.get_all_trials(stored.get_study_id_from_name(summary.study_name)):
            spec = made[t.user_attrs["key"]]
            assert (t.params["lr"], t.params["wd"]) == (spec.cfg.lr, spec.cfg.wd)  # ==: the same floats
            start = {k: v for k, v in records.trial_attrs(spec).items() if k not in ("job_id", "host")}  # set later
            assert {k: t.user_attrs[k] for k in start} == start
            assert summary.user_attrs == records.study_attrs(spec, 0) and spec.optuna_name == summary.study_name
            seen += 1
    assert seen == len(made) == 4


def test_draw_then_scale_gives_the_committed_reference_lrs_bit_for_bit():
    """The lr_wd reference (48 points x 2 optimizers, lr_scale 32 / 4 for the ViTs): its recorded lr and wd
    of every trial are Resolved.lr_wd's, to the last bit."""
    import pandas as pd

    df = pd.read_csv(REFERENCE / "lr_wd_local" / "trials.csv")
    resolved = studies.resolve(studies.load("lr_wd"), Overrides(budget="local", trials=48))
    for (model, opt), g in df.groupby(["model", "optimizer"]):
        want = resolved.lr_wd(model, opt)
        assert [want[p] for p in g["point"]] == list(zip(g["lr"], g["wd"])), (model, opt)
    assert len(df) >= 192
