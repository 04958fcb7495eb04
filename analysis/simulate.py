"""Check by simulation that each interval and test of ``analysis.stats`` means what it says.

Studies are drawn from known distributions shaped like the reference study's (skewed errors,
steps of one validation image, diverged runs all at chance), so the true values are known:

* coverage: how often a 95% interval holds the true value (the expected best of k runs, the
  expected fraction of runs within k points of the best);
* false positives: how often a one-sided test at α fires in either direction when the two arms
  come from the same distribution (Δ-KS also when one is shifted: its Δs are then equal in law),
  at one look and over a study grown by doubling with α split over the looks.

``python -m analysis.simulate`` prints the table of docs/statistics.md; the slow test
``tests/analysis/test_simulation.py`` asserts its bounds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats as _st

from . import claims, stats

ALPHA = 0.05
STEP = 0.05  # one image of a 2,000-image validation set, in points
CHANCE = 90.0  # 10 classes


@dataclass(frozen=True)
class Dist:
    """A known error distribution: ``quantile(u)`` maps uniforms to errors (steps of STEP)."""

    name: str
    quantile: Callable[[np.ndarray], np.ndarray]

    def draw(self, rng, shape, rho: float = 0.0, like=None) -> np.ndarray:
        """Errors of ``shape``; with ``like`` (uniforms of another arm) correlated at ``rho`` through a
        Gaussian copula, as two models' errors at the same (lr, wd) draws are."""
        z = rng.standard_normal(shape)
        if like is not None:
            z = rho * like + math.sqrt(1 - rho**2) * z
        return self.quantile(_st.norm.cdf(z)), z

    def best_of(self, k: int, rng, m: int = 200_000) -> float:
        """E[min of k draws], by Monte Carlo over m studies."""
        return float(self.draw(rng, (m, k))[0].min(axis=1).mean())

    def within(self, n: int, points: float, rng, m: int = 20_000) -> float:
        """E[fraction of n runs within ``points`` of their best]."""
        x = self.draw(rng, (m, n))[0]
        return float(np.mean(x - x.min(axis=1, keepdims=True) <= points + stats.EPS))


def _steps(x):
    return np.round(np.asarray(x) / STEP) * STEP


def beta25(u):
    """100 x Beta(2, 5): the audit's skewed distribution."""
    return _steps(100 * _st.beta.ppf(u, 2, 5))


def reference_like(u, diverged: float = 0.15, chance: float = CHANCE):
    """Like the reference's ViT arms: a best near 17%, a long right tail, 15% diverged at chance."""
    body = 15 + 65 * _st.beta.ppf(np.clip(u / (1 - diverged), 0, 1), 1.3, 3.0)
    return np.where(u > 1 - diverged, chance, _steps(body))


DISTS = (Dist("beta(2,5)", beta25), Dist("reference-like", reference_like))


def coverage_best(dist: Dist, n: int, reps: int, seed: int = 0, k: int = stats.BEST_OF) -> float:
    rng = np.random.default_rng(seed)
    truth = dist.best_of(k, rng)
    hits = 0
    for _ in range(reps):
        iv = stats.best_contrast([dist.draw(rng, n)[0]], [1], k)
        hits += iv.lo <= truth <= iv.hi
    return hits / reps


