"""bench: hyperparameter-robustness benchmarks of image models (Xiao et al. 2021).

Each subcommand lives in the module that does the work and registers itself here.
"""
from __future__ import annotations

import argparse
import sys

from bench.core.errors import UserError


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line (the usage is a `--help` away), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from analysis import cli as analysis_cli
    from bench import model_table, perf, prepare, train
    from bench.runner import cli as runner_cli

    parser = _Parser(prog="bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (model_table, train, perf, prepare, runner_cli, analysis_cli):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``bench`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:  # UserError and AnalysisError alike: one line, exit 2
        print(f"bench {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # one line; the runner says what survives
        print(f"bench {args.command}: interrupted" + (f": {e}" if str(e) else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
