"""Regenerate every committed artefact that a study's trials decide: the reports of the committed
references and examples, the verdict blocks of their READMEs, and the table across data sets. Run it from the repository root
after a change to the analysis; tests/e2e/test_committed_reports.py fails while any is stale.

    python scripts/regenerate_reports.py            # rewrite them all (about a minute on 2 cores)
    python scripts/regenerate_reports.py --list     # print the bench commands instead
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REF, EX = "results/reference", "results/examples"
REPORTS = {  # report -> the `bench report` arguments that build it
    f"{REF}/lr_wd_local/report.html": ["--table", f"{REF}/lr_wd_local/trials.csv"],
    f"{REF}/optimizer_local/report.html": ["--table", f"{REF}/optimizer_local/trials.csv"],
    f"{REF}/stem_local/report.html": ["--table", f"{REF}/stem_local/trials.csv"],
    f"{EX}/regnetx_002_vs_lr_wd_local/report.html": ["--table", f"{EX}/regnetx_002_vs_lr_wd_local/trials.csv",
                                                     "--reference", "lr_wd_local"],
}
READMES = [f"{REF}/{name}/README.md" for name in ("lr_wd_local", "optimizer_local", "stem_local")]
ACROSS = ["README.md", "docs/reference.md"]  # the answer across data sets (analysis.across)


def commands() -> list[list[str]]:
    return ([["report", *args, "--out", out] for out, args in REPORTS.items()]
            + [["verdict", "--readme", readme] for readme in READMES])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="print the commands, run nothing")
    args = ap.parse_args()
    if args.list:
        print("\n".join("bench " + " ".join(c) for c in commands()))
        return 0
    sys.path.insert(0, str(ROOT))
    import os

    os.chdir(ROOT)  # the reports name their tables relative to the repository root
    from bench.cli import main as bench

    for argv in commands():
        t = time.perf_counter()
        rc = bench(argv)
        print(f"  ({time.perf_counter() - t:.0f} s)", flush=True)
        if rc:
            return rc
    from analysis import across

    for doc in ACROSS:
        path = ROOT / doc
        path.write_text(across.fill(path.read_text()))
        print(f"{doc}: the table across data sets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
