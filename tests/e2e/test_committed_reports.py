"""Every committed report and README says what its trials say today: the verdict data each report
embeds (the Findings object and, for a user's model, its comparison with the reference), each README's
verdict block and the example README's comparison table are recomputed from the committed trials.csv
and design record, and any difference fails (scripts/regenerate_reports.py rewrites them all)."""
from __future__ import annotations

import functools
import importlib.util
import json
import math
import re
from pathlib import Path

import pytest

import analysis
from analysis import across, reference, verdict

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("regenerate_reports", ROOT / "scripts" / "regenerate_reports.py")
regen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(regen)
DATA = re.compile(r'<script type="application/json" id="verdict-data">(.*?)</script>', re.S)
EXAMPLE = ROOT / "results/examples/regnetx_002_vs_lr_wd_local"

pytestmark = pytest.mark.slow


def same(a, b, path="") -> list[str]:
    """Where two JSON values differ (floats to 1e-9 relative: another machine's last bits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in (same(a.get(k), b.get(k), f"{path}.{k}") if k in a and k in b
                                          else [f"{path}.{k}: only in {'the report' if k in a else 'a fresh run'}"])]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items in the report, {len(b)} fresh"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same(x, y, f"{path}[{i}]")]
    if isinstance(a, float | int) and isinstance(b, float | int) and not isinstance(a, bool):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else [f"{path}: {a} in the report, {b} fresh"]
    return [] if a == b else [f"{path}: {a!r} in the report, {b!r} fresh"]


@functools.cache
def fresh(table: str, ref: str | None) -> dict:
    """The verdict data of a report built from ``table`` (beside reference ``ref``), computed now."""
    df = analysis.load_trials(ROOT / table)
    design = verdict.table_design(ROOT / table)
    out = dict(source=table, reference=ref, against=None)
    if ref:
        ref_table = reference.locate(ref)
        df, ref_models, _ = reference.overlay(df, reference.load(ref_table), ref)
        design = verdict.table_design(ref_table)
        mine = sorted(set(df["model"]) - set(ref_models))
        rows = reference.compare(df, mine, ref_models).to_dict("records")
        out["against"] = json.loads(json.dumps(rows, default=str), parse_constant=lambda _: None)  # NaN: null
    out["findings"] = verdict.to_json(verdict.findings(df, design=design))
    return json.loads(json.dumps(out))


def test_every_committed_report_is_listed():
    committed = {str(p.relative_to(ROOT)) for p in ROOT.glob("results/*/*/report.html")}
    assert committed == set(regen.REPORTS), "add the report to scripts/regenerate_reports.py"


@pytest.mark.parametrize("out", sorted(regen.REPORTS))
def test_report_verdict_data_is_its_trials(out):
    args = regen.REPORTS[out]
    table, ref = args[args.index("--table") + 1], args[args.index("--reference") + 1] if "--reference" in args else None
    found = DATA.findall((ROOT / out).read_text())
    assert len(found) == 1, f"{out} embeds no verdict data: python scripts/regenerate_reports.py"
    diff = same(json.loads(found[0]), fresh(table, ref))
    assert not diff, f"{out} is stale (python scripts/regenerate_reports.py): " + "; ".join(diff[:5])


@pytest.mark.parametrize("readme", regen.READMES)
def test_readme_verdict_block_is_its_trials(readme):
    text = (ROOT / readme).read_text()
    assert verdict.BLOCK.search(text), readme
    assert verdict.readme(text, (ROOT / readme).parent) == text, f"{readme} is stale: bench verdict --readme {readme}"


@pytest.mark.parametrize("doc", regen.ACROSS)
def test_the_table_across_data_sets_is_the_references(doc):
    """README.md and docs/reference.md show each claim on the synthetic set, on CIFAR-10 and in the
    paper as the committed references decide it today."""
    text = (ROOT / doc).read_text()
    assert across.BLOCK.search(text), f"{doc} has no <!-- across --> block"
    assert across.fill(text) == text, f"{doc} is stale: python scripts/regenerate_reports.py"


def test_example_readme_table_is_the_comparison():
    """The own-model README's table (written by hand) holds the numbers of the comparison its report embeds."""
    rows = fresh(str((EXAMPLE / "trials.csv").relative_to(ROOT)), "lr_wd_local")["against"]
    text = (EXAMPLE / "README.md").read_text()
    table = [line.split("|")[1:-1] for line in text.splitlines() if re.match(r"\| vit[pc]_mini \|", line)]
    assert len(table) == len(rows) == 4
    def shows(text: str, value: float) -> bool:  # the printed number is the value, rounded as printed
        text = text.replace("−", "-").split()[0]
        digits = len(text.partition(".")[2])
        return abs(float(text) - value) <= 0.5 * 10 ** -digits + 1e-9

    for cells in table:
        vs, opt = cells[0].strip(), cells[1].strip().lower()
        r = next(r for r in rows if r["reference"] == vs and r["optimizer"] == opt)
        best, best_ref = cells[2].split(" vs ")
        assert shows(best, r["best"]) and shows(best_ref, r["best_ref"]), cells
        assert shows(cells[3], r["best_diff"]) and shows(cells[4], r["median_diff"]), cells
        assert cells[5].strip() == r["lower_at"] and shows(cells[6].strip(), r["p_lower"]), cells
        assert (cells[7].strip(), cells[8].strip()) == (r["error"], r["robustness"]), cells
