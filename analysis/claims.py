"""The paper's claims as tests: each claim is two one-sided tests of one statistic, at level alpha
each (a ``Design`` splits it over the looks of a grown study), and a verdict by one rule:
*reproduced* when the test in the paper's direction is significant, *not reproduced* when the one in
the opposite direction is, *inconclusive* otherwise, and whenever a group's best run does not reach
half the chance error (its runs then measure noise). An inconclusive claim says its power now, the
points per arm that 80% power needs at the observed effect (resampling the observed points), and
what they would cost.

Two families of claims, by what a study holds:

* a random search (``search_claims``): ViTp vs ViTc at the same (lr, wd) draws, per optimizer:
  robust (Δ-EDF above), better (lower at the same draws), best (lower expected best of k), and
  across optimizers: ViTp's SGD − AdamW gap positive, and larger than ViTc's;
* tuned points at several training lengths or stems (``tuned_claims``, analysis.tuned).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import stats

ALPHA = 0.05
TARGET_POWER = 0.8
CLAIMS = {
    "robust": "ViTc is more robust to (lr, wd) than ViTp: more of its runs lie near its best "
              "(Δ-EDF above; one-sided KS on Δ)",
    "better": "ViTc's error is lower than ViTp's at the same (lr, wd) draws (paired signed-rank)",
    "best": f"ViTc's best error is lower than ViTp's (expected best of {stats.BEST_OF} runs)",
    "sgd": f"ViTp trains worse with SGD than with AdamW: its SGD − AdamW gap (expected best of "
           f"{stats.BEST_OF}) is positive",
    "gap": "ViTp's SGD − AdamW gap is larger than ViTc's",
}  # fmt: skip


@dataclass(frozen=True)
class Design:
    """How a study's claims are tested: ``alpha`` over ``looks`` (points per arm at each look of a
    study grown by doubling), Bonferroni: each look tests at alpha / len(looks)."""

    alpha: float = ALPHA
    looks: tuple[int, ...] = ()

    @property
    def per_look(self) -> float:
        return self.alpha / max(1, len(self.looks))

    @classmethod
    def grown(cls, start: int, max_points: int, alpha: float = ALPHA) -> Design:
        """The looks of a study grown by doubling its points: start, 2 start, ..., capped at max_points."""
        looks = [start]
        while looks[-1] < max_points:
            looks.append(min(2 * looks[-1], max_points))
        return cls(alpha, tuple(looks))

    @classmethod
    def read(cls, path) -> Design | None:
        """The design a study was grown with (``design.json`` beside its trials), if it has one."""
        from pathlib import Path

        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None
        return cls(float(d["alpha"]), tuple(int(n) for n in d["looks"]))

    def describe(self) -> str:
        if len(self.looks) <= 1:
            return f"α = {self.alpha:g} per one-sided test"
        return (f"α = {self.alpha:g} split over {len(self.looks)} planned looks at "
                f"{', '.join(map(str, self.looks))} points per arm (Bonferroni): {self.per_look:.4g} per one-sided test")


@dataclass
class Claim:
    """One claim's verdict: its statistic (> 0 is the paper's direction), the one-sided p-values in
    the paper's direction (``p``) and the other (``p_other``), and, when inconclusive, what would decide it."""

    claim: str
    pair: str
    optimizer: str
    verdict: str
    statistic: float
    p: float
    p_other: float
    evidence: str
    n: int
    statement: str = ""
    power: float | None = None
    n_needed: int | None = None
    cost: str | None = None
    detail: dict = field(default_factory=dict)


def pairs(models) -> list[tuple[str, str]]:
    """(ViTp, ViTc) model pairs of the same size present in ``models`` (vitp_X with vitc_X)."""
    models = set(models)
    return [(m, "vitc" + m[4:]) for m in sorted(models) if m.startswith("vitp") and "vitc" + m[4:] in models]


def point_errors(pm: pd.DataFrame, model: str, optimizer: str) -> pd.Series:
    """A group's per-point (seed-averaged) errors, indexed by point where every row has one."""
    g = pm[pm["model"].eq(model) & pm["optimizer"].eq(optimizer)]
    return g.set_index("point")["error"] if g["point"].notna().all() else g["error"].reset_index(drop=True)


def aligned(*series: pd.Series) -> list[np.ndarray]:
    """The errors of several groups at the points they all hold, in point order."""
    frame = pd.concat(series, axis=1, join="inner").sort_index()
    return [frame.iloc[:, i].to_numpy(float) for i in range(len(series))]


