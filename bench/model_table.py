"""``bench models``: the models' complexity beside the paper's Tables 1-2 (any model with ``--name``)."""
from __future__ import annotations

import json
import sys
import warnings

from bench.core import models as registry, paper


def model_rows(names: list[str] | None = None, resolution: int | None = None) -> list[dict]:
    """One dict per model: measured params/flops/acts and, for the paper's models, the published ones.

    ``names`` may be bench models, timm models or ``module:function`` factories; what the count leaves
    out (attention it cannot count) is printed as a warning on stderr.
    """
    from bench import models
    from bench.complexity import complexity

    rows = []
    for name in names or registry.MODEL_NAMES:
        registry.check(name)  # unknown names list the valid ones
        res = resolution or models.default_resolution(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cx = complexity(name, res)
        for w in caught:
            print(f"bench models: warning: {name}: {w.message}", file=sys.stderr)
        row = dict(name=name, family=registry.family(name), resolution=res, params_m=cx["params"] / 1e6,
                   gflops=cx["flops"] / 1e9, acts_m=cx["acts"] / 1e6)
        if name in paper.COMPLEXITY and res == registry.resolution(name):
            gf, pm, am = paper.COMPLEXITY[name]
            row.update(paper_gflops=gf, paper_params_m=pm, paper_acts_m=am)
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table; paper columns show the published value and measured/paper ratio."""
    def paper(row, key, measured):
        return f"{row[key]:7.1f} ({row[measured] / row[key]:.3f})" if key in row else f"{'-':>15s}"

    width = max([14] + [len(r["name"]) for r in rows])
    head = (f"{'model':{width}s} {'res':>4s} {'params(M)':>10s} {'flops(B)':>9s} {'acts(M)':>8s}   "
            f"{'paper params':>15s} {'paper flops':>15s} {'paper acts':>15s}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:{width}s} {r['resolution']:4d} {r['params_m']:10.2f} {r['gflops']:9.3f} {r['acts_m']:8.2f}   "
                     f"{paper(r, 'paper_params_m', 'params_m')} {paper(r, 'paper_gflops', 'gflops')} "
                     f"{paper(r, 'paper_acts_m', 'acts_m')}")
    return "\n".join(lines)


def run(args) -> int:
    rows = model_rows(args.name, args.res)
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list the models with params/flops/acts beside the paper's tables")
    p.add_argument("--name", nargs="+", metavar="MODEL",
                   help="only these models: bench or timm names, or module:function factories")
    p.add_argument("--res", type=int, help="resolution (default: each model's own)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    p.set_defaults(func=run)
