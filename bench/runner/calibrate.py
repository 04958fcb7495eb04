"""``bench calibrate``: measure where a budget's lr windows belong, on every model of each family.

Per family and optimizer, a log-spaced lr grid (factor ``step`` between points) around the
window's current centre, trained at the budget's epochs, data and recipe on *every* model of
the family in the budget (ViTp and ViTc alike, so neither arm sets the window), with ``seeds``
seeds each, wd at the geometric centre of its window. The new centre is the grid lr with the
lowest mean error over the family's models and seeds (diverged runs count at chance). When that
lr sits at an edge of the grid the grid grows one step past that edge and only the new points
run, until the minimum is bracketed or ``max_extend`` steps were added. The trials live in an
ordinary study storage (``results/calibrate_<study>/``), so a stopped calibration resumes; the
record (json) holds every mean, the per-model optima and the chosen centres, and the command
prints the ``lr_scale`` line for the study file.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from analysis import records
from bench.config import TrialConfig
from bench.runner import orchestrate
from bench.runner.specs import TrialSpec
from bench.runner.studies import Study, StudyError

GOOD_IN_RANGE = 8.0  # Table 4 right: each range is the good value x [1/8, 4], so good = low x 8


@dataclass
class Grid:
    """The lr grid of one family and optimizer: lr_k = centre0 x step^k for k in ``ks``."""

    family: str
    optimizer: str
    models: tuple[str, ...]
    centre0: float  # the window centre before calibration (the study's good value x lr_scale)
    wd: float
    ks: list[int] = field(default_factory=list)

    def lr(self, k: int, step: float) -> float:
        return self.centre0 * step**k


def grids(study: Study, budget_name: str, families, points: int, models=None) -> list[Grid]:
    """The starting grids: ``points`` lrs centred on each window's current centre."""
    from bench import architectures as registry

    budget = study.budget(budget_name)
    others = [m for m in models or () if registry.family(m) is None]
    if others:
        raise StudyError(f"bench calibrate calibrates the families of bench's models; {others[0]!r} is not one "
                         f"(valid: {', '.join(registry.MODEL_NAMES)})")
    by_family: dict[str, list[str]] = {}
    for m in models or budget.models or study.models:
        if registry.family(m) is not None:  # models bench does not register take their family's window
            by_family.setdefault(registry.family(m), []).append(m)
    unknown = sorted(set(families or ()) - set(by_family))
    if unknown:
        raise StudyError(f"no models of family {unknown[0]!r} in budget {budget_name!r}; "
                         f"families there: {', '.join(sorted(by_family))}")
    out = []
    for fam in families or sorted(by_family):
        for opt in study.optimizers:
            space = study.space(fam, opt)
            good = space["lr"][0] * GOOD_IN_RANGE * budget.lr_factor(fam, opt)
            wd = math.sqrt(space["wd"][0] * space["wd"][1])
            lo = -(points // 2)
            out.append(Grid(fam, opt, tuple(by_family[fam]), good, wd, list(range(lo, lo + points))))
    return out


def specs(study: Study, budget_name: str, grid: Grid, step: float, seeds: int, max_k: int) -> list[TrialSpec]:
    """The trials of a grid: every model x lr x seed at the budget's first epochs."""
    budget = study.budget(budget_name)
    epochs = budget.epochs(study.epochs[0])
    space = ((grid.lr(-max_k, step), grid.lr(max_k, step)), study.space(grid.family, grid.optimizer)["wd"])
    return [TrialSpec(study=f"calibrate_{study.name}", budget=budget.name, family=grid.family, point=k, space=space,
                      cfg=TrialConfig(model=m, optimizer=grid.optimizer, lr=grid.lr(k, step), wd=grid.wd,
                                      epochs=epochs, batch_size=budget.batch_for(m), data=budget.data,
                                      resolution=budget.resolution, seed=s, recipe=budget.recipe))
            for m in grid.models for k in grid.ks for s in range(seeds)]


def means(df: pd.DataFrame, grid: Grid) -> pd.DataFrame:
    """Mean error per lr index k: one column per model (over seeds) and ``family`` (over both)."""
    r = df[df["state"].eq("COMPLETE") & df["optimizer"].eq(grid.optimizer) & df["model"].isin(grid.models)
           & df["point"].isin(grid.ks)]
    per_model = r.pivot_table(index="point", columns="model", values="error", aggfunc="mean")
    per_model["family"] = r.groupby("point")["error"].mean()
    per_model["runs"] = r.groupby("point")["error"].size()
    return per_model.sort_index()


def run(study: Study, budget_name: str, lopts, ropts, *, families=None, models=None, seeds: int = 2,
        points: int = 5, step: float = 2.0, max_extend: int = 4, out: Path | None = None, log=print) -> dict:
    """Calibrate, extend until bracketed, write the record; returns it."""
    if seeds < 2 or points < 3 or step <= 1:
        raise StudyError(f"calibration needs >= 2 seeds, >= 3 grid points and a step > 1 "
                         f"(got {seeds}, {points}, {step})")
    name, tic = f"calibrate_{study.name}", time.time()
    todo = grids(study, budget_name, families, points, models)
    max_k = points + max_extend
    for _ in range(max_extend + 1):
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
            fam = means(df, g)["family"]
            best = int(fam.idxmin())
            if best in (g.ks[0], g.ks[-1]) and len(g.ks) < points + max_extend:
                g.ks = sorted(g.ks + [best - 1 if best == g.ks[0] else best + 1])
                grown = True
                log(f"{g.family}/{g.optimizer}: minimum at the edge (lr {g.lr(best, step):.4g}); growing the grid")
        if not grown:
            break
    return _record(study, budget_name, todo, df, step, seeds, time.time() - tic, out, log)


def _record(study: Study, budget_name: str, todo: list[Grid], df: pd.DataFrame, step: float, seeds: int,
            seconds: float, out: Path | None, log) -> dict:
    budget = study.budget(budget_name)
    rows, scale = [], {}
    for g in todo:
        m = means(df, g)
        best = int(m["family"].idxmin())
        centre = g.lr(best, step)
        good = study.space(g.family, g.optimizer)["lr"][0] * GOOD_IN_RANGE
        scale.setdefault(g.family, {})[g.optimizer] = round(centre / good, 4)
        rows.append(dict(
            family=g.family, optimizer=g.optimizer, models=list(g.models), wd=g.wd,
            grid=[g.lr(k, step) for k in m.index], runs=[int(n) for n in m["runs"]],
            mean_error={col: [round(float(v), 3) for v in m[col]] for col in (*g.models, "family")},
            model_optimum={mod: g.lr(int(m[mod].idxmin()), step) for mod in g.models if mod in m},
            centre=centre, bracketed=best not in (m.index[0], m.index[-1]), paper_good_value=good,
            lr_scale=scale[g.family][g.optimizer]))
    record = dict(study=study.name, budget=budget_name, epochs=budget.epochs(study.epochs[0]), data=budget.data,
                  recipe=budget.recipe, seeds=seeds, step=step, metric="error (EMA model, best epoch)",
                  trials=sum(sum(r["runs"]) for r in rows), seconds=round(seconds, 1), windows=rows,
                  toml=toml_line(scale))
    out = Path(out or Path("results") / "reference" / "calibration" / f"{study.name}_{budget_name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    log(describe(record))
    log(f"wrote {out}\npaste into [budgets.{budget_name}] of {study.path}:\n{record['toml']}")
    return record


def toml_line(scale: dict) -> str:
    inner = ", ".join(f"{fam} = {{ {', '.join(f'{o} = {v:g}' for o, v in by.items())} }}"
                      for fam, by in scale.items())
    return f"lr_scale = {{ {inner} }}"


def describe(record: dict) -> str:
    """The record as a table: per window, mean error per grid lr (per model and for the family)."""
    lines = [f"calibration of {record['study']}/{record['budget']}: {record['epochs']} epochs on {record['data']}, "
             f"{record['seeds']} seeds, {record['trials']} trials, metric {record['metric']}"]
    for w in record["windows"]:
        cols = list(w["mean_error"])
        lines.append(f"\n{w['family']}/{w['optimizer']} (wd {w['wd']:.3g}): centre {w['centre']:.4g} "
                     f"({'bracketed' if w['bracketed'] else 'NOT bracketed'}), lr_scale {w['lr_scale']:g}")
        lines.append("  lr        " + "".join(f"{c:>14}" for c in cols))
        for i, lr in enumerate(w["grid"]):
            lines.append(f"  {lr:<10.4g}" + "".join(f"{w['mean_error'][c][i]:>14.2f}" for c in cols))
        lines.append("  per-model optimum: " + ", ".join(f"{m} {lr:.4g}" for m, lr in w["model_optimum"].items()))
    return "\n".join(lines)
