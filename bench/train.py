"""``bench train``: one trial from the command line (the runner calls ``bench.trial.run_trial``)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.core.dataspec import USAGE as DATA_USAGE
from bench.core.identity import DEFAULT_BATCH, DEFAULT_RECIPE
from bench.recipe import OPTIMIZERS, RECIPES


def run(args) -> int:
    from bench.core.identity import TrialConfig

    cfg = TrialConfig(model=args.model, optimizer=args.optimizer, lr=args.lr, wd=args.wd, epochs=args.epochs,
                      batch_size=args.batch_size, data=args.data, resolution=args.res, seed=args.seed,
                      recipe=args.recipe, device=args.device, compile=args.compile)
    check(cfg)
    from bench.trial import run_trial

    out = Path(args.out or f"results/train/{cfg.model}-{cfg.optimizer}-lr{cfg.lr:g}-wd{cfg.wd:g}-s{cfg.seed}")
    log = (lambda msg: print(msg, file=sys.stderr)) if args.json else print
    result = run_trial(cfg, out, log=log)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "curve"} | {"curve": result["curve"]}))
    else:
        state = "DIVERGED" if result["diverged"] else "done"
        print(f"{state}: error {result['error']:.2f}% (EMA model; raw model {result['raw_error']:.2f}%) after "
              f"{result['epochs_done']} epochs, {result['seconds']:.1f} s, {result['img_per_s']:.0f} img/s -> {out}")
    return 0


def check(cfg) -> None:
    """Names, values and the data folder, checked before torch is imported (seconds): one line each."""
    from bench.core import dataspec
    from bench.core.identity import TrialError
    from bench.core.models import check_resolution

    cfg.validate()
    check_resolution(cfg.model, cfg.resolution)
    spec = dataspec.parse(cfg.data)
    if spec.missing_folder():
        raise TrialError(f"data folder {spec.missing_folder()} (--data {cfg.data}) does not exist")
    problems = spec.problems()
    if problems:
        raise TrialError("; ".join(problems))


def register(sub) -> None:
    p = sub.add_parser("train", help="train one (model, optimizer, lr, wd) trial, resumable")
    p.add_argument("--model", required=True, help="a bench or timm model name, or module:function")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw", help="adamw or sgd (default: adamw)")
    p.add_argument("--lr", type=float, required=True, help="learning rate for batch 2048 (scaled linearly)")
    p.add_argument("--wd", type=float, required=True, help="weight decay")
    p.add_argument("--epochs", type=int, required=True, help="epochs to train")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help=f"batch size, even (default: {DEFAULT_BATCH})")
    p.add_argument("--data", default="synthetic", help=f"a data spec: {DATA_USAGE}")
    p.add_argument("--res", type=int, help="resolution (default: the model's own)")
    p.add_argument("--seed", type=int, default=0, help="training seed (default: 0)")
    p.add_argument("--recipe", choices=list(RECIPES), default=DEFAULT_RECIPE,
                   help=f"paper or light (default: {DEFAULT_RECIPE}; docs/recipe.md)")
    p.add_argument("--device", help="cpu | cuda | cuda:N (default: cuda if available)")
    p.add_argument("--compile", action="store_true", help="torch.compile the training forward (pays off on GPU)")
    p.add_argument("--out", help="trial directory (checkpoint + result.json); rerun to resume")
    p.add_argument("--json", action="store_true", help="last line of output: the result as one JSON object")
    p.set_defaults(func=run)
