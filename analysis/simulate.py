"""Check by simulation that each interval, test and claim means what it says.

Studies are drawn from known distributions shaped like the reference study's (skewed errors,
steps of one validation image, diverged runs all at chance), so the true values are known:

* coverage: how often a 95% interval holds the true value (the expected best of k runs, the
  expected fraction of runs within k points of the best);
* false positives: how often a one-sided test at α fires in either direction when the two arms
  come from the same distribution (Δ-KS also when one is shifted: its Δs are then equal in law),
  at one look and over a study grown by doubling with α split over the looks;
* the robustness test's nulls side by side (``ks_table``);
* whole studies (a random search, the optimizer study, the stem study), every claim judged by the
  definitions before issue 28 (``OLD_REV``, read from git) and today's, under each study's global
  null and at the committed references' effects, with family-wise rates (``claim_rates``);
* the committed references' verdicts before and after (``references_table``).

``python -m analysis.simulate --write docs/statistics.md`` fills the page's tables; the slow test
``tests/analysis/test_simulation.py`` asserts their bounds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats as _st

from bench.core.records import tidy

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


# ---- whole studies: every claim, old and new definitions, under the null and at the committed effects

OLD_REV = "41bc0674b1e199eda5ba50ed307107d6e110da39"  # the claims before issue 28 (git revision)
REFERENCE = Path(__file__).resolve().parents[1] / "results" / "reference"
SEED_SD = 1.0  # points: a search run's seed noise around its point's error (the confirm reruns redraw it)
RHO = 0.45  # the pairing of two models' errors at the same draws in the committed lr_wd study (0.4-0.5)


def old_analysis(rev: str = OLD_REV):
    """The ``analysis`` package as of git revision ``rev`` (its ``verdict`` module), extracted beside
    this one under another name, to judge the same simulated studies by the old definitions."""
    import importlib
    import io
    import subprocess
    import sys
    import tarfile
    import tempfile

    name = f"analysis_{rev[:7]}"
    if name not in sys.modules:
        root = Path(__file__).resolve().parents[1]
        tar = subprocess.run(["git", "-C", str(root), "archive", rev, "analysis"], capture_output=True, check=True).stdout
        tmp = Path(tempfile.mkdtemp())
        tarfile.open(fileobj=io.BytesIO(tar)).extractall(tmp, filter="data")
        (tmp / "analysis").rename(tmp / name)
        sys.path.insert(0, str(tmp))
    return importlib.import_module(f"{name}.verdict")


def _rows(records_: list[dict]) -> pd.DataFrame:
    return tidy(pd.DataFrame(records_).assign(study="sim", budget="local", state="COMPLETE", num_classes=10,
                                              chance=CHANCE, seconds=60.0, sampling_seed=0))


def search_study(rng, n: int = 48, dist: Dist | None = None, rho: float = RHO, confirm: int = 2, seeds: int = 2,
                 models=("vitp_mini", "vitc_mini")) -> pd.DataFrame:
    """A paired random search under the global null: every model and optimizer draws its points'
    errors from ``dist`` (the two models at the same draw correlated at ``rho``), a run is its point's
    error plus seed noise (SEED_SD), and the confirm step reruns each arm's ``confirm`` best points
    with ``seeds`` fresh seeds."""
    dist = dist or DISTS[1]
    out = []
    for opt in ("adamw", "sgd"):
        mu_p, z = dist.draw(rng, n)
        mu = {models[0]: mu_p, models[1]: dist.draw(rng, n, rho=rho, like=z)[0]}
        for m in models:
            run = _run(rng, mu[m])
            out += [dict(model=m, family="vit", optimizer=opt, epochs=5, seed=0, point=i, error=e) for i, e in enumerate(run)]
            for i in np.argsort(run, kind="stable")[:confirm]:
                out += [dict(model=m, family="vit", optimizer=opt, epochs=5, seed=claims.CONFIRM_SEED0 + s, point=int(i),
                             error=e) for s, e in enumerate(_run(rng, np.full(seeds, mu[m][i])))]
    return _rows(out)


def _run(rng, mu: np.ndarray) -> np.ndarray:
    """Runs at points of error ``mu``: plus seed noise, in steps of one image; at chance they stay."""
    return np.where(mu >= CHANCE, CHANCE, np.clip(_steps(mu + rng.normal(0, SEED_SD, mu.shape)), 0, CHANCE))


def resampled_search(rng, trials: pd.DataFrame) -> pd.DataFrame:
    """The committed search resampled: its points drawn with replacement (the same draws for every
    arm, keeping the pairing), each arm's confirm reruns drawn with replacement from its own (at
    points of their own, past the search's)."""
    search = trials[trials["seed"] < claims.CONFIRM_SEED0]
    confirm = trials[trials["seed"] >= claims.CONFIRM_SEED0]
    points = np.sort(search["point"].unique())
    pick = rng.choice(points, points.size)
    rows = []
    for (m, o), g in search.groupby(["model", "optimizer"]):
        g = g.set_index("point")["error"]
        rows += [dict(model=m, family="vit", optimizer=o, epochs=5, seed=0, point=i, error=g[p]) for i, p in enumerate(pick)]
    for (m, o), g in confirm.groupby(["model", "optimizer"]):
        rows += [dict(model=m, family="vit", optimizer=o, epochs=5, seed=claims.CONFIRM_SEED0 + j // 2,
                      point=points.size + j % 2, error=x) for j, x in enumerate(rng.choice(g["error"].to_numpy(float), len(g)))]
    return _rows(rows)

