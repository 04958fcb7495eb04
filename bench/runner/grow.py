"""``bench run --until-decided``: grow a study by doubling its points until its claims are decided.

Point i of a study is the i-th draw of its sampling seed, so the points of a smaller study are a
prefix of a larger one's: each round trains only the new points. After each round the study's
Findings (``analysis.verdict``) are read at alpha / (planned looks), Bonferroni, so the chance of a
false verdict over all the looks stays at alpha per direction (checked by simulation,
``analysis.simulate``); the study stops at the first look where every claim it waits for is
reproduced or not reproduced, else at ``max_points``. The design and each look's verdicts are
written to ``results/<study>/design.json`` (layout.StudyDir.design), which ``bench verdict`` and ``bench report`` read.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

from analysis import claims as claims_mod, verdict
from bench.core import records
from bench.io import atomic_write_json
from bench.runner import launch, orchestrate, preflight
from bench.runner.specs import expand
from bench.core import studies
from bench.core.layout import StudyDir
from bench.core.studies import Overrides, Study, StudyError, resolve


DECIDED = (claims_mod.REPRODUCED, claims_mod.NOT, claims_mod.MIXED)  # undecidable at this size: more points may decide


def run(study: Study, ov: Overrides, lopts: launch.LaunchOptions, ropts: orchestrate.RunOptions,
        claims: list[str], max_points: int, log=print) -> int:
    """Grow the study round by round; returns the last round's exit code (1 if some trials failed)."""
    unknown = sorted(set(claims) - set(claims_mod.CLAIMS))
    if unknown:
        raise StudyError(f"--until-decided: unknown claim {unknown[0]!r}; valid: {', '.join(claims_mod.CLAIMS)}")
    resolved = resolve(study, ov)
    start = resolved.n_points
    if study.kind != "random":
        raise StudyError(f"--until-decided grows a random search; study {study.name!r} has {study.kind} points")
    if max_points < start:
        raise StudyError(f"--max-points {max_points} is below the study's {start} points")
    if not claims_mod.pairs(resolved.models):
        raise StudyError(f"--until-decided has no claim to decide: models {', '.join(resolved.models)} hold no ViTp/ViTc "
                         "pair of the same size (e.g. --models vitp_mini vitc_mini)")
    design = claims_mod.Design.grown(start, max_points)
    seed = resolved.seed
    where = StudyDir(ropts.results, study.name)
    log(_rounds(study, ov, lopts, ropts, design, claims))
    if ropts.dry_run:
        return 0
    record = dict(alpha=design.alpha, looks=list(design.looks), rule=design.describe(), rules=list(design.rules),
                  claims=claims or "all", started=_started(where.design), rounds=[])
    code = 0
    for n in design.looks:
        code = orchestrate.execute(study.name, expand(study, replace(ov, trials=n)), seed, lopts,
                                   replace(ropts, estimate=False), log, study_text=studies.text(study))
        store = orchestrate.open_store(study.name, ropts)
        df = records.from_storage(store.optuna, [study.name])
        f = verdict.findings(df, design=design, power=False)
        waited = [c for c in f["claims"] if not claims or c.claim in claims]
        record["rounds"].append(dict(points=n, time=time.strftime("%Y-%m-%dT%H:%M:%S"), claims=[
            dict(claim=c.claim, pair=c.pair, optimizer=c.optimizer, verdict=c.verdict, p=_num(c.p), p_other=_num(c.p_other))
            for c in f["claims"]]))
        atomic_write_json(where.design, record)
        log(f"look {design.looks.index(n) + 1}/{len(design.looks)} at {n} points per arm "
            f"(α = {design.per_look:.4g} per test): " +
            "; ".join(f"{c.claim} {c.optimizer}: {c.verdict}" for c in waited))
        if waited and all(c.verdict in DECIDED for c in waited):
            log(f"decided at {n} points per arm")
            break
    else:
        log(f"not every claim decided at --max-points {max_points}: the study stops there")
    return code


def _rounds(study: Study, ov: Overrides, lopts, ropts, design: claims_mod.Design, claims) -> str:
    """The rounds and, from the run's own estimate, what each would cost."""
    lines = [f"--until-decided ({', '.join(claims) or 'every claim'}): {design.describe()}"]
    if not ropts.estimate:
        return "\n".join(lines + [f"  round {i + 1}: {n} points per arm" for i, n in enumerate(design.looks)])
    specs = expand(study, replace(ov, trials=design.looks[-1]))
    store = orchestrate.open_store(study.name, ropts)
    done = set()
    if store is not None:
        done = {records.key(t) for name, _ in store.summaries()
                for t in store.trials(name) if t.state.name == "COMPLETE"}
    todo = [s for s in specs if s.key not in done]
    launcher = launch.make(lopts, StudyDir(ropts.results, study.name).submitit,
                           factories=any(":" in s.cfg.model for s in todo))
    cost = preflight.estimate(todo, launcher, ropts.trials_per_job) if todo else None
    prev, total = 0, 0.0
    for i, n in enumerate(design.looks):
        rnd = [s for s in todo if prev <= s.point < n]
        wall = cost.wall(rnd) if cost else 0.0
        total += wall
        lines.append(f"  round {i + 1}: points {prev}..{n - 1} per arm, {len(rnd)} trials to train, ~{preflight.duration(wall)} "
                     f"(cumulative ~{preflight.duration(total)})")
        prev = n
    if cost:
        lines.append(cost.text)
    return "\n".join(lines)


def _started(path: Path) -> str:
    """When the study was first grown: a rerun (a resume) keeps the first run's time."""
    try:
        return str(json.loads(path.read_text())["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return time.strftime("%Y-%m-%dT%H:%M:%S")


def _num(v: float) -> float | None:
    return v if v == v else None  # JSON has no NaN
