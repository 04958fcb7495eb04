"""Paired random search: common uniform draws mapped log-uniformly into each family's range."""
from __future__ import annotations

import math

import numpy as np


def uniforms(seed: int, n: int) -> np.ndarray:
    """The first n draws u ~ U[0,1)^2 of numpy Generator(seed); a prefix of a larger n."""
    return np.random.default_rng(seed).random((n, 2))


def log_uniform(u: float, low: float, high: float) -> float:
    """Map u in [0, 1) log-uniformly into [low, high)."""
    return math.exp(math.log(low) + u * (math.log(high) - math.log(low)))


def pairs(seed: int, n: int, window) -> list[tuple[float, float]]:
    """n (lr, wd) pairs in ``window`` (a studies.Window: .lr and .wd ranges); pair i uses draw i."""
    return [(log_uniform(u_lr, *window.lr), log_uniform(u_wd, *window.wd)) for u_lr, u_wd in uniforms(seed, n)]
