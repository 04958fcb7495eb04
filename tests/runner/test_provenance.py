"""Provenance: every result.json says what code, libraries and data made it, and a resumed study whose
finished trials came from other code says so in its plan."""
from __future__ import annotations

import json

from bench import provenance
from bench.cli import main


def test_mixes_names_what_differs_and_counts_trials():
    here = {**provenance.code(), **provenance.libraries()}
    same = dict(here)
    assert provenance.mixes([same, {}, {"torch": None}]) == []  # unknown is not different
    other = {**here, "commit": "0" * 40, "bench_tree": "1" * 40, "torch": "1.0.0"}
    assert provenance.mixes([other, other, same]) == ["commit 000000000000 (2 trials)", "torch 1.0.0 (2 trials)"]
    records_only = {**here, "commit": "0" * 40}  # a later commit that changed no training code
    assert provenance.mixes([records_only]) == [] if here.get("bench_tree") else ["commit 000000000000 (1 trial)"]
    assert provenance.of("synthetic:300")["data"] == "synthetic:300"


def test_a_result_records_its_provenance_and_a_resume_names_other_code(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--study", "lr_wd", "--models", "vitc_mini", "--optimizer", "adamw", "--trials", "1",
            "--epochs", "1", "--data", "synthetic:256", "--cluster", "debug", "--no-estimate", "--no-progress"]
    assert main(argv) == 0
    [result_file] = (tmp_path / "results" / "lr_wd" / "trials").glob("*/result.json")
    result = json.loads(result_file.read_text())
    p = result["provenance"]
    assert p["suite"] and p["python"] and p["torch"] and p["timm"] and p["data"] == "synthetic:256"
    assert len(p.get("commit", "0" * 40)) == 40  # a git checkout records its commit
    capsys.readouterr()
    assert main(argv + ["--dry-run"]) == 0
    assert "other code" not in capsys.readouterr().out
    result["provenance"] = {**p, "commit": "f" * 40, "bench_tree": "e" * 40}
    result_file.write_text(json.dumps(result))
    assert main(argv + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "finished trials of this study came from other code than this checkout's: commit ffffffffffff (1 trial)" in out
