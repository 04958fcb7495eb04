"""The paper's claims as tests, and how a study's claims are decided together.

Each claim is two one-sided tests of one statistic (``p`` in the paper's direction, ``p_other`` the
other way). The claims of one study are one family, decided by Holm's step-down at α (a ``Design``
splits α over the looks of a grown study first): each claim's smaller one-sided p-value is
adjusted, and the verdict follows the adjusted one (``judge``):

* *reproduced* / *not reproduced*: the adjusted p-value is below α, in the paper's direction or the
  other; *mixed*, when the test's other direction is significant too (crossing EDFs);
* *inconclusive*: neither; it says its power and the points per arm that 80% power needs;
* *undecidable at this size*: the test cannot give a p-value below α at this many cells (the
  smallest attainable p is stated), so no outcome could decide it; it says what would;
* a rule fixed before the run can decide instead of the test (``blocked``): runs near chance, or a
  longest budget that has not plateaued. Every claim is also judged without the rules
  (``without``), and both verdicts are shown.

Two families of claims, by what a study holds:

* a random search (``search_claims``): ViTp vs ViTc at the same (lr, wd) draws, per optimizer:
  robust (Δ-EDF above), better (lower at the same draws), best (lower expected best of k); and at
  the tuned points retrained with fresh seeds (``--confirm``): ViTp's SGD − AdamW gap positive, and
  larger than ViTc's;
* tuned points at several training lengths or stems (``tuned_claims``, analysis.tuned).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import pandas as pd

from . import stats

ALPHA = 0.05
TARGET_POWER = 0.8
CONFIRM_SEED0 = 1000  # seeds of --confirm reruns start here (bench.runner.specs.CONFIRM_SEED0)
SENSITIVITY_K = (1, 2, 4, 8)  # the expected best of k as a sensitivity, beside a tuned-point claim
CLAIMS = {
    "robust": "ViTc is more robust to (lr, wd) than ViTp: more of its runs lie near its best "
              "(Δ-EDF above; one-sided KS on Δ)",
    "better": "ViTc's error is lower than ViTp's at the same (lr, wd) draws (paired signed-rank)",
    "best": f"ViTc's best error is lower than ViTp's (expected best of {stats.BEST_OF} runs)",
    "sgd": "ViTp trains worse with SGD than with AdamW: at their tuned points, retrained with fresh "
           "seeds, its SGD − AdamW gap is positive",
    "gap": "ViTp's SGD − AdamW gap at the tuned points is larger than ViTc's",
}  # fmt: skip
REPRODUCED, NOT, MIXED, INCONCLUSIVE = "reproduced", "not reproduced", "mixed", "inconclusive"
UNDECIDABLE, DESCRIBED = "undecidable at this size", "described"
NEAR_CHANCE_RULE = ("runs near chance: a group (search) or cell (tuned points) whose error stays above half "
                    "the chance error measures noise; its search claims are inconclusive, and its cells are "
                    "left out of the optimizer-gap and convergence tests")
PLATEAU_RULE = ("a plateau: convergence is judged only when each arm's error at the longest budget improves "
                "on the budget before by no more than its seed noise")


@dataclass(frozen=True)
class Design:
    """How a study's claims are tested: ``alpha`` over ``looks`` (points per arm at each look of a
    study grown by doubling; Bonferroni: each look tests at alpha / len(looks)), Holm over the
    claims at each look, the exclusion ``rules`` fixed before the run, and the look the study
    stopped at (``recorded``: its verdicts are read there)."""

    alpha: float = ALPHA
    looks: tuple[int, ...] = ()
    recorded: int | None = None
    rules: tuple[str, ...] = (NEAR_CHANCE_RULE, PLATEAU_RULE)

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
        """The design a study was grown with (``design.json`` beside its trials), if it has one; its
        last recorded round is the look its verdicts are read at."""
        from pathlib import Path

        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return None
        rounds = d.get("rounds") or []
        recorded = int(rounds[-1]["points"]) if rounds else None
        return cls(float(d["alpha"]), tuple(int(n) for n in d["looks"]), recorded)

    def describe(self) -> str:
        holm = "Holm's step-down over the study's claims"
        if len(self.looks) <= 1:
            return f"α = {self.alpha:g}, {holm}"
        return (f"α = {self.alpha:g} split over {len(self.looks)} planned looks at "
                f"{', '.join(map(str, self.looks))} points per arm (Bonferroni): {self.per_look:.4g} a look, "
                f"{holm}" + (f"; verdicts read at the recorded look, {self.recorded} points per arm"
                             if self.recorded else ""))


@dataclass
class Claim:
    """One claim: its statistic (> 0 is the paper's direction) with its ``interval`` where one is
    valid, the one-sided p-values in the paper's direction (``p``) and the other (``p_other``),
    the smallest p-value its test can give (``p_min``; ``exact`` False: a Monte Carlo p-value, whose
    floor is ``p_min``), the Holm-adjusted p-value it is decided by (``p_adjusted``), and its
    verdict. ``blocked``: a rule's verdict that stands instead of the test's; ``without``: the same
    claim judged without the rules; ``crossing``: both directions can be significant at once (KS);
    ``power_of(level)``: the power now and what would decide it (dict), for an undecided claim."""

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
    interval: stats.Interval | None = None
    p_min: float = 0.0
    exact: bool = True
    p_adjusted: float = np.nan
    power: float | None = None
    n_needed: int | None = None
    cost: str | None = None
    blocked: str = ""
    crossing: bool = False
    without: Claim | None = None
    detail: dict = field(default_factory=dict)
    power_of: Callable | None = field(default=None, repr=False, compare=False)

    @property
    def p_decided(self) -> float:
        """The smaller one-sided p-value: the one Holm adjusts."""
        return float(np.fmin(self.p, self.p_other))


def fmt_p(p: float, p_min: float = 0.0, exact: bool = True) -> str:
    """A p-value as printed: 3 significant digits, '< floor' for a Monte Carlo p-value at its floor."""
    if p is None or not np.isfinite(p):
        return "n/a"
    if not exact and p <= p_min * (1 + 1e-9):
        return f"< {p_min:.2g}"
    return f"{p:.3g}"


def p_is(p: float, p_min: float = 0.0, exact: bool = True) -> str:
    """'p = 0.012', or 'p < 0.0005' at a Monte Carlo floor."""
    text = fmt_p(p, p_min, exact)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def judge(claims: list[Claim], alpha: float, power: bool = True) -> list[Claim]:
    """Decide a study's claims together (Holm at ``alpha``), and again without the rules
    (``without``); an undecided claim gets its power and what would decide it."""
    _decide(claims, alpha)
    bare = [replace(w, without=None, blocked="", detail=dict(w.detail))
            for w in (c.without if c.without is not None else c for c in claims)]
    _decide(bare, alpha)
    family = int(sum(_in_family(c, alpha) for c in claims))
    for c, w in zip(claims, bare):
        c.without = w
        if power and c.power_of is not None and c.verdict in (INCONCLUSIVE, UNDECIDABLE):
            res = c.power_of(alpha / max(1, family))
            c.power, c.n_needed, c.cost = res.get("power"), res.get("n_needed"), res.get("cost")
            c.detail.update({k: v for k, v in res.items() if k == "direction"})
    return claims


def _in_family(c: Claim, alpha: float) -> bool:
    """A claim its test can decide: a verdict to give, no rule standing in, finite p-values, and a
    smallest attainable p-value below alpha (a test that cannot reject adds nothing to Holm's count)."""
    return bool(c.verdict != DESCRIBED and not c.blocked and np.isfinite(c.p) and np.isfinite(c.p_other)
                and c.p_min < alpha)


def _decide(claims: list[Claim], alpha: float) -> None:
    family = [i for i, c in enumerate(claims) if _in_family(c, alpha)]
    adj, at = stats.holm([claims[i].p_decided for i in family], alpha)
    for c in claims:
        if c.verdict == DESCRIBED:
            continue
        c.p_adjusted = np.nan
        if c.blocked:
            c.verdict = c.blocked
        elif not (np.isfinite(c.p) and np.isfinite(c.p_other)):
            c.verdict = INCONCLUSIVE
        elif c.p_min >= alpha:
            c.verdict = UNDECIDABLE
    for i, a, t in zip(family, adj, at):
        c = claims[i]
        c.p_adjusted = float(a)
        if not a < alpha:
            c.verdict = INCONCLUSIVE
        elif c.crossing and max(c.p, c.p_other) <= t:
            c.verdict = MIXED
        else:
            c.verdict = REPRODUCED if c.p <= c.p_other else NOT


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

def search_runs(df: pd.DataFrame, design: Design) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the search runs at the recorded look, the ``--confirm`` reruns): a grown study's verdicts are
    read on the points it had at its last recorded look, with their search seeds only."""
    seed = pd.to_numeric(df["seed"], errors="coerce").fillna(0)
    confirm = seed >= CONFIRM_SEED0
    search = df[~confirm]
    if design.recorded is not None:
        search = search[~(pd.to_numeric(search["point"], errors="coerce") >= design.recorded)]
    return search, df[confirm]


def _decide_fn(kind: str, chance: float, level: float, sign: int, seed: int):
    """The claim's own test as a function of a resampled study (for power): True if significant at
    ``level`` in the direction ``sign`` (+1 the paper's)."""
    n_perm = max(400, int(np.ceil(4 / level)))

    def decide(sample):
        p, q = _test(kind, sample, chance, seed, n_perm)
        return (p if sign > 0 else q) < level
    return decide


def _test(kind: str, arrays, chance: float, seed: int, n_perm: int = 2000) -> tuple[float, float]:
    """(p in the paper's direction, p the other way) of a claim on its arrays."""
    if kind == "robust":  # arrays: ViTc, ViTp, aligned by draw
        t = stats.ks_delta(arrays[0], arrays[1], chance, n_boot=n_perm, seed=seed, null="paired")
        return t.p_a, t.p_b
    if kind == "better":  # ViTc, ViTp: differences ViTp - ViTc > 0
        t = stats.signed_rank(arrays[0], arrays[1], n_perm=2 * n_perm, seed=seed)
        return t.p_pos, t.p_neg
    if kind == "best":
        t = stats.contrast_test(arrays, _COEF[kind])
        return t.p_a, t.p_b
    _, p, q = stats.welch_contrast(arrays, _COEF[kind])  # tuned points: runs of each arm
    return p, q


_COEF = {"best": (1, -1), "sgd": (1, -1), "gap": (1, -1, -1, 1)}


def _power_of(kind, arrays, chance, stat, seed, cost_per_point, paired: bool = True, unit: str = "points per arm"):
    """power_of(level) of a claim: its power now and the size that 80% power needs, resampling the
    observed points (rows together when ``paired``, each arm on its own otherwise)."""
    def power_of(level):
        if not np.isfinite(stat):
            return {}
        n = arrays[0].size

        def draw(rng, m):
            if paired:
                idx = rng.integers(0, n, m)
                return [a[idx] for a in arrays]
            return [a[rng.integers(0, a.size, m)] for a in arrays]

        sign = 1 if stat >= 0 else -1
        pw, need = stats.points_needed(draw, _decide_fn(kind, chance, level, sign, seed), n, TARGET_POWER,
                                       sims=100 if kind == "robust" else 200, seed=seed,
                                       grid=(4, 6, 8, 12, 16, 24, 32, 48, 64) if not paired else
                                       (24, 32, 48, 64, 96, 128, 192, 256, 384, 512))
        out = dict(power=pw, n_needed=need, direction="the paper's" if sign > 0 else "the opposite")
        if need is not None and need > n:
            out["cost"] = (f"{need - n} more {unit}: ≈ {_duration((need - n) * cost_per_point)} of training at "
                           f"the recorded seconds per trial")
        return out
    return power_of


def search_claims(pm: pd.DataFrame, design: Design, confirm: pd.DataFrame | None = None, seed: int = 0) -> list[Claim]:
    """The random-search claims of every ViTp/ViTc pair, per optimizer, on the search runs ``pm``
    (seed-averaged points), and the tuned-point claims across optimizers on the ``confirm`` reruns;
    undecided (``judge`` decides a study's claims together)."""
    noise_groups = near_chance(pm)
    secs = pm.groupby(["model", "optimizer"])["seconds"].mean().to_dict()
    chance = float(pm["chance"].max()) if len(pm) else np.inf
    out = []

    def add(kind, pr, opt, arrays, stat, p, q, evidence, models_opts, **kw):
        noise = [mo for mo in models_opts if mo in noise_groups]
        cost = sum(secs.get(mo, np.nan) for mo in models_opts)
        c = Claim(kind, pr, opt, "", float(stat), float(p), float(q), evidence, int(arrays[0].size), CLAIMS[kind],
                  power_of=_power_of(kind, arrays, chance, stat, seed, cost), **kw)
        if noise:
            c.without = replace(c)
            c.blocked = INCONCLUSIVE
            c.evidence += f"; {', '.join('/'.join(mo) for mo in noise)} near chance (a rule fixed before the run)"
        out.append(c)

    opts = sorted(pm["optimizer"].unique())
    for p, c in pairs(pm["model"].unique()):
        pr = f"{p} vs {c}"
        for opt in opts:
            sp, sc = point_errors(pm, p, opt), point_errors(pm, c, opt)
            if sp.empty or sc.empty:
                continue
            ec, ep = aligned(sc, sp)
            t = stats.ks_delta(ec, ep, chance, seed=seed, null="paired")
            stat = t.d_a if t.p_a <= t.p_b else -t.d_b
            wc, wp = stats.within(ec, ec.min(), 4), stats.within(ep, ep.min(), 4)
            floor = 1 / 2001
            add("robust", pr, opt, [ec, ep], stat, t.p_a, t.p_b,
                f"{c}'s Δ-EDF lies above {p}'s by up to D = {t.d_a:.2f} (at Δ = {t.at_a:.1f} points: more of its runs "
                f"near its best) and below it by up to D = {t.d_b:.2f} (at Δ = {t.at_b:.1f}); one-sided KS, paired null, "
                f"{p_is(t.p_a, floor, False)} (the paper's direction), {p_is(t.p_b, floor, False)} (the other); "
                f"within 4 points of best: {c} {wc:.2f}, {p} {wp:.2f} (n = {ec.size})", [(c, opt), (p, opt)],
                p_min=floor, exact=False, crossing=True,
                detail=dict(d_paper=t.d_a, d_other=t.d_b, at_paper=t.at_a, at_other=t.at_b))
            r = stats.signed_rank(ec, ep, seed=seed)  # differences ViTp - ViTc: > 0 favours ViTc
            wins = int(np.sum(ep - ec > stats.EPS))
            add("better", pr, opt, [ec, ep], r.median_diff, r.p_pos, r.p_neg,
                f"{p} − {c} per point: median {r.median_diff:+.1f} points, {c} lower at {wins}/{r.n} points; exact "
                f"signed-rank p = {fmt_p(r.p_pos)} (the paper's direction), {fmt_p(r.p_neg)} (the other)",
                [(c, opt), (p, opt)], p_min=r.p_min, exact=r.exact)
            args, contrast = _contrast_claim("best", pr, opt, [ep, ec], f"{p} − {c}", [(p, opt), (c, opt)])
            add(*args, interval=contrast)
        if {"adamw", "sgd"} <= set(opts):
            out += _tuned_point_claims(pm, confirm, p, c, secs, chance, seed)
    return out


def _contrast_claim(kind, pr, opt, arrays, what, models_opts):
    """The arguments of ``add`` for a claim on an expected-best-of-k contrast."""
    t = stats.contrast_test(arrays, _COEF[kind])
    contrast = stats.best_contrast(arrays, _COEF[kind])
    evidence = (f"{what} (expected best of {stats.BEST_OF}) = {iv(contrast)}; one-sided p = {fmt_p(t.p_a)} (the paper's "
                f"direction), {fmt_p(t.p_b)} (the other); lowest errors: " +
                ", ".join(f"{m}/{o} {np.nanmin(a):.1f}%" for (m, o), a in zip(models_opts, arrays)))
    return (kind, pr, opt, arrays, t.d_a, t.p_a, t.p_b, evidence, models_opts), contrast


def _tuned_point_claims(pm, confirm, p, c, secs, chance, seed) -> list[Claim]:
    """sgd and gap: the optimizers at their tuned points, retrained with fresh seeds (the confirm
    runs), Welch t on the confirmed points (each point's fresh seeds averaged: the runs of one point
    share it, so the point is the unit); the expected best of k on the search runs beside them as a
    sensitivity (k = SENSITIVITY_K). Without two confirmed points per arm: described only."""
    e = {(m, o): point_errors(pm, m, o) for m in (p, c) for o in ("sgd", "adamw")}
    if any(v.empty for v in e.values()):
        return []
    four = aligned(e[(p, "sgd")], e[(p, "adamw")], e[(c, "sgd")], e[(c, "adamw")])
    runs = {}
    if confirm is not None and len(confirm):
        done = confirm[confirm["state"].eq("COMPLETE")] if "state" in confirm else confirm
        runs = {k: g.groupby("point")["error"].mean().to_numpy(float) for k, g in done.groupby(["model", "optimizer"])}
    out = []
    for kind, arms, coef in (("sgd", [(p, "sgd"), (p, "adamw")], (1, -1)),
                             ("gap", [(p, "sgd"), (p, "adamw"), (c, "sgd"), (c, "adamw")], (1, -1, -1, 1))):
        groups = four[:2] if kind == "sgd" else four
        sens = {k: stats.best_contrast(groups, coef, k) for k in SENSITIVITY_K}
        sens_text = ("expected best of k on the search runs (a sensitivity: it mixes where the window sits with "
                     "how good the optimizer is): " + ", ".join(f"k = {k}: {iv(v)}" for k, v in sens.items()))
        what = f"{p} SGD − AdamW" if kind == "sgd" else f"SGD − AdamW gap, {p} − {c}"
        detail = {f"best_of_{k}": dict(value=v.value, ci=[v.lo, v.hi]) for k, v in sens.items()}
        arrays = [runs.get(a, np.array([])) for a in arms]
        if any(a.size < 2 for a in arrays):
            out.append(Claim(kind, f"{p} vs {c}", "sgd − adamw", DESCRIBED, sens[stats.BEST_OF].value, np.nan, np.nan,
                             f"{what}: not tested, fewer than 2 tuned points per arm retrained with fresh seeds "
                             f"(bench run --confirm N --seeds S tests it); {sens_text}", int(groups[0].size),
                             CLAIMS[kind], detail=detail))
            continue
        ci, pp, pq = stats.welch_contrast(arrays, coef)
        means = ", ".join(f"{m}/{o} {_mean_text(a)}" for (m, o), a in zip(arms, arrays))
        cost = sum(secs.get(a, np.nan) for a in arms)
        out.append(Claim(kind, f"{p} vs {c}", "sgd − adamw", "", ci.value, pp, pq,
                         f"{what} at the tuned points (the confirm step: each arm's best search points retrained "
                         f"with fresh seeds, a point's seeds averaged; per arm, mean of its points [95% t CI]: "
                         f"{means}) = {iv(ci, none='no interval')}; Welch t over the points p = {fmt_p(pp)} (the "
                         f"paper's direction), {fmt_p(pq)} (the other); {sens_text}",
                         int(min(a.size for a in arrays)), CLAIMS[kind], interval=ci, detail=detail,
                         power_of=_power_of(kind, arrays, chance, ci.value, seed, 2 * cost, False,
                                            "confirmed points per arm (2 fresh seeds each)")))
    return out


def _mean_text(a: np.ndarray) -> str:
    """'mean [lo, hi] (n points)' of one arm's confirmed points, a Student t interval."""
    return f"{iv(stats.mean_interval(a), '', none='one point')} ({a.size} points)"


def confirmed_table(pm: pd.DataFrame, confirm: pd.DataFrame) -> pd.DataFrame:
    """The confirmed best: per model, optimizer and confirmed point, its search error (one seed) and
    its error retrained with fresh seeds (mean, 95% t interval): how much the search's best regresses."""
    if confirm is None or confirm.empty:
        return pd.DataFrame()
    done = confirm[confirm["state"].eq("COMPLETE")] if "state" in confirm else confirm
    rows = []
    for (m, o, pt), g in done.groupby(["model", "optimizer", "point"], sort=True):
        e = g["error"].to_numpy(float)
        ci = stats.mean_interval(e)
        s = pm[pm["model"].eq(m) & pm["optimizer"].eq(o) & pm["point"].eq(pt)]["error"]
        search = float(s.iloc[0]) if len(s) else np.nan
        rows.append(dict(model=m, optimizer=o, point=int(pt), search=search, fresh=ci.value, lo=ci.lo, hi=ci.hi,
                         seeds=int(e.size), regression=ci.value - search))
    return pd.DataFrame(rows)


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
