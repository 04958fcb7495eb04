"""First contact: commands that answer without torch or timm, and bad input caught before launch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import fake_result

from bench.cli import main
from bench.core import studies
from bench.core.layout import StudyDir
from bench.runner import storage
from bench.runner.specs import Overrides, expand

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import sys
from bench.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:  # --help
    code = e.code
print("HEAVY", sorted(m for m in ("torch", "timm") if m in sys.modules), code)
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """A results dir with a recorded lr_wd study of 8 trials."""
    results = tmp_path_factory.mktemp("first") / "results"
    store = storage.Store.open(StudyDir(results, "lr_wd").journal)
    for i, s in enumerate(expand(studies.load("lr_wd"), Overrides(models=("vitp_mini", "vitc_mini"), trials=2))):
        store.complete(store.start(store.optuna_study(s, 0), s), fake_result(s, error=20.0 + 3 * i), host="h", job_id="1")
    return results


@pytest.mark.parametrize("argv", [
    ["--help"], ["run", "--help"], ["status"], ["export", "--study", "lr_wd", "--out", "t.csv"],
    ["run", "--study", "lr_wd", "--dry-run", "--no-estimate"], ["plot", "edf", "--study", "lr_wd", "--out", "e.png"],
    ["report", "--study", "lr_wd", "--out", "r.html"],
])
def test_commands_answer_without_torch_or_timm(study, argv):
    out = subprocess.run([sys.executable, "-c", PROBE, *argv, *(["--results", str(study)] * ("--help" not in argv))],
                         cwd=study.parent, env={**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""},
                         capture_output=True, text=True)
    assert "HEAVY [] 0" in out.stdout, out.stdout[-500:] + out.stderr[-2000:]


def test_import_bench_still_registers_the_models_with_timm():
    code = "import sys, bench; assert 'torch' not in sys.modules; import timm; print(timm.create_model('vitc_mini').num_classes)"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "1000", out.stderr


@pytest.mark.parametrize("argv,msg", [
    (["run", "--study", "lr_wd", "--data", "cifar10:/nonexistent", "--no-estimate"],
     "data folder /nonexistent (--data cifar10:/nonexistent) does not exist on this machine"),
    (["train", "--model", "vitc_mini", "--res", "30", "--lr", "1e-3", "--wd", "0.05", "--epochs", "1"],
     "resolution 30 does not suit vitc_mini: its stem has stride 8, so the resolution must be a positive multiple of 8"),
])
def test_bad_input_fails_before_launch(tmp_path, monkeypatch, capsys, argv, msg):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and "\n" not in err
    assert not (tmp_path / "results").exists()  # nothing submitted, no trial dir, no journal


def test_bad_resolution_in_a_study_fails_before_launch(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    toml = studies.load("lr_wd").path.read_text()
    assert "[budgets.local]" in toml
    (tmp_path / "res.toml").write_text(toml.replace("[budgets.local]", "[budgets.local]\nresolution = 30"))
    assert main(["run", "--study", "res.toml", "--models", "vitc_mini", "--no-estimate"]) == 2
    assert "resolution 30 does not suit vitc_mini" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()


def test_a_folder_only_the_cluster_sees_is_a_note_in_the_plan(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--study", "lr_wd", "--data", "imagefolder:/cluster/imagenet", "--cluster", "slurm",
                 "--dry-run", "--no-estimate"]) == 0
    assert "note: data folder /cluster/imagenet is not on this machine" in capsys.readouterr().out


@pytest.mark.slow
def test_jobs_run_the_bench_that_planned_them(tmp_path):
    """A `bench/` folder in the working directory (another checkout, say) shadows nothing: the jobs
    import the bench the runner imported, not the one beside them."""
    import shutil

    exe = shutil.which("bench")
    if exe is None:
        pytest.skip("the bench console script is not installed")
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "__init__.py").write_text("raise ImportError('the shadow bench was imported')\n")
    out = subprocess.run([exe, "run", "--study", "lr_wd", "--models", "vitc_mini", "--optimizer", "sgd", "--trials", "1",
                          "--epochs", "1", "--data", "synthetic:256", "--no-estimate", "--no-progress"],
                         cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "shadow" not in out.stdout + out.stderr


def test_every_flag_of_every_command_says_what_it_does():
    import argparse

    from bench.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    silent = [f"bench {name} {'/'.join(a.option_strings) or a.dest}" for name, p in sub.choices.items()
              for a in p._actions if not isinstance(a, argparse._HelpAction) and not (a.help and a.help.strip())]
    assert not silent, silent
