"""Write (or check) the verdict block of a committed reference study's README from its trial table.

    python scripts/reference_verdict.py results/reference/lr_wd_local            # rewrite the block
    python scripts/reference_verdict.py results/reference/lr_wd_local --check    # exit 1 if stale

The block between ``<!-- verdict -->`` and ``<!-- /verdict -->`` in ``README.md`` is
``analysis.verdict.markdown`` of ``trials.csv``; a block ``<!-- verdict NAME -->`` ... ``<!-- /verdict -->``
is the same of ``NAME.csv`` (e.g. a rerun): the numbers in the README are the CSVs', always.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import load_trials, verdict  # noqa: E402

BLOCK = re.compile(r"(<!-- verdict ?(\w*) -->\n)(.*?)(<!-- /verdict -->)", re.S)


def block(folder: Path, table: str = "") -> str:
    return verdict.markdown(verdict.findings(load_trials(folder / f"{table or 'trials'}.csv")))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args(argv)
    readme = args.folder / "README.md"
    text = readme.read_text()
    if not BLOCK.search(text):
        print(f"{readme}: no <!-- verdict --> ... <!-- /verdict --> block", file=sys.stderr)
        return 2
    new = BLOCK.sub(lambda m: m.group(1) + block(args.folder, m.group(2)) + m.group(4), text)
    if args.check:
        return 0 if new == text else 1
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
