"""Synthetic tidy trial tables (docs/storage.md columns) for tests and benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.core.records import COLUMNS, chance_error
from bench.core.paper import RANGES, TABLE3

# model -> (gflops, AdamW best error, SGD best error, width of the good basin in decades)
MODELS = {
    "vitp_1gf": (1.1, 33.0, 38.0, 0.35), "vitp_4gf": (3.9, 27.7, 33.0, 0.35),
    "vitc_1gf": (1.1, 29.0, 29.8, 0.6), "vitc_4gf": (4.0, 24.0, 24.7, 0.6),
    "regnety_1gf": (1.0, 25.0, 24.9, 0.7), "regnety_4gf": (4.1, 21.5, 21.3, 0.7),
}  # fmt: skip
OPTIMIZERS = ("adamw", "sgd")


def trials(n_points: int = 64, models=None, seeds: int = 1, epochs=(50,), study: str = "synth",
           budget: str = "paper", num_classes: int = 1000, seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Random-search results: every model x optimizer x epochs x seed at the same ``n_points``
    (lr, wd) uniforms (paired), with a log-quadratic error basin and divergence at high lr."""
    rng = np.random.default_rng(seed)
    models = list(models or MODELS)
    u = rng.random((n_points, 2))
    chance = chance_error(num_classes)
    parts = []
    for m in models:
        gf, ea, es, width = MODELS.get(m, (4.0, *TABLE3.get(m, (25.0, 26.0)), 0.5))
        fam = "regnety" if m.startswith("regnety") else "vit"  # the paper's families of these names
        for opt, base in zip(OPTIMIZERS, (ea, es)):
            window = RANGES[(fam, opt)]
            (llo, lhi), (wlo, whi) = (np.log10(r) for r in window.values())
            lr, wd = 10 ** (llo + u[:, 0] * (lhi - llo)), 10 ** (wlo + u[:, 1] * (whi - wlo))
            dl, dw = u[:, 0] - 0.55, u[:, 1] - 0.5
            for ep in epochs:
                for s in range(seeds):
                    noise = rng.normal(0, 0.3, n_points)
                    err = base + 3.0 / ep**0.5 + ((dl / width) ** 2 + 0.4 * (dw / width) ** 2) * 6 + noise
                    div = (dl > 0.35) & (rng.random(n_points) < 0.5)
                    parts.append(pd.DataFrame(dict(
                        study=study, model=m, family=fam, optimizer=opt, budget=budget, epochs=ep, seed=s,
                        point=np.arange(n_points), sampling_seed=seed, lr=lr, wd=wd, lr_low=window["lr"][0],
                        lr_high=window["lr"][1], wd_low=window["wd"][0], wd_high=window["wd"][1], error=np.where(div, chance, err),
                        raw_error=np.where(div, chance, err + 0.2), diverged=div, num_classes=num_classes,
                        chance=chance, gflops=gf, params_m=gf * 5, acts_m=gf * 4, resolution=224,
                        batch_size=256, data="synthetic", seconds=60.0 * gf, host="node0", job_id="0",
                        state="COMPLETE")))  # fmt: skip
    df = pd.concat(parts, ignore_index=True)
    df["trial_number"] = np.arange(len(df))
    return df[list(COLUMNS)]