LADDER = tuple(f"{f}_{s}" for s in ("1mf", "4mf", "18mf") for f in ("vitp", "vitc", "regnety"))
STEMS = ("vitc_4mf", "vitc_4mf_s1", "vitc_4mf_s2", "vitc_4mf_s3", "vitc_4mf_s4", "vitp_4mf")
FLOPS = {"1mf": 0.001, "4mf": 0.004, "18mf": 0.018}


def tuned_study(rng, means: dict, sd, seeds: int, offset_sd: float = 0.0, by_model: bool = True) -> pd.DataFrame:
    """Tuned points: each (model, optimizer, epochs) cell of ``means`` trained with ``seeds`` seeds,
    a run its cell's mean plus a seed offset (sd ``offset_sd``, per model and seed, shared by the
    model's budgets and optimizers; ``by_model`` False: per seed, shared by every model) plus run
    noise (``sd``: a number, or per cell), in steps of one image."""
    offsets = {}
    rows = []
    for (m, o, ep), mu in means.items():
        for s in range(seeds):
            off = offsets.setdefault((m if by_model else "", s), rng.normal(0, offset_sd))
            e = mu + off + rng.normal(0, sd[(m, o, ep)] if isinstance(sd, dict) else sd)
            rows.append(dict(model=m, family="regnety" if m.startswith("regnety") else "vit", optimizer=o, epochs=ep,
                             seed=s, point=0, error=float(np.clip(_steps(e), 0, CHANCE)), gflops=FLOPS[m.split("_")[1]]))
    return _rows(rows)


def optimizer_null(definition: str) -> dict:
    """The optimizer study's global null: every cell at 30% (flat in the budget: the same curve for
    every model, so ViTc at half the budget is ViTp's equal, and no budget improves), no SGD − AdamW
    gap for ViTp and ViTc, and RegNetY's gap at its margin: 1 point (old), 1.96 √2 σ with σ = √5 the
    seed SD of a cell here (new)."""
    margin = 1.0 if definition == "old" else 1.96 * math.sqrt(2) * math.sqrt(5)
    return {(m, o, ep): 30.0 + (margin if m.startswith("regnety") and o == "sgd" else 0.0)
            for m in LADDER for o in ("adamw", "sgd") for ep in (2, 4, 8)}


def committed_cells(name: str):
    """(cell means, pooled seed SD per cell, seeds) of a committed tuned reference: each cell's SD is
    pooled over its family's cells at the same budget (2 seeds a cell are too few alone)."""
    from .load import load_trials

    df = load_trials(REFERENCE / name / "trials.csv")
    c = df.groupby(["model", "optimizer", "epochs"])["error"]
    fam = df["model"].str.split("_").str[0]
    var = df.assign(fam=fam).groupby(["fam", "epochs", "model", "optimizer"])["error"].var(ddof=1)
    pooled = np.sqrt(var.groupby(level=["fam", "epochs"]).mean())
    means = {k: float(v) for k, v in c.mean().items()}
    sd = {(m, o, ep): float(pooled[(m.split("_")[0], ep)]) for m, o, ep in means}
    return means, sd, int(df["seed"].nunique())


