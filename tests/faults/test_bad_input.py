"""Bad input and broken files, as a new user meets them: each probe class gets one line on stderr naming
the file, key, flag or path (exit 2, no traceback), and loses nothing (docs/storage.md lists them)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import fake_result

from bench.cli import main
from bench.core import studies
from bench.io import atomic_write_json
from bench.runner.specs import Overrides, expand

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--data", "synthetic:256", "--no-estimate", "--no-progress"]


def one_line(capsys, *argv, code=2) -> str:
    """Run bench; assert the exit code and that stderr is one line without a traceback; return it."""
    try:
        got = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's errors exit
        got = e.code
    assert got == code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and err.count("\n") == 0 and err, err
    return err


STUDY = """points = "random"
trials = 2
epochs = [1]
models = ["vitp_mini"]
[budgets.local]
data = "synthetic:256"
"""


@pytest.mark.parametrize("edit,says", [
    (('models = ["vitp_mini"]', "models = [1, 2]"), "models: each model is a name in quotes, got 1"),
    (("[budgets.local]", "[ranges]\nvit = 5\n[budgets.local]"), "[ranges] vit: must be a table of optimizer"),
    (("[budgets.local]", "[tuned]\nadamw = 5\n[budgets.local]"), "[tuned].adamw: must be a table of model = [lr, wd]"),
    (("epochs = [1]", 'epochs = [1]\noptimizers = []'), "optimizers: must be a non-empty list, got []"),
    (("epochs = [1]", 'epochs = [1]\noptimizers = "adamw"'), "optimizers: must be a non-empty list, got 'adamw'"),
    (("[budgets.local]", "[ranges.vit]\nadam = { lr = [1e-3, 1e-2], wd = [0.1, 1] }\n[budgets.local]"),
     "[ranges.vit] adam: unknown optimizer; valid: adamw, sgd"),
    (('data = "synthetic:256"', 'data = "synthetic:256"\nrecipe = "heavy"'), "recipe: unknown recipe 'heavy'; valid: paper, light"),
    (("[budgets.local]\n", "budgets = 3\n[x]\n"), "[budgets] must be a table, got 3"),
])
def test_study_file_problems_name_the_file_and_key(tmp_path, capsys, edit, says):
    path = tmp_path / "s.toml"
    text = STUDY.replace(*edit)
    path.write_text(text if "budgets = 3" not in text else "budgets = 3\n" + STUDY.split("[budgets.local]")[0])
    err = one_line(capsys, "run", "--study", path, "--dry-run", "--no-estimate")
    assert says in err and str(path) in err


def test_a_study_file_that_is_not_text(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_bytes(b"\xff\xfe" + STUDY.encode("utf-16-le"))
    assert "not UTF-8 text" in one_line(capsys, "run", "--study", path, "--dry-run", "--no-estimate")


@pytest.mark.parametrize("argv,says", [
    (["--data", "synthetic:abc"], "synthetic:N needs a whole number of train images, got 'abc'"),
    (["--data", "synthetic:1e3"], "synthetic:N needs a whole number"),
    (["--data", "synthetic:0"], "synthetic:N takes 1 to 1,000,000 train images, got 0"),
    (["--data", "synthetic:-5"], "synthetic:N takes 1 to 1,000,000 train images, got -5"),
    (["--seed", "-1"], "argument --seed: must be >= 0, got -1"),
    (["--gpus-per-trial", "-1"], "argument --gpus-per-trial: must be >= 0, got -1"),
    (["--res", "0"], "argument --res: must be >= 1, got 0"),
    (["--res", "100000"], "resolution 100000 is not a side length bench trains at: give 8 to 1024 px"),
])
def test_the_planner_catches_flags_before_launch(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.chdir(tmp_path)
    assert says in one_line(capsys, "run", "--study", "lr_wd", "--dry-run", "--no-estimate", *argv)
    assert not (tmp_path / "results").exists()


def test_bench_train_refuses_impossible_sizes_in_one_line(tmp_path, capsys):
    base = ["train", "--model", "vitc_mini", "--lr", "1", "--wd", "0", "--epochs", "1", "--out", tmp_path / "t"]
    assert "synthetic:N takes 1 to 1,000,000" in one_line(capsys, *base, "--data", "synthetic:9999999999999")
    assert "give 8 to 1024 px" in one_line(capsys, *base, "--res", "100000")


def test_data_folders_laid_out_wrong_fail_the_plan(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for split, classes in (("train", ("a", "b")), ("val", ("a", "b"))):
        for c in classes:
            (tmp_path / "img" / split / c).mkdir(parents=True)
            if (split, c) != ("train", "b"):
                (tmp_path / "img" / split / c / "x.jpg").write_bytes(b"")
    err = one_line(capsys, "run", "--study", "lr_wd", "--data", "imagefolder:img", "--dry-run", "--no-estimate")
    assert "1 class folder(s) of img/train hold no images (b)" in err
    (tmp_path / "cif").mkdir()
    err = one_line(capsys, "run", "--study", "lr_wd", "--data", "cifar10:cif", "--dry-run", "--no-estimate")
    assert "cif is neither a cifar10 python folder (missing data_batch_1" in err


def _recorded_study(tmp_path) -> Path:
    """results/lr_wd with 4 finished trials, recorded by the real runner from their result.json."""
    specs = expand(studies.load("lr_wd"), Overrides(models=("vitp_mini",), trials=2, epochs=(1,), data="synthetic:256"))
    for s in specs:
        atomic_write_json(tmp_path / "results" / "lr_wd" / "trials" / s.key / "result.json", fake_result(s))
    assert main(["run", "--study", "lr_wd", "--models", "vitp_mini", "--trials", "2", "--epochs", "1",
                 "--cluster", "debug", *TINY]) == 0
    return tmp_path / "results" / "lr_wd" / "optuna.journal"


def _folder(j):
    j.unlink()
    j.mkdir()


def _binary(j):
    j.write_bytes(bytes(range(256)) * 4)


def _unknown_op(j):
    with open(j, "a") as f:
        f.write(json.dumps({"op_code": 99, "worker_id": "x"}) + "\n")


def _bad_line(j):
    lines = j.read_text().splitlines(keepends=True)
    j.write_text("".join(lines[:3] + ["{not json\n"] + lines[3:]))


@pytest.mark.parametrize("damage", [_folder, _binary, _unknown_op, _bad_line], ids=lambda f: f.__name__[1:])
def test_an_unreadable_journal_is_one_line_everywhere_and_repair_heals_it(tmp_path, monkeypatch, capsys, damage):
    monkeypatch.chdir(tmp_path)
    journal = _recorded_study(tmp_path)
    capsys.readouterr()
    damage(journal)
    for argv in (["status"], ["export", "--study", "lr_wd", "--out", "-"], ["report", "--study", "lr_wd"],
                 ["plot", "edf", "--study", "lr_wd"], ["verdict", "--study", "lr_wd"],
                 ["run", "--study", "lr_wd", "--models", "vitp_mini", "--trials", "2", "--epochs", "1",
                  "--cluster", "debug", *TINY]):
        assert "bench repair --study lr_wd" in one_line(capsys, *argv), argv
    results = {p: p.read_bytes() for p in (tmp_path / "results" / "lr_wd" / "trials").glob("*/result.json")}
    assert main(["repair", "--study", "lr_wd"]) == 0
    assert main(["run", "--study", "lr_wd", "--models", "vitp_mini", "--trials", "2", "--epochs", "1", "--cluster",
                 "debug", *TINY]) == 0  # records what the repair could not: nothing trains
    capsys.readouterr()
    assert main(["export", "--study", "lr_wd", "--out", "-"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 1 + 4 and all(p.read_bytes() == b for p, b in results.items())  # from the trial dirs


@pytest.mark.parametrize("content", ["null", "[1, 2]"])
def test_a_result_json_that_is_not_a_result(tmp_path, monkeypatch, capsys, content):
    """A result.json holding null or a list (no journal yet): run retrains that trial, repair skips it."""
    monkeypatch.chdir(tmp_path)
    (spec,) = expand(studies.load("lr_wd"), Overrides(models=("vitc_mini",), optimizers=("sgd",), trials=1, epochs=(1,),
                                                      data="synthetic:256"))
    trial = tmp_path / "results" / "lr_wd" / "trials" / spec.key
    trial.mkdir(parents=True)
    (trial / "result.json").write_text(content)
    argv = ["run", "--study", "lr_wd", "--models", "vitc_mini", "--optimizer", "sgd", "--trials", "1", "--epochs", "1",
            "--cluster", "debug", *TINY]
    assert main(argv) == 0
    assert json.loads((trial / "result.json").read_text())["config"] == spec.cfg.identity()
    assert main(["repair", "--study", "lr_wd"]) == 0


def test_tables_with_impossible_errors_are_refused(tmp_path, capsys):
    for name, rows, says in (("abc", "x,adamw,abc", "error is not a number in row 2 ('abc')"),
                             ("big", "x,adamw,150", "error 150 in row 2 is not a percentage"),
                             ("nan", "x,adamw,\nx,adamw,3", "1 finished row(s) have no error (first: row 2)")):
        (tmp_path / f"{name}.csv").write_text("model,optimizer,error\n" + rows + "\n")
        assert says in one_line(capsys, "verdict", "--table", tmp_path / f"{name}.csv")
    (tmp_path / "min.csv").write_text("model,optimizer,error\nvitp_mini,adamw,40\nvitc_mini,adamw,30\n")
    assert main(["report", "--table", str(tmp_path / "min.csv"), "--out", str(tmp_path / "r.html")]) == 0


def test_a_factory_that_raises_is_one_line_pointing_at_its_code(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "brokennet.py").write_text("def net(num_classes, img_size=32):\n    raise ValueError('no such layer')\n")
    err = one_line(capsys, "models", "--name", "brokennet:net")
    assert "ValueError: no such layer" in err and "brokennet.py:2" in err


def test_results_that_cannot_be_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = ["run", "--study", "lr_wd", "--models", "vitc_mini", "--trials", "1", "--epochs", "1", "--cluster", "debug", *TINY]
    assert "cannot write in /proc/foo" in one_line(capsys, *run, "--results", "/proc/foo/results")
    ro = _tmpfs(tmp_path / "ro", "4m")
    try:
        monkeypatch.chdir(ro)
        _recorded_study(ro)
        capsys.readouterr()
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        assert "Read-only file system" in one_line(capsys, *run)
        assert "Read-only file system" in one_line(capsys, "repair", "--study", "lr_wd")
        assert main(["status"]) == 0  # reading still works
    finally:
        monkeypatch.chdir(tmp_path)
        subprocess.run(["umount", str(ro)])


def test_a_disk_that_fills_up_mid_run_loses_nothing(tmp_path, monkeypatch, capsys):
    """Results on a full filesystem: the trials fail saying so, in one line; with room again, the rerun
    records them without losing or duplicating anything."""
    monkeypatch.chdir(tmp_path)
    small = _tmpfs(tmp_path / "small", "600k")
    try:
        run = ["run", "--study", "lr_wd", "--models", "vitc_mini", "--optimizer", "sgd", "--trials", "1", "--epochs", "2",
               "--cluster", "debug", "--results", str(small / "results"), *TINY]
        assert main(run) in (1, 2)
        out = capsys.readouterr()
        assert "Traceback" not in out.err and ("MiB free" in out.out + out.err or "No space left" in out.out + out.err)
        subprocess.run(["mount", "-o", "remount,size=64m", str(small)], check=True)
        assert main(run) == 0
        from bench.runner import storage

        store = storage.Store.open(small / "results" / "lr_wd" / "optuna.journal", create=False)
        done = [t for name, _ in store.summaries() for t in store.trials(name) if t.state.name == "COMPLETE"]
        assert len(done) == 1
    finally:
        subprocess.run(["umount", str(small)])


def _tmpfs(path: Path, size: str) -> Path:
    path.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    return path


@pytest.mark.parametrize("argv,says", [
    (["--model", "vitp_mini", "--lr", "nan"], "lr must be a positive number, got nan"),
    (["--model", "nosuchmodel", "--lr", "0.1"], "unknown model 'nosuchmodel'; valid models: vitp_1gf"),
    (["--model", "vitp_mini", "--lr", "0.1", "--data", "imagefolder:/nonexistent"], "data folder /nonexistent"),
])
def test_bench_train_refuses_names_and_values_before_torch_loads(tmp_path, argv, says):
    """In a fresh process: the line, exit 2, and torch never imported (it costs seconds)."""
    code = ("import sys, time; from bench.cli import main; t = time.time(); "
            f"code = main({['train', *argv, '--wd', '0', '--epochs', '1']!r}); "
            "print(code, 'torch' in sys.modules, round(time.time() - t, 2))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split()[:2] == ["2", "False"] and says in out.stderr and out.stderr.count("\n") == 1, out
    assert not list(tmp_path.iterdir())


def test_a_run_refuses_an_unknown_model_before_torch_loads(tmp_path):
    code = ("import sys; from bench.cli import main; "
            "code = main(['run', '--study', 'lr_wd', '--models', 'nosuchmodel', '--dry-run', '--no-estimate']); "
            "print(code, 'torch' in sys.modules, 'timm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["2", "False", "False"] and "unknown model 'nosuchmodel'" in out.stderr, out


@pytest.mark.parametrize("argv,says", [
    (["--step", "nan"], "argument --step: must be a finite number > 1 (e.g. 2), got nan"),
    (["--step", "inf"], "argument --step: must be a finite number > 1 (e.g. 2), got inf"),
    (["--step", "1"], "argument --step: must be a finite number > 1 (e.g. 2), got 1"),
    (["--out", "/proc/x.json"], "--out /proc/x.json: cannot write in /proc"),
    (["--out", "."], "--out . is a folder: give a file"),
    (["--out", "a.json", "--write-reference"], "--out and --write-reference both say where the record goes"),
])
def test_calibrate_refuses_its_flags_before_anything_runs(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.chdir(tmp_path)
    assert says in one_line(capsys, "calibrate", "--study", "lr_wd", "--dry-run", "--no-estimate", *argv)
    assert not list(tmp_path.iterdir())  # no journal, no trial folder


def test_calibrate_write_reference_writes_where_references_are_read(tmp_path, monkeypatch, capsys):
    """It was a traceback (a true/false flag read as a reference's name) and wrote under the working folder."""
    from analysis import reference
    from bench.core import layout
    from bench.runner import cli

    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", "--study", "lr_wd", "--write-reference", "--dry-run", "--no-estimate"]) == 0
    assert "Traceback" not in capsys.readouterr().err and not list(tmp_path.iterdir())
    args = cli.argparse.Namespace(write_reference=True, out=None, budget="local", results="results")
    assert cli.record_path(args, "lr_wd") == reference.REFERENCE_DIR / "calibration" / "lr_wd_local.json"
    monkeypatch.setattr(layout, "REFERENCES", tmp_path / "ro" / "reference")
    (tmp_path / "ro").mkdir(mode=0o500)
    if os.access(tmp_path / "ro", os.W_OK):  # root writes anywhere: a file in the way instead
        (tmp_path / "ro").rmdir()
        (tmp_path / "ro").write_text("")
    err = one_line(capsys, "calibrate", "--study", "lr_wd", "--write-reference", "--dry-run", "--no-estimate")
    assert "--write-reference" in err and "ro" in err


def test_max_points_without_until_decided_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = one_line(capsys, "run", "--study", "lr_wd", "--max-points", "64", "--dry-run", "--no-estimate")
    assert "--max-points caps a study grown with --until-decided" in err


RUN1 = ["run", "--study", "lr_wd", "--models", "vitc_mini", "--trials", "1", "--epochs", "1", "--cluster", "debug", *TINY]


@pytest.mark.parametrize("url,says", [
    ("not a url", "storage 'not a url' is neither a database URL (postgresql://user@host/db, sqlite:////abs/file.db) "
                  "nor a journal file (an existing one, or a new one named *.journal)"),
    ("sqlite:///nowhere/x.db", "no folder nowhere/ for its file nowhere/x.db (three slashes make the path relative to "
                               "the working folder; an absolute one takes four: sqlite:////nowhere/x.db)"),
    ("nosuchdriver://u:secret@h/db", "cannot open storage nosuchdriver://u:***@h/db"),
])
def test_a_storage_that_cannot_be_opened_leaves_nothing_behind(tmp_path, monkeypatch, capsys, url, says):
    monkeypatch.chdir(tmp_path)
    assert says in one_line(capsys, *RUN1, "--storage", url)
    assert not list(tmp_path.iterdir())  # no journal named 'not a url', no results/<study>/runner.lock


def test_a_dry_run_creates_no_sqlite_database(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*RUN1, "--dry-run", "--storage", "sqlite:///s.db"]) == 0
    assert not (tmp_path / "s.db").exists()