def separable(pm: pd.DataFrame) -> list[str]:
    """Why the study cannot separate models (empty if it can): groups whose best run stays
    above half the chance error."""
    return [f"{model}/{opt}: best run {best:.1f}% error against chance {chance:.1f}% "
            f"(a good run must reach half of chance, {chance / 2:.1f}%)"
            for (model, opt), (best, chance) in near_chance(pm).items()]


def near_chance(pm: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float]]:
    """(model, optimizer) -> (best, chance) of the groups whose best run stays above half the chance error."""
    out = {}
    for (model, opt), g in pm.groupby(["model", "optimizer"], sort=True):
        best, chance = float(g["error"].min()), float(g["chance"].max())
        if not best <= chance / 2:
            out[(model, opt)] = (best, chance)
    return out


# ---- the claims of a random search: ViTp vs ViTc, per optimizer


def _verdict(p: float, p_other: float, alpha: float, noise: bool) -> str:
    if noise or not (np.isfinite(p) and np.isfinite(p_other)):
        return "inconclusive"
    return "reproduced" if p < alpha else "not reproduced" if p_other < alpha else "inconclusive"


def _decide(kind: str, arrays, chance: float, alpha: float, sign: int, seed: int):
    """The claim's own test as a function of a resampled study (for power): True if significant in
    the direction ``sign`` (+1 the paper's)."""
    def decide(sample):
        p, q = _test(kind, sample, chance, seed, n_perm=400)
        return (p if sign > 0 else q) < alpha
    return decide


def _test(kind: str, arrays, chance: float, seed: int, n_perm: int = 2000) -> tuple[float, float]:
    """(p in the paper's direction, p the other way) of a claim on aligned arrays."""
    if kind == "robust":  # arrays: ViTc, ViTp
        t = stats.ks_delta(arrays[0], arrays[1], chance, n_boot=n_perm, seed=seed)
        return t.p_a, t.p_b
    if kind == "better":  # ViTc, ViTp: differences ViTp - ViTc > 0
        t = stats.signed_rank(arrays[0], arrays[1], n_perm=2 * n_perm, seed=seed)
        return t.p_pos, t.p_neg
    t = stats.contrast_test(arrays, _COEF[kind])
    return t.p_a, t.p_b


_COEF = {"best": (1, -1), "sgd": (1, -1), "gap": (1, -1, -1, 1)}


def _resolve(kind, arrays, chance, stat, p, q, alpha, noise, seed, cost_per_point) -> dict:
    """Verdict, and for an inconclusive claim its power now and the points 80% power needs."""
    out = dict(verdict=_verdict(p, q, alpha, noise))
    if out["verdict"] != "inconclusive" or noise or not np.isfinite(stat):
        return out
    n = arrays[0].size

    def draw(rng, m):
        idx = rng.integers(0, n, m)
        return [a[idx] for a in arrays]

    sign = 1 if stat >= 0 else -1
    pw, need = stats.points_needed(draw, _decide(kind, arrays, chance, alpha, sign, seed), n,
                                   TARGET_POWER, sims=100 if kind == "robust" else 200, seed=seed)
    out.update(power=pw, n_needed=need, direction="the paper's" if sign > 0 else "the opposite")
    if need is not None and need > n:
        more = (need - n) * cost_per_point
        out["cost"] = f"{need - n} more points per arm: ≈ {_duration(more)} of training at the recorded seconds per trial"
    return out