def stem_null() -> dict:
    """The stem study's global null: every stem at 40% with either optimizer."""
    return {(m, o, 3): 40.0 for m in STEMS for o in ("adamw", "sgd")}


def _labels(claims_) -> dict:
    """(claim [optimizer]) -> verdict; the old claims under their new names."""
    rename = {"converge": "converge vitc", "stem order": "stem trend", "stem sgd": "stem sgd trend"}
    return {f"{rename.get(c.claim, c.claim)}{' ' + c.pair if c.claim == 'trend' else ''} [{c.optimizer}]": c.verdict
            for c in claims_}


def judge_old(df: pd.DataFrame, looks=()) -> dict:
    old = old_analysis()
    return _labels(old.findings(df, design=old.Design(ALPHA, tuple(looks)), power=False)["claims"])


def judge_new(df: pd.DataFrame, looks=()) -> dict:
    from . import verdict

    design = claims.Design(ALPHA, tuple(looks), recorded=looks[-1] if looks else None)
    return _labels(verdict.judged(df, design, power=False)[1])


DECIDED = (claims.REPRODUCED, claims.NOT, claims.MIXED)


def study_rates(make, judge, reps: int, seed: int = 0) -> dict:
    """Share of ``reps`` simulated studies (``make(rng)``) in which ``judge(df)`` gives each verdict,
    per claim, and the family: ``any decided`` (some claim decided either way) and ``any reproduced``."""
    counts: dict = {}
    rng = np.random.default_rng(seed)
    for _ in range(reps):
        v = judge(make(rng))
        for label, verdict_ in v.items():
            counts.setdefault(label, {}).setdefault(verdict_, 0)
            counts[label][verdict_] += 1
        family = {"any decided": any(x in DECIDED for x in v.values()),
                  "any reproduced": any(x == claims.REPRODUCED for x in v.values())}
        for label, hit in family.items():
            counts.setdefault(label, {}).setdefault(True, 0)
            counts[label][True] += hit
    return {label: {k: n / reps for k, n in c.items()} for label, c in counts.items()}


def _se(p: float, reps: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / reps)


def _cell(rates: dict | None, key, reps: int) -> str:
    if rates is None:
        return "—"
    p = rates.get(key, 0.0)
    return f"{p:.3f} ± {_se(p, reps):.3f}"


WORLDS = {
    "search": ("lr_wd: 2 models × 2 optimizers × 48 paired points, reference-like errors (the models at the same "
               f"draw correlated at ρ = {RHO}), runs with seed noise (sd {SEED_SD:g}), the confirm step's 2 best points "
               "× 2 fresh seeds per arm; planned looks at 24 and 48 points (α/2 a look)", (24, 48)),
    "optimizer": ("optimizer: 9 models × 2 optimizers × 2, 4, 8 epochs × 2 seeds, a per-(model, seed) offset (sd 2) "
                  "shared by a model's budgets and optimizers, plus run noise (sd 1)", ()),
    "stem": ("stem: 6 stems × 2 optimizers × 4 seeds, a per-seed offset (sd 3) shared by the stems and optimizers, "
             "plus run noise (sd 1)", ()),
}
COMMITTED = {"search": "lr_wd_local", "optimizer": "optimizer_local", "stem": "stem_local"}


def null_study(world: str, definition: str, rng) -> pd.DataFrame:
    """A simulated study of ``world`` under the global null of its claims (``definition``: the
    RegNetY margin differs, old or new)."""
    if world == "search":
        return search_study(rng)
    if world == "optimizer":
        return tuned_study(rng, optimizer_null(definition), 1.0, 2, 2.0)
    return tuned_study(rng, stem_null(), 1.0, 4, 3.0, by_model=False)


def committed_study(world: str, rng, cache: dict) -> pd.DataFrame:
    """A study like the committed reference of ``world``, at its observed effects: the search
    resampled, the tuned cells redrawn around their committed means with their pooled seed SDs."""
    from .load import load_trials

    if world not in cache:
        cache[world] = (load_trials(REFERENCE / COMMITTED[world] / "trials.csv") if world == "search"
                        else committed_cells(COMMITTED[world]))
    if world == "search":
        return resampled_search(rng, cache[world])
    means, sd, seeds = cache[world]
    return tuned_study(rng, means, sd, seeds)