def test_a_journal_on_a_read_only_mount(tmp_path, monkeypatch, capsys):
    """--storage on a read-only filesystem, --results elsewhere: one line; reading it still works."""
    monkeypatch.chdir(tmp_path)
    ro = _tmpfs(tmp_path / "ro", "4m")
    try:
        journal = _recorded_study(tmp_path)
        (ro / "s.journal").write_bytes(journal.read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        capsys.readouterr()
        run = ["run", "--study", "lr_wd", "--models", "vitp_mini", "--trials", "2", "--epochs", "1", "--cluster",
               "debug", *TINY, "--storage", str(ro / "s.journal"), "--results", str(tmp_path / "elsewhere")]
        err = one_line(capsys, *run)
        assert f"cannot write journal {ro / 's.journal'}: Read-only file system" in err
        assert main(["status", "--storage", str(ro / "s.journal")]) == 0
        assert "lr_wd/vitp_mini/adamw/local      2" in capsys.readouterr().out  # every trial still there
    finally:
        subprocess.run(["umount", str(ro)])


def test_until_decided_without_a_vit_pair_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = one_line(capsys, "run", "--study", "lr_wd", "--models", "vitc_mini", "--optimizer", "adamw",
                   "--until-decided", "--dry-run", "--no-estimate")
    assert "no claim to decide" in err and "vitp_mini vitc_mini" in err


LR_WD_LOCAL = Path(__file__).resolve().parents[2] / "results/reference/lr_wd_local/trials.csv"


def test_tables_the_claims_cannot_read_say_why(tmp_path, capsys):
    """One point per arm: the pair is named and what a claim needs; one run twice with different errors:
    refused, not averaged; every run diverged: an EDF of error − best is refused, not drawn empty."""
    import pandas as pd

    df = pd.read_csv(LR_WD_LOCAL)
    df[df["point"] == 0].to_csv(tmp_path / "one.csv", index=False)
    assert main(["verdict", "--table", str(tmp_path / "one.csv")]) == 0
    assert "pair vitp_mini and vitc_mini hold one point per model and optimizer" in capsys.readouterr().out
    pd.concat([df, df.head(3).assign(error=df.head(3)["error"] + 10)]).to_csv(tmp_path / "dup.csv", index=False)
    assert "3 run(s) appear more than once with different errors" in one_line(capsys, "verdict", "--table",
                                                                              tmp_path / "dup.csv")
    pd.concat([df, df.head(3)]).to_csv(tmp_path / "same.csv", index=False)  # an exact copy changes no mean
    assert main(["verdict", "--table", str(tmp_path / "same.csv")]) == 0
    capsys.readouterr()
    df.assign(diverged=True, error=90.0).to_csv(tmp_path / "div.csv", index=False)
    for flag in ("--delta", "--scaled"):
        assert "every run diverged" in one_line(capsys, "plot", "edf", flag, "--table", tmp_path / "div.csv",
                                                "--out", tmp_path / "div.png")
