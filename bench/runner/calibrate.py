"""``bench calibrate``: measure where a budget's lr windows belong and each model's best lr.

Per family and optimizer, a log-spaced lr grid (factor ``step`` between points) around the
window's current centre, trained at the budget's first epochs, data and recipe on *every* model
of the family in the budget (ViTp and ViTc alike, so neither arm sets the window), with ``seeds``
seeds each, wd at the geometric centre of its window. A model's optimum is the grid lr with its
lowest mean error over seeds (diverged runs count at chance). While any model's optimum (or the
family's mean-error minimum) sits at an edge of the grid, the grid grows one step past that edge
and only the new points run, up to ``max_extend`` steps.

The window is the paper's "good value x [1/8, 4]" around a centre c. It holds a model's optimum o
with a factor 2 to spare when c/4 <= o <= 2c; so c is the family's mean-error minimum, moved into
[max(o)/2, 4 min(o)] when it lies outside, and where that interval is empty (the optima spread
over more than 8x) the record names the models whose optimum the window misses. The same rule
runs on every arm. The per-model optima are the budget's tuned values (``[budgets.B.tuned]``) for
studies of tuned points (the paper's Table 4 left, tuned per model and optimizer).

The trials live in an ordinary study storage (``<results>/calibrate_<study>/``), so a stopped
calibration resumes; the record (json) holds every mean, the optima, the windows and the lines to
paste into the study file.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.core import records
from bench.core.identity import TrialConfig
from bench.core.layout import StudyDir, calibration_name
from bench.runner import orchestrate
from bench.core.studies import Overrides, Resolved, Study, StudyError, resolve
from bench.runner.specs import TrialSpec

SPARE = 2.0  # a window holds an optimum with this factor to spare on either side


@dataclass
class Grid:
    """The lr grid of one family and optimizer: lr_k = centre0 x step^k for k in ``ks``."""

    family: str
    optimizer: str
    models: tuple[str, ...]
    centre0: float  # the window's centre before calibration (its good value: the study's x lr_scale)
    wd: float
    ks: list[int] = field(default_factory=list)

    def lr(self, k: int, step: float) -> float:
        return self.centre0 * step**k


def _own_models(study: Study, budget_name: str, models=None) -> Resolved:
    """The study under the budget, over bench's own models (the families calibrate sets the windows of)."""
    from bench.core import models as registry

    budget = study.budget(budget_name)
    others = [m for m in models or () if registry.family(m) is None]
    if others:
        raise StudyError(f"bench calibrate calibrates the families of bench's models; {others[0]!r} is not one "
                         f"(valid: {', '.join(registry.MODEL_NAMES)})")
    own = tuple(m for m in models or budget.models or study.models if registry.family(m) is not None)
    return resolve(study, Overrides(budget=budget_name, models=own))