TESTS = {  # (world, claim): (the old definition, the new); world "" for every world
    ("", "robust"): ("one-sided KS on Δ, independent bootstrap null", "one-sided KS on Δ, paired null (swap within "
                     "draws, each arm centred at its E₄); 'mixed' when both directions fire"),
    ("", "better"): ("signed-rank, 4,000 sign flips", "signed-rank, exact"),
    ("", "best"): ("E₄ difference, jackknife t", "unchanged"),
    ("search", "sgd"): ("E₄(SGD) − E₄(AdamW), search points with the confirm reruns averaged in",
                        "Welch t over the confirmed points, their fresh seeds averaged (E_k over k = 1…8 described)"),
    ("search", "gap"): ("difference of the two E₄ gaps, as above", "Welch t contrast over the confirmed points"),
    ("", "sgd"): ("signed-rank over every budget, near-chance cells dropped, 4,000 sign flips",
                  "the same, exact; 'undecidable' where its floor is above α"),
    ("", "gap"): ("signed-rank of the ViTp − ViTc gaps, as above", "the same, exact; 'undecidable' where its floor is above α"),
    ("", "converge vitc"): ("signed-rank of ViTp − ViTc of (error − longest-budget error) at the shorter budgets",
                            "time to target: ViTp(T) − ViTc(T/2), exact signed-rank; no verdict unless plateaued"),
    ("", "converge regnety"): ("—", "time to target: ViTp(T) − RegNetY(T/2), exact signed-rank; no verdict unless "
                               "plateaued"),
    ("", "regnety"): ("TOST against ±1 point, every budget", "TOST against ±1.96 √2 σ_seed at the longest budget, "
                      "σ_seed's uncertainty included (Berger–Boos)"),
    ("", "stem trend"): ("Spearman ρ over C, S1…S4, P, permuted within seeds", "Spearman ρ over C, S1…S4"),
    ("", "stem P vs C"): ("—", "P − C per seed, exact signed-rank"),
    ("", "stem sgd trend"): ("Spearman ρ of SGD − AdamW over C…P", "the same over C, S1…S4"),
    ("", "stem sgd P vs C"): ("—", "SGD − AdamW of P − that of C per seed, exact signed-rank"),
    ("", "trend"): ("Kendall τ, described", "unchanged"),
}
FAMILY = ("any decided", "any reproduced")


def _task(args) -> tuple[tuple, dict, int]:
    world, kind, definition, reps, seed = args
    cache: dict = {}
    looks = WORLDS[world][1]
    judge = judge_old if definition == "old" else judge_new

    def make(rng):
        return null_study(world, definition, rng) if kind == "null" else committed_study(world, rng, cache)
    return (world, kind, definition), study_rates(make, lambda df: judge(df, looks), reps, seed), reps


def claim_rates(reps: dict, jobs: int = 1, seed: int = 0, chunk: int = 25, worlds=tuple(WORLDS)) -> dict:
    """(world, null or committed, old or new) -> rates (``study_rates``), ``reps[kind]`` studies each,
    run in chunks over ``jobs`` processes."""
    tasks = [(w, k, d, min(chunk, reps[k] - i), seed + 7919 * i) for w in worlds for k in reps for d in ("old", "new")
             for i in range(0, reps[k], chunk)]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs) as pool:
            done = list(pool.map(_task, tasks))
    else:
        done = [_task(t) for t in tasks]
    out: dict = {}
    for key, rates, n in done:
        acc = out.setdefault(key, {"reps": 0, "rates": {}})
        acc["reps"] += n
        for label, r in rates.items():
            for v, x in r.items():
                acc["rates"].setdefault(label, {}).setdefault(v, 0.0)
                acc["rates"][label][v] += x * n
    for acc in out.values():
        acc["rates"] = {label: {v: x / acc["reps"] for v, x in r.items()} for label, r in acc["rates"].items()}
    return out


