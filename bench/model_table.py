"""``bench models``: the models' complexity beside the paper's Tables 1-2 (any model with ``--name``)."""
from __future__ import annotations

import json
import sys
import warnings

from bench.core import models as registry, paper


def model_rows(names: list[str] | None = None, resolution: int | None = None, classes: int = 1000) -> list[dict]:
    """One dict per model: measured params/flops/acts and, for the paper's models, the published ones.

    ``names`` may be bench models, timm models or ``module:function`` factories; what the count leaves
    out (attention it cannot count) is printed as a warning on stderr.
    """
    from bench import models
    from bench.complexity import complexity

    rows = []
    for name in names or registry.MODEL_NAMES:
        registry.check(name)  # unknown names list the valid ones
        registry.check_resolution(name, resolution)
        res = resolution or models.default_resolution(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cx = complexity(name, res, num_classes=classes)
        for w in caught:
            print(f"bench models: warning: {name}: {w.message}", file=sys.stderr)
        row = dict(name=name, family=registry.family(name), resolution=res, params_m=cx["params"] / 1e6,
                   gflops=cx["flops"] / 1e9, acts_m=cx["acts"] / 1e6)
        if name in paper.COMPLEXITY and res == registry.resolution(name) and classes == 1000:
            gf, pm, am = paper.COMPLEXITY[name]
            row.update(paper_gflops=gf, paper_params_m=pm, paper_acts_m=am)
        rows.append(row)
    return rows


def matched_to(name: str) -> str | None:
    """The model a bench model is flop-matched to, as the paper matches them: ViTc-X and RegNetY-X to
    ViTp-X (the paper's RegNetY-16GF to ViTp-18GF), a Table 3 stem S_i to its size's ViTc."""
    if "_s" in name:
        return name.rsplit("_s", 1)[0]
    size = name.split("_", 1)[-1]
    if name.startswith("regnety_"):
        size = {"16gf": "18gf", "mini": "mini"}.get(size, size)
    return f"vitp_{size}" if name.startswith(("vitc_", "regnety_")) and f"vitp_{size}" in registry.ARCHS else None


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table; paper columns show the published value and measured/paper ratio;
    ``vs`` the flops against the model it is flop-matched to, where that one is in the table."""
    def paper(row, key, measured):
        return f"{row[key]:7.1f} ({row[measured] / row[key]:.3f})" if key in row else f"{'-':>15s}"

    def flops(gf):
        return f"{gf:8.3f} G" if gf >= 0.1 else f"{gf * 1e3:8.2f} M"

    by_name = {r["name"]: r for r in rows}

    def vs(r):
        other = by_name.get(matched_to(r["name"]) or "")
        return f"{r['gflops'] / other['gflops']:.3f} x {other['name']}" if other else "-"

    width = max([14] + [len(r["name"]) for r in rows])
    head = (f"{'model':{width}s} {'res':>4s} {'params(M)':>10s} {'flops':>10s} {'acts(M)':>8s}   "
            f"{'paper params':>15s} {'paper flops':>15s} {'paper acts':>15s}   vs")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['name']:{width}s} {r['resolution']:4d} {r['params_m']:10.3f} {flops(r['gflops'])} {r['acts_m']:8.3f}   "
                     f"{paper(r, 'paper_params_m', 'params_m')} {paper(r, 'paper_gflops', 'gflops')} "
                     f"{paper(r, 'paper_acts_m', 'acts_m')}   {vs(r)}")
    return "\n".join(lines)


def run(args) -> int:
    rows = model_rows(args.name, args.res, args.classes)
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    return 0


def register(sub) -> None:
    p = sub.add_parser("models", help="list the models with params/flops/acts beside the paper's tables")
    p.add_argument("--name", nargs="+", metavar="MODEL",
                   help="only these models: bench or timm names, or module:function factories")
    p.add_argument("--res", type=int, help="resolution (default: each model's own)")
    p.add_argument("--classes", type=int, default=1000,
                   help="classes of the head (default: 1000, as the paper's tables count; the laptop data has 10)")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of the table")
    p.set_defaults(func=run)