def grids(study: Study, budget_name: str, families, points: int, models=None) -> list[Grid]:
    """The starting grids: ``points`` lrs centred on each window's current centre, wd at its geometric centre."""
    resolved = _own_models(study, budget_name, models)
    by_family: dict[str, list[str]] = {}
    for m in resolved.models:
        by_family.setdefault(resolved.family_of[m], []).append(m)
    unknown = sorted(set(families or ()) - set(by_family))
    if unknown:
        raise StudyError(f"no models of family {unknown[0]!r} in budget {budget_name!r}; "
                         f"families there: {', '.join(sorted(by_family))}")
    out = []
    for fam in families or sorted(by_family):
        for opt in resolved.optimizers:
            window = resolved.window(by_family[fam][0], opt)
            lo = -(points // 2)
            out.append(Grid(fam, opt, tuple(by_family[fam]), window.good_lr, window.wd.centre, list(range(lo, lo + points))))
    return out


def specs(study: Study, budget_name: str, grid: Grid, step: float, seeds: int, max_k: int) -> list[TrialSpec]:
    """The trials of a grid: every model x lr x seed at the budget's first epochs."""
    resolved = _own_models(study, budget_name, grid.models)
    space = ((grid.lr(-max_k, step), grid.lr(max_k, step)), tuple(study.window(grid.family, grid.optimizer).wd))
    return [TrialSpec(study_name=calibration_name(study.name), budget=budget_name, family=grid.family, point=k,
                      space=space, cfg=TrialConfig(model=m, optimizer=grid.optimizer, lr=grid.lr(k, step), wd=grid.wd,
                                                   epochs=resolved.epochs[0], batch_size=resolved.budget.batch_for(m),
                                                   data=resolved.data, resolution=resolved.resolution, seed=s,
                                                   recipe=resolved.budget.recipe))
            for m in grid.models for k in grid.ks for s in range(seeds)]


def means(df: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Mean error per lr index k: one column per model (over seeds) and ``family`` (over all)."""
    r = df[df["state"].eq("COMPLETE") & df["optimizer"].eq(grid.optimizer) & df["model"].isin(grid.models)
           & df["point"].isin(grid.ks)]
    per_model = r.pivot_table(index="point", columns="model", values="error", aggfunc="mean")
    per_model["family"] = r.groupby("point")["error"].mean()
    per_model["runs"] = r.groupby("point")["error"].size()
    return per_model.sort_index()


def optima(m: pd.DataFrame, models) -> dict[str, int]:
    """The grid index of each model's (and the family's) lowest mean error."""
    return {col: int(m[col].idxmin()) for col in (*models, "family") if col in m and m[col].notna().any()}


def centre(family_lr: float, model_lrs: list[float]) -> tuple[float, list[int]]:
    """The window centre c and the indices of the optima its window misses. A window c x [1/8, 4]
    holds an optimum o with a factor SPARE to spare when SPARE c / 8 <= o <= 4 c / SPARE, so c is
    ``family_lr`` moved into [SPARE max(o) / 4, 8 min(o) / SPARE]; empty, it stays (and misses some)."""
    lo, hi = SPARE * max(model_lrs) / 4, 8 * min(model_lrs) / SPARE
    c = min(max(family_lr, lo), hi) if lo <= hi else family_lr
    tol = 1 + 1e-9  # lrs on the grid are products of floats
    return c, [i for i, o in enumerate(model_lrs) if not (SPARE * c / 8 <= o * tol and o <= 4 * c / SPARE * tol)]


def run(study: Study, budget_name: str, lopts, ropts, *, families=None, models=None, seeds: int = 2,
        points: int = 5, step: float = 2.0, max_extend: int = 4, out: Path | None = None, log=print) -> dict:
    """Calibrate, extend until every optimum is bracketed, write the record; returns it."""
    if seeds < 2 or points < 3 or not (math.isfinite(step) and step > 1):
        raise StudyError(f"calibration needs >= 2 seeds, >= 3 grid points and a step > 1 "
                         f"(got {seeds}, {points}, {step})")
    name, tic = calibration_name(study.name), time.time()
    out = Path(out or StudyDir(ropts.results, name).calibration(budget_name))
    todo = grids(study, budget_name, families, points, models)
    max_k = points + max_extend
    for _ in range(2 * max_extend + 1):
        all_specs = [s for g in todo for s in specs(study, budget_name, g, step, seeds, max_k)]
        failed = orchestrate.execute(name, all_specs, 0, lopts, ropts, log)
        if ropts.dry_run:
            return {}
        if failed:
            log("some calibration trials failed; each lr's mean counts the runs that finished")
        df = records.from_storage(orchestrate.open_store(name, ropts).optuna, [name])
        df = df[df["budget"].eq(budget_name)]
        grown = False
        for g in todo:
            at = set(optima(means(df, g), g.models).values())
            for edge, new in ((g.ks[0], g.ks[0] - 1), (g.ks[-1], g.ks[-1] + 1)):
                if edge in at and len(g.ks) < points + max_extend:
                    g.ks = sorted(g.ks + [new])
                    grown = True
                    log(f"{g.family}/{g.optimizer}: an optimum at the edge (lr {g.lr(edge, step):.4g}); growing the grid")
        if not grown:
            break
    return _record(study, budget_name, todo, df, step, seeds, time.time() - tic, out, log)


def _record(study: Study, budget_name: str, todo: list[Grid], df: pd.DataFrame, step: float, seeds: int,
            seconds: float, out: Path, log) -> dict:
    resolved = _own_models(study, budget_name)
    rows, scale, tuned = [], {}, {}
    for g in todo:
        m = means(df, g)
        opt = optima(m, g.models)
        model_lr = {mod: g.lr(k, step) for mod, k in opt.items() if mod != "family"}
        c, missed = centre(g.lr(opt["family"], step), list(model_lr.values()))
        good = study.window(g.family, g.optimizer).good_lr  # the paper's: centre = good x lr_scale
        scale.setdefault(g.family, {})[g.optimizer] = round(c / good, 4)
        for mod, lr in model_lr.items():
            tuned.setdefault(g.optimizer, {})[mod] = [lr, g.wd]
        edges = (m.index[0], m.index[-1])
        rows.append(dict(
            family=g.family, optimizer=g.optimizer, models=list(g.models), wd=g.wd,
            grid=[g.lr(k, step) for k in m.index], runs=[int(n) for n in m["runs"]],
            mean_error={col: [round(float(v), 3) for v in m[col]] for col in (*g.models, "family") if col in m},
            model_optimum=model_lr, model_bracketed={mod: opt[mod] not in edges for mod in model_lr},
            family_optimum=g.lr(opt["family"], step), centre=c, window=[c / 8, c * 4],
            bracketed=all(opt[mod] not in edges for mod in opt), misses=[list(model_lr)[i] for i in missed],
            paper_good_value=good, lr_scale=scale[g.family][g.optimizer]))
    record = dict(study=study.name, budget=budget_name, epochs=resolved.epochs[0], data=resolved.data,
                  recipe=resolved.budget.recipe, seeds=seeds, step=step, spare=SPARE, metric="error (EMA model, best epoch)",
                  trials=sum(sum(r["runs"]) for r in rows), seconds=round(seconds, 1), windows=rows,
                  toml=toml_line(scale), tuned=tuned, tuned_toml=tuned_lines(budget_name, tuned))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    log(describe(record))
    log(f"wrote {out}\npaste into [budgets.{budget_name}] of {study.path}:\n{record['toml']}\n"
        f"and, for a study of tuned points:\n{record['tuned_toml']}")
    return record


def toml_line(scale: dict) -> str:
    inner = ", ".join(f"{fam} = {{ {', '.join(f'{o} = {v:g}' for o, v in by.items())} }}"
                      for fam, by in scale.items())
    return f"lr_scale = {{ {inner} }}"


def tuned_lines(budget: str, tuned: dict) -> str:
    """``[budgets.B.tuned.OPT]`` tables of the per-model optima (lr per batch 2048, wd)."""
    return "\n".join(f"[budgets.{budget}.tuned.{opt}]\n" + "\n".join(f"{m} = [{lr:.6g}, {wd:.6g}]"
                                                                     for m, (lr, wd) in by.items())
                     for opt, by in tuned.items())


def describe(record: dict) -> str:
    """The record as a table: per window, mean error per grid lr (per model and for the family)."""
    lines = [f"calibration of {record['study']}/{record['budget']}: {record['epochs']} epochs on {record['data']}, "
             f"{record['seeds']} seeds, {record['trials']} trials, metric {record['metric']}"]
    for w in record["windows"]:
        cols = list(w["mean_error"])
        state = "every optimum bracketed" if w["bracketed"] else "NOT every optimum bracketed"
        lines.append(f"\n{w['family']}/{w['optimizer']} (wd {w['wd']:.3g}): centre {w['centre']:.4g}, window "
                     f"{w['window'][0]:.4g}..{w['window'][1]:.4g} ({state}), lr_scale {w['lr_scale']:g}")
        lines.append("  lr        " + "".join(f"{c:>14}" for c in cols))
        for i, lr in enumerate(w["grid"]):
            lines.append(f"  {lr:<10.4g}" + "".join(f"{w['mean_error'][c][i]:>14.2f}" for c in cols))
        lines.append("  per-model optimum: " + ", ".join(
            f"{m} {lr:.4g}{'' if w['model_bracketed'][m] else ' (at the grid edge)'}"
            for m, lr in w["model_optimum"].items()))
        if w["misses"]:
            lines.append(f"  the window misses the optimum of {', '.join(w['misses'])} (the optima spread over more "
                         f"than {32 / SPARE ** 2:g}x, what a window of 32x holds with {SPARE:g}x to spare)")
    return "\n".join(lines)