def claims_markdown(world: str, res: dict) -> str:
    """One world's table: per claim, old and new, the shares of studies reproducing / not reproducing
    it under the global null (false verdicts) and at the committed effects, with Monte Carlo SEs."""
    def get(kind, d):
        return res.get((world, kind, d), {"reps": 0, "rates": {}})

    order = [c for _, c in TESTS]
    labels = sorted({lab for kind in ("null", "committed") for d in ("old", "new") for lab in get(kind, d)["rates"]}
                    - set(FAMILY), key=lambda x: (order.index(x.split(" [")[0]) if x.split(" [")[0] in order else 99, x))
    out = [f"{WORLDS[world][0]}. Shares of simulated studies ± Monte Carlo SE: under the global null "
           f"({get('null', 'new')['reps']} studies; every decided verdict is false) and at the committed reference's "
           f"effects ({get('committed', 'new')['reps']} studies: `{COMMITTED[world]}` resampled or redrawn).", "",
           "| claim | definition | test | null: reproduced | null: not reproduced | committed: reproduced | "
           "committed: not reproduced | committed: other verdicts |", "|---|---|---|---|---|---|---|---|"]
    described = {lab for lab in labels if all(set(get(k, d)["rates"].get(lab, {})) <= {claims.DESCRIBED}
                                              for k in ("null", "committed") for d in ("old", "new"))}
    for label in [lab for lab in labels if lab not in described] + list(FAMILY):
        for d in ("old", "new"):
            null, com = get("null", d), get("committed", d)
            rn, rc = null["rates"].get(label), com["rates"].get(label)
            if rn is None and rc is None:
                continue
            claim = label.split(" [")[0]
            test = TESTS.get((world, claim), TESTS.get(("", claim), ("", "")))[d == "new"] if label not in FAMILY else (
                "each claim at α" if d == "old" else "Holm over the study's claims")
            if label in FAMILY:
                cells = [_cell(rn, True, null["reps"]), "", _cell(rc, True, com["reps"]), "", ""]
            else:
                other = "; ".join(f"{v} {x:.2f}" for v, x in sorted((rc or {}).items(), key=lambda kv: -kv[1])
                                  if v not in DECIDED and x >= 0.005)
                cells = [_cell(rn, claims.REPRODUCED, null["reps"]), _cell(rn, claims.NOT, null["reps"]),
                         _cell(rc, claims.REPRODUCED, com["reps"]), _cell(rc, claims.NOT, com["reps"]), other]
            out.append(f"| {label} | {d} | {test} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def ks_rates(make, null: str, reps: int, alpha: float = ALPHA, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Shares of ``reps`` pairs (ViTc, ViTp) = ``make(rng)`` in which the Δ-KS test with ``null`` fires in
    the paper's direction, in the other, and in both."""
    rng = np.random.default_rng(seed)
    fire = np.zeros(3)
    for r in range(reps):
        c, p = make(rng)
        t = stats.ks_delta(c, p, CHANCE, n_boot=n_boot, seed=seed + r, null=null)
        fire += [t.p_a < alpha, t.p_b < alpha, t.p_a < alpha and t.p_b < alpha]
    return fire / reps


def _tighter(dist: Dist, n: int, rho: float, scale: float):
    """ViTc's runs at the same draws as ViTp's, their Δs ``scale`` times ViTp's (1: the null)."""
    def make(rng):
        p, z = dist.draw(rng, n)
        c = dist.draw(rng, n, rho=rho, like=z)[0]
        ok = c < CHANCE
        low = c[ok].min() if ok.any() else 0.0
        return np.where(ok, _steps(low + scale * (c - low)), c), p
    return make


def _committed_arms(opt: str, n: int, trials: pd.DataFrame):
    """ViTc's and ViTp's search points of the committed lr_wd study under ``opt``, resampled in pairs to n."""
    s = trials[(trials["seed"] < claims.CONFIRM_SEED0) & trials["optimizer"].eq(opt)]
    c, p = claims.aligned(*(s[s["model"].eq(m)].set_index("point")["error"] for m in ("vitc_mini", "vitp_mini")))

    def make(rng):
        i = rng.integers(0, c.size, n)
        return c[i], p[i]
    return make


def ks_table(reps: int = 400, seed: int = 0) -> str:
    """The robustness test's nulls side by side (docs/statistics.md): false positives and power at
    48 points per arm at the observed pairing (ρ = 0.45) and a strong one (0.9), and power on the
    committed AdamW arms resampled to 48-256 points (α = 0.025, the study's level a look)."""
    from .load import load_trials

    def se(x, n):
        return f"{x:.3f} ± {_se(x, n):.3f}"

    out = ["| world | points per arm | ρ | null | paper's direction | other direction | both |", "|---|---|---|---|---|---|---|"]
    for dist in DISTS:
        for rho in (RHO, 0.9):
            for scale, what in ((1.0, "null: the same distribution"), (0.6, "ViTc's Δs 0.6 × ViTp's")):
                for null in stats.KS_NULLS:
                    r = ks_rates(_tighter(dist, 48, rho, scale), null, reps, seed=seed)
                    out.append(f"| {dist.name}, {what} | 48 | {rho:g} | {null} | {se(r[0], reps)} | {se(r[1], reps)} | "
                               f"{se(r[2], reps)} |")
    trials = load_trials(REFERENCE / "lr_wd_local" / "trials.csv")
    few = max(50, reps // 4)
    for n in (48, 128, 256, 512):
        for null in ("independent", "paired"):
            r = ks_rates(_committed_arms("adamw", n, trials), null, few, alpha=ALPHA / 2, seed=seed)
            out.append(f"| committed lr_wd AdamW arms resampled in pairs (α = 0.025) | {n} | observed | {null} | "
                       f"{se(r[0], few)} | {se(r[1], few)} | {se(r[2], few)} |")
    return "\n".join(out) + "\n"


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


def references_table() -> str:
    """Every verdict of the three committed references, before (OLD_REV's definitions) and after."""
    from . import verdict
    from .load import load_trials

    old = old_analysis()
    out = ["| reference | claim | pair | before: verdict (p, the paper's direction / the other) | after: verdict (p raw; "
           "Holm) | after, without the rules |", "|---|---|---|---|---|---|"]
    for name in COMMITTED.values():
        table = REFERENCE / name / "trials.csv"
        df = load_trials(table)
        before = old.findings(df, design=old.table_design(table), power=False)["claims"]
        after = verdict.findings(df, design=verdict.table_design(table), power=False)["claims"]
        b = {k: c for c, k in zip(before, _labels(before))}
        a = {k: c for c, k in zip(after, _labels(after))}
        for label in list(b) + [k for k in a if k not in b]:
            cb, ca = b.get(label), a.get(label)
            old_cell = "—" if cb is None else (f"{cb.verdict}" + ("" if cb.verdict == claims.DESCRIBED else
                                                                  f" ({cb.p:.3g} / {cb.p_other:.3g})"))
            if ca is None:
                new_cell, bare = "—", ""
            else:
                raw = "" if ca.verdict == claims.DESCRIBED else (
                    f" ({claims.fmt_p(ca.p, ca.p_min, ca.exact)} / {claims.fmt_p(ca.p_other, ca.p_min, ca.exact)}"
                    + (f"; {claims.fmt_p(ca.p_adjusted)}" if np.isfinite(ca.p_adjusted) else "") + ")")
                new_cell, bare = f"**{ca.verdict}**{raw}", ca.without.verdict if ca.without is not None else ""
            out.append(f"| {name} | {label} | {(ca or cb).pair} | {old_cell} | {new_cell} | {bare} |")
    return "\n".join(out) + "\n"


BLOCK = re.compile(r"(<!-- simulation (\w+) -->\n)(.*?)(<!-- /simulation -->)", re.S)
SECTIONS = ("intervals", "ks", "search", "optimizer", "stem", "references")


def main(argv=None) -> int:
    """``python -m analysis.simulate [--reps N] [--jobs J] [--only NAME,...] [--write docs/statistics.md]``:
    print the tables (intervals and tests, the KS nulls, the claims of each kind of study, old and
    new, and the committed references' verdicts before and after), or fill the page's
    ``<!-- simulation NAME -->`` blocks with them."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--reps", type=int, default=400, help="simulated studies per row (half for the committed effects)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"sections, of {', '.join(SECTIONS)}")
    ap.add_argument("--write", type=Path)
    args = ap.parse_args(argv)
    only = args.only.split(",")
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        ap.error(f"unknown section {unknown[0]!r}; valid: {', '.join(SECTIONS)}")
    md = {}
    if "intervals" in only:
        md["intervals"] = markdown(table(args.reps))
    if "ks" in only:
        md["ks"] = ks_table(args.reps)
    worlds = [w for w in WORLDS if w in only]
    if worlds:
        res = claim_rates({"null": args.reps, "committed": args.reps // 2}, args.jobs, worlds=worlds)
        md.update({w: claims_markdown(w, res) for w in worlds})
    if "references" in only:
        md["references"] = references_table()
    if args.write:
        text = args.write.read_text()
        args.write.write_text(BLOCK.sub(lambda m: m.group(1) + md[m.group(2)] + m.group(4) if m.group(2) in md
                                        else m.group(0), text))
    for name, table_ in md.items():
        print(f"## {name}\n\n{table_}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