def search_claims(pm: pd.DataFrame, design: Design, seed: int = 0, power: bool = True) -> list[Claim]:
    """The random-search claims of every ViTp/ViTc pair, per optimizer and across optimizers."""
    noise_groups = near_chance(pm)
    alpha = design.per_look
    secs = pm.groupby(["model", "optimizer"])["seconds"].mean().to_dict()
    out = []
    opts = sorted(pm["optimizer"].unique())

    def add(kind, pr, opt, arrays, stat, p, q, evidence, models_opts, **detail):
        noise = any(mo in noise_groups for mo in models_opts)
        cost = sum(secs.get(mo, np.nan) for mo in models_opts)
        chance = float(pm["chance"].max())
        res = (_resolve(kind, arrays, chance, stat, p, q, alpha, noise, seed, cost) if power
               else dict(verdict=_verdict(p, q, alpha, noise)))
        detail.update({k: v for k, v in res.items() if k == "direction"})
        out.append(Claim(kind, pr, opt, res["verdict"], float(stat), float(p), float(q), evidence, int(arrays[0].size),
                         CLAIMS[kind], res.get("power"), res.get("n_needed"), res.get("cost"), detail))

    for p, c in pairs(pm["model"].unique()):
        pr = f"{p} vs {c}"
        for opt in opts:
            sp, sc = point_errors(pm, p, opt), point_errors(pm, c, opt)
            if sp.empty or sc.empty:
                continue
            ec, ep = aligned(sc, sp)
            chance = float(pm["chance"].max())
            t = stats.ks_delta(ec, ep, chance, seed=seed)
            stat = t.d_a if t.p_a <= t.p_b else -t.d_b
            wc, wp = stats.within(ec, ec.min(), 4), stats.within(ep, ep.min(), 4)
            add("robust", pr, opt, [ec, ep], stat, t.p_a, t.p_b,
                f"{c}'s Δ-EDF lies above {p}'s by up to {t.d_a:.2f} (at Δ = {t.at_a:.1f} points) and below it by up "
                f"to {t.d_b:.2f} (at Δ = {t.at_b:.1f}); one-sided KS p = {t.p_a:.3g} (the paper's "
                f"direction), {t.p_b:.3g} (the other); within 4 points of best: {c} {wc:.2f}, {p} {wp:.2f} "
                f"(n = {ec.size})", [(c, opt), (p, opt)], d_paper=t.d_a, d_other=t.d_b, at_paper=t.at_a, at_other=t.at_b)
            r = stats.signed_rank(ec, ep, seed=seed)  # differences ViTp - ViTc: > 0 favours ViTc
            wins = int(np.sum(ep - ec > stats.EPS))
            add("better", pr, opt, [ec, ep], r.median_diff, r.p_pos, r.p_neg,
                f"{p} − {c} per point: median {r.median_diff:+.1f} points, {c} lower at {wins}/{r.n} points; "
                f"signed-rank p = {r.p_pos:.3g} (the paper's direction), {r.p_neg:.3g} (the other)",
                [(c, opt), (p, opt)])
            add(*_contrast_claim("best", pr, opt, [ep, ec], f"{p} − {c}", [(p, opt), (c, opt)]))
        if {"adamw", "sgd"} <= set(opts):
            e = {(m, o): point_errors(pm, m, o) for m in (p, c) for o in ("adamw", "sgd")}
            if any(v.empty for v in e.values()):
                continue
            add(*_contrast_claim("sgd", pr, "sgd − adamw", aligned(e[(p, "sgd")], e[(p, "adamw")]),
                                 f"{p}: SGD − AdamW", [(p, "sgd"), (p, "adamw")]))
            four = aligned(e[(p, "sgd")], e[(p, "adamw")], e[(c, "sgd")], e[(c, "adamw")])
            gp, gc = stats.best_contrast(four[:2], (1, -1)), stats.best_contrast(four[2:], (1, -1))
            add(*_contrast_claim("gap", pr, "sgd − adamw", four,
                                 f"SGD − AdamW gap: {p} {iv(gp)}, {c} {iv(gc)}; difference",
                                 [(m, o) for m in (p, c) for o in ("sgd", "adamw")]))
    return out


def _contrast_claim(kind, pr, opt, arrays, what, models_opts):
    """The arguments of ``add`` for a claim on an expected-best-of-k contrast."""
    t = stats.contrast_test(arrays, _COEF[kind])
    contrast = stats.best_contrast(arrays, _COEF[kind])
    evidence = (f"{what} (expected best of {stats.BEST_OF}) = {iv(contrast)}; one-sided p = {t.p_a:.3g} (the paper's "
                f"direction), {t.p_b:.3g} (the other); lowest errors: " +
                ", ".join(f"{m}/{o} {np.nanmin(a):.1f}%" for (m, o), a in zip(models_opts, arrays)))
    return kind, pr, opt, arrays, t.d_a, t.p_a, t.p_b, evidence, models_opts


def iv(interval: stats.Interval, sign: str = "+", none: str = f"no interval below {stats.MIN_POINTS} points") -> str:
    """'+1.2 [+0.3, +2.1]' (a difference) or, with sign '', '1.2 [0.3, 2.1]' (a level); ``none``
    says why an interval is missing."""
    if not np.isfinite(interval.lo):
        return f"{interval.value:{sign}.1f} ({none})"
    return f"{interval.value:{sign}.1f} [{interval.lo:{sign}.1f}, {interval.hi:{sign}.1f}]"


def _duration(s: float) -> str:
    if not math.isfinite(s):
        return "an unknown time"
    return f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"