def coverage_within(dist: Dist, n: int, points: float, reps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    truth = dist.within(n, points, rng)
    hits = 0
    for _ in range(reps):
        iv = stats.within_ci(dist.draw(rng, n)[0], points)
        hits += iv.lo - 1e-12 <= truth <= iv.hi + 1e-12
    return hits / reps


def _pair(dist: Dist, rng, n: int, rho: float):
    a, za = dist.draw(rng, n)
    return a, dist.draw(rng, n, rho=rho, like=za)[0]


def false_positives(test: str, dist: Dist, n: int, reps: int, seed: int = 0, alpha: float = ALPHA,
                    rho: float = 0.6) -> tuple[float, float]:
    """Rate at which ``test`` fires at ``alpha`` for a (p_a) and for b (p_b) when both arms share
    ``dist``, correlated at ``rho`` as paired draws are. (Δ is unchanged by a shift of one arm, so a
    shifted null gives exactly these rates for ks_delta.)"""
    rng = np.random.default_rng(seed)
    fire = np.zeros(2)
    for r in range(reps):
        a, b = _pair(dist, rng, n, rho)
        p = _test(test, a, b, seed + r)
        fire += np.asarray(p) < alpha
    return tuple(fire / reps)


def _test(test: str, a, b, seed: int) -> tuple[float, float]:
    if test == "ks_delta":
        d = stats.ks_delta(a, b, chance=CHANCE, n_boot=500, seed=seed)
        return d.p_a, d.p_b
    if test == "signed_rank":
        t = stats.signed_rank(a, b, n_perm=1000, seed=seed)
        return t.p_pos, t.p_neg
    if test == "best":
        d = stats.contrast_test([a, b], [1, -1])
        return d.p_a, d.p_b
    raise ValueError(f"unknown test {test!r}")


def gap_false_positives(dist: Dist, n: int, reps: int, seed: int = 0, alpha: float = ALPHA,
                        rho: float = 0.6) -> tuple[float, float]:
    """The difference of two SGD - AdamW gaps when all four arms share one distribution."""
    rng = np.random.default_rng(seed)
    fire = np.zeros(2)
    for _ in range(reps):
        a1, z = dist.draw(rng, n)
        arms = [a1] + [dist.draw(rng, n, rho=rho, like=z)[0] for _ in range(3)]
        d = stats.contrast_test(arms, [-1, 1, 1, -1])
        fire += np.asarray([d.p_a, d.p_b]) < alpha
    return tuple(fire / reps)


def sequential_false_positives(test: str, dist: Dist, start: int, max_points: int, reps: int,
                               seed: int = 0, alpha: float = ALPHA, rho: float = 0.6) -> float:
    """Rate at which a study grown by doubling (stopping at the first look where ``test`` fires
    either way at alpha / looks, Bonferroni) ends with a false verdict under the null: at most
    alpha for each direction, so 2 alpha for either."""
    rng = np.random.default_rng(seed)
    design = claims.Design.grown(start, max_points, alpha)
    plan, per_look = design.looks, design.per_look
    fired = 0
    for r in range(reps):
        a, b = _pair(dist, rng, max_points, rho)
        fired += any(min(_test(test, a[:n], b[:n], seed + r)) < per_look for n in plan)
    return fired / reps


def table(reps: int = 400, seed: int = 0) -> list[dict]:
    """Every check at the reference's sizes: one row each (check, distribution, n, rho, value, nominal).
    Paired arms are correlated (rho 0.6, as two models at the same draws); rho 0 is the worst case."""
    rows = []

    def row(check, dist, n, value, nominal, rho=None):
        rows.append(dict(check=check, dist=dist.name, n=n, rho=rho, value=value, nominal=nominal))

    for dist in DISTS:
        for n in (24, 48, 128):
            row(f"coverage: expected best of {stats.BEST_OF}, 95% interval", dist, n, coverage_best(dist, n, reps, seed), 0.95)
            for k in (2, 4, 8):
                row(f"coverage: within {k} points, 95% interval", dist, n, coverage_within(dist, n, k, reps, seed), 0.95)
        for n in (24, 48):
            for rho in (0.0, 0.6):
                for test in ("best", "signed_rank", "ks_delta"):
                    fp = false_positives(test, dist, n, reps, seed, rho=rho)
                    row(f"false positives at α = 0.05, the larger one-sided rate: {test}", dist, n, max(fp), ALPHA, rho)
                row("false positives at α = 0.05, the larger one-sided rate: gap difference", dist, n,
                    max(gap_false_positives(dist, n, reps, seed, rho=rho)), ALPHA, rho)
        for test in ("ks_delta", "best"):
            row(f"false positives, grown 24 -> 128 by doubling, α/4 a look (Bonferroni): {test}, either side", dist,
                128, sequential_false_positives(test, dist, 24, 128, reps, seed, rho=0.0), 2 * ALPHA, 0.0)
    return rows


def markdown(rows: list[dict]) -> str:
    """The table of ``table()`` as markdown."""
    out = ["| check | distribution | points per arm | rho | measured | nominal |", "|---|---|---|---|---|---|"]
    for r in rows:
        rho = "" if r["rho"] is None else f"{r['rho']:g}"
        out.append(f"| {r['check']} | {r['dist']} | {r['n']} | {rho} | {r['value']:.3f} | {r['nominal']:g} |")
    return "\n".join(out) + "\n"


BLOCK = re.compile(r"(<!-- simulation -->\n)(.*?)(<!-- /simulation -->)", re.S)


def main(argv=None) -> int:
    """``python -m analysis.simulate [--reps N] [--write docs/statistics.md]``: print the table, or fill
    the ``<!-- simulation -->`` block of a page with it."""
    import argparse
    from pathlib import Path

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--write", type=Path)
    args = ap.parse_args(argv)
    md = markdown(table(args.reps))
    if args.write:
        text = args.write.read_text()
        args.write.write_text(BLOCK.sub(lambda m: m.group(1) + md + m.group(3), text))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
