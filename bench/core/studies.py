"""The study schema: a study file (TOML) parsed into a typed :class:`Study`, and :func:`resolve`,
which applies the command line's overrides to it and says what to run (:class:`Plan`).

**Where study files come from.** ``load(name)`` reads ``studies/<name>.toml`` in the working
directory if there is one, else bench's own (a checkout's top-level ``studies/``, shipped in the
wheel as ``bench/studies/``); ``load(path)`` reads any ``.toml``.

**Precedence,** applied in ``resolve`` and nowhere else: a command-line override, else the
budget's value, else the study file's, else the paper's (``bench.core.paper``: Table 4's ranges
and tuned values, the ``paper`` budget).

**The learning rate** flows one way: the paper's window (Table 4 right, per batch 2048, the
family's good value x [1/8, 4]) x the budget's ``lr_scale`` for (family, optimizer) = the window a
study draws its points from (still per batch 2048; ``bench calibrate`` measures the scale); a
tuned point is the paper's tuned value times the same scale, or the budget's own calibrated value
as it is; the engine then scales the trial's lr linearly to its batch (``bench.recipe.scaled_lr``).
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from bench.core import dataspec, paper
from bench.core.errors import UserError

OPTIMIZERS = ("adamw", "sgd")
RECIPES = ("paper", "light")  # bench.recipe.RECIPES, named here so a study file is checked without torch
POINTS = ("random", "tuned")
_STUDY_KEYS = {"description", "points", "seed", "trials", "epochs", "models", "optimizers", "ranges", "families",
               "tuned", "budgets"}
_BUDGET_KEYS = {"data", "recipe", "epoch_scale", "lr_scale", "trials", "models", "batch_size", "resolution", "epochs",
                "seeds", "tuned"}
# The paper's protocol as a budget: ImageNet-1k, its recipe, its batches, its lrs (lr_scale 1).
PAPER_BUDGET = {"data": "imagefolder:data/imagenet", "recipe": "paper", "epoch_scale": 1.0,
                "batch_size": {"default": paper.BATCH, **paper.BATCH_OF}}


class StudyError(UserError):
    """A study file or a name given on the command line is invalid."""


class Range(NamedTuple):
    """A log-uniform range, low < high, both > 0."""

    low: float
    high: float

    def scaled(self, factor: float) -> Range:
        return Range(self.low * factor, self.high * factor)

    def contains(self, v: float) -> bool:
        return self.low * (1 - 1e-9) <= v <= self.high * (1 + 1e-9)

    def including(self, v: float) -> Range:
        """The range widened, if need be, to hold ``v``."""
        return self if self.contains(v) else Range(min(self.low, v), max(self.high, v))

    @property
    def centre(self) -> float:
        """The geometric centre."""
        return math.sqrt(self.low * self.high)


class Window(NamedTuple):
    """The (lr, wd) ranges a family samples under one optimizer; lr per batch 2048."""

    lr: Range
    wd: Range

    def scaled(self, lr_factor: float) -> Window:
        return Window(self.lr.scaled(lr_factor), self.wd)

    def including(self, lr: float, wd: float) -> Window:
        return Window(self.lr.including(lr), self.wd.including(wd))

    @property
    def good_lr(self) -> float:
        """The good value the window is built around (paper.WINDOW: good x [1/8, 4])."""
        return self.lr.low / paper.WINDOW[0]


@dataclass(frozen=True)
class Budget:
    """How much of a study to run and on what data; epochs = max(1, round(paper x epoch_scale)).

    ``lr_scale`` multiplies the study's lrs for (family, optimizer) (1 where it has no entry);
    ``tuned`` holds the budget's own tuned (lr, wd) per (optimizer, model), used as they are.
    """

    name: str
    data: str  # canonical data spec
    recipe: str = "light"
    epoch_scale: float = 1.0
    lr_scale: dict = field(default_factory=dict)  # {(family, optimizer) or (None, optimizer) or (None, None): x}
    trials: int | None = None
    models: tuple[str, ...] | None = None
    batch_size: dict = field(default_factory=lambda: {None: 128})  # {model or None (default): batch}
    resolution: int | None = None
    paper_epochs: tuple[int, ...] | None = None  # the study's paper epochs this budget runs (None: all)
    seeds: int | None = None
    tuned: dict = field(default_factory=dict)  # {(optimizer, model): (lr, wd)}

    def epochs(self, paper_epochs: int) -> int:
        return max(1, round(paper_epochs * self.epoch_scale))

    def lr_factor(self, family: str, optimizer: str) -> float:
        s = self.lr_scale
        return s.get((family, optimizer), s.get((None, optimizer), s.get((None, None), 1.0)))

    def batch_for(self, model: str) -> int:
        return self.batch_size.get(model, self.batch_size[None])


@dataclass(frozen=True)
class Study:
    """A validated study file."""

    name: str
    path: Path
    description: str
    points: str  # "random" | "tuned"
    seed: int
    trials: int
    epochs: tuple[int, ...]
    models: tuple[str, ...]
    optimizers: tuple[str, ...]
    windows: dict  # {(family, optimizer): Window}
    tuned: dict = field(default_factory=dict)  # {(optimizer, model): (lr, wd)}
    budgets: dict = field(default_factory=dict)  # {name: Budget}
    families: dict = field(default_factory=dict)  # {model: family}, for models bench does not register

    def budget(self, name: str) -> Budget:
        if name not in self.budgets:
            raise StudyError(f"study {self.name!r} has no budget {name!r}; valid: {', '.join(self.budgets)}")
        return self.budgets[name]

    @property
    def family_names(self) -> list[str]:
        return list(dict.fromkeys(f for f, _ in self.windows))

    def window(self, family: str, optimizer: str) -> Window:
        """The paper's (or the study file's) window of a family and optimizer, unscaled."""
        try:
            return self.windows[(family, optimizer)]
        except KeyError:
            raise StudyError(f"study {self.name!r} has no range for family {family!r} and optimizer {optimizer!r} "
                             f"(add [ranges.{family}] {optimizer} = {{ lr = [..], wd = [..] }})") from None


def with_data(study: Study, budget: str, data: str) -> Study:
    """The study with one budget's data replaced (``bench calibrate --data``)."""
    try:
        data = dataspec.canonical(data)
    except dataspec.DataError as e:
        raise StudyError(f"--data: {e}") from None
    return replace(study, budgets={**study.budgets, budget: replace(study.budget(budget), data=data)})


@dataclass(frozen=True)
class Overrides:
    """Command-line values that replace the study file's (None: keep the file's)."""

    budget: str = "local"
    models: tuple[str, ...] | None = None
    optimizers: tuple[str, ...] | None = None
    trials: int | None = None
    epochs: tuple[int, ...] | None = None
    data: str | None = None
    seed: int | None = None
    seeds: int | None = None
    family: str | None = None  # ranges for models bench does not register (before the study's [families])
    resolution: int | None = None
    compile: bool = False  # torch.compile every trial's training forward (an execution option)


@dataclass(frozen=True)
class Plan:
    """What a study under a budget and overrides runs: every value after precedence."""

    study: Study
    budget: Budget
    models: tuple[str, ...]
    optimizers: tuple[str, ...]
    points: int  # random points per model and optimizer (tuned studies: one)
    seed: int  # sampling seed
    epochs: tuple[int, ...]
    seeds: int  # training seeds per point
    data: str  # canonical
    resolution: int | None
    compile: bool
    family_of: dict  # {model: family}

    def window(self, model: str, optimizer: str) -> Window:
        """The window a model's points are drawn from: the study's for its family x the budget's lr_scale."""
        fam = self.family_of[model]
        return self.study.window(fam, optimizer).scaled(self.budget.lr_factor(fam, optimizer))

    def tuned(self, model: str, optimizer: str) -> tuple[float, float]:
        """A model's tuned point: the budget's own (calibrated per model: as it is, wherever the family's
        window is), else the study file's or the paper's (Table 4 left) x the budget's lr_scale, which
        must lie in the model's window; a model the paper did not tune borrows its sibling's (paper.BORROW)."""
        own = _borrowed(self.budget.tuned, optimizer, model)
        pair = own or _borrowed(self.study.tuned, optimizer, model) or paper.tuned(model, optimizer)
        if pair is None:
            have = sorted({m for o, m in (*self.budget.tuned, *self.study.tuned) if o == optimizer} | set(paper.TUNED))
            raise StudyError(f"study {self.study.name!r} has no tuned {optimizer} values for {model!r} (add it under "
                             f"[budgets.{self.budget.name}.tuned.{optimizer}] or [tuned.{optimizer}]); known: "
                             f"{', '.join(have) or '(none)'}")
        if own:
            return float(own[0]), float(own[1])
        lr, wd = pair[0] * self.budget.lr_factor(self.family_of[model], optimizer), pair[1]
        window = self.window(model, optimizer)
        for name, v, r in (("lr", lr, window.lr), ("wd", wd, window.wd)):
            if not r.contains(v):
                raise StudyError(f"study {self.study.name!r}: tuned {optimizer} {name} {v:g} of {model!r} is outside "
                                 f"its range [{r.low:g}, {r.high:g}]")
        return lr, wd


def resolve(study: Study, ov: Overrides, check_model=None) -> Plan:
    """The plan of ``study`` under ``ov``: override, else budget, else study file, else paper.
    ``check_model(name)`` raises for a model name that names no model (bench.core.models.check)."""
    from bench.core import models as registry

    budget = study.budget(ov.budget)
    models = ov.models or budget.models or study.models
    for m in models:
        try:
            (check_model or registry.check)(m)
        except registry.UnknownModelError as e:
            raise StudyError(f"study {study.name!r} (budget {budget.name!r}): {e}") from None
    if ov.family is not None and ov.family not in study.family_names:
        raise StudyError(f"study {study.name!r} has no family {ov.family!r}; it defines: {', '.join(study.family_names)}")
    try:
        data = dataspec.canonical(ov.data or budget.data)
    except dataspec.DataError as e:
        raise StudyError(str(e)) from None
    return Plan(study=study, budget=budget, models=tuple(models), optimizers=tuple(ov.optimizers or study.optimizers),
                points=1 if study.points == "tuned" else ov.trials or budget.trials or study.trials,
                seed=study.seed if ov.seed is None else ov.seed,
                epochs=tuple(ov.epochs or dict.fromkeys(budget.epochs(e) for e in budget.paper_epochs or study.epochs)),
                seeds=ov.seeds or budget.seeds or 1, data=data, resolution=ov.resolution or budget.resolution,
                compile=ov.compile, family_of={m: _family(study, m, ov.family) for m in models})


def _family(study: Study, model: str, override: str | None) -> str:
    """Whose lr/wd ranges a model takes: a bench model its own; any other ``--family``, else the
    study's ``[families]`` entry; no default."""
    from bench.core.models import family

    own, listed = family(model), study.families.get(model)
    if own and listed and listed != own:
        raise StudyError(f"study {study.name!r}: [families] gives {model!r} family {listed!r}, but bench's "
                         f"{model!r} is a {own!r} model")
    fam = own or override or listed
    if fam is None:
        raise StudyError(f"model {model!r} has no lr/wd ranges in study {study.name!r}: pass --family NAME or add "
                         f"[families] \"{model}\" = NAME to the study; its families: {', '.join(study.family_names)}")
    return fam


def _borrowed(table: dict, optimizer: str, model: str):
    """``table[(optimizer, model)]``, or the entry of the model it borrows from (paper.BORROW), if any."""
    while (optimizer, model) not in table and model in paper.BORROW:
        model = paper.BORROW[model]
    return table.get((optimizer, model))


# ---- reading study files


def _local_dir() -> Path:
    return Path.cwd() / "studies"


def own_dir() -> Path:
    """bench's own study files: ``bench/studies/`` of an installed wheel, else the ``studies/`` beside
    the bench package (a checkout's top level)."""
    package = Path(__file__).resolve().parents[1]
    return package / "studies" if (package / "studies").is_dir() else package.parent / "studies"


def available() -> list[str]:
    """Names of the studies: a ``studies/`` folder in the working directory, and bench's own."""
    return sorted({p.stem for d in (own_dir(), _local_dir()) for p in d.glob("*.toml")})


def load(name_or_path: str) -> Study:
    """Load a study by name (``studies/<name>.toml`` here, else bench's own) or by path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix == ".toml":
        source = path
    elif (_local_dir() / f"{name_or_path}.toml").is_file():
        source = _local_dir() / f"{name_or_path}.toml"
    else:
        source = own_dir() / f"{name_or_path}.toml"
    if not source.is_file():
        raise StudyError(f"unknown study {name_or_path!r}; valid: {', '.join(available()) or '(none)'} "
                         "(or the path of a .toml file)")
    try:
        raw = tomllib.loads(source.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise StudyError(f"{source}: not UTF-8 text (byte {e.start}): a study file is TOML") from None
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{source}: not valid TOML: {e}") from None
    except OSError as e:
        raise StudyError(f"{source}: cannot read it: {e.strerror or e}") from None
    return parse(raw, name=source.stem, path=source)


def text(study: Study) -> str:
    """The study file's text, as it was read (for the records of a run)."""
    return study.path.read_text(errors="replace") if study.path.is_file() else ""


def parse(raw: dict, name: str, path: Path = Path("<memory>")) -> Study:
    """Validate the dict of a study file; every problem is a one-line StudyError naming the file and key."""
    where = f"study {name!r} ({path})"
    _no_unknown(raw, _STUDY_KEYS, where)
    points = raw.get("points", "random")
    if points not in POINTS:
        raise StudyError(f"{where}: points must be one of {', '.join(POINTS)}, got {points!r}")
    optimizers = tuple(_names(raw.get("optimizers", list(OPTIMIZERS)), OPTIMIZERS, f"{where} optimizers", "optimizer"))
    windows = {}
    for fam, by_opt in _merge(_paper_ranges(), _table(raw, "ranges", where), f"{where} [ranges]").items():
        if not isinstance(by_opt, dict):
            raise StudyError(f"{where} [ranges] {fam}: must be a table of optimizer = {{ lr = [..], wd = [..] }}, "
                             f"got {by_opt!r}")
        for opt, sp in by_opt.items():
            if opt not in OPTIMIZERS:
                raise StudyError(f"{where} [ranges.{fam}] {opt}: unknown optimizer; valid: {', '.join(OPTIMIZERS)}")
            windows[(fam, opt)] = _window(sp, f"{where} [ranges.{fam}] {opt}")
    families = _table(raw, "families", where)
    fam_names = list(dict.fromkeys(f for f, _ in windows))
    for m, fam in families.items():
        if fam not in fam_names:
            raise StudyError(f"{where}: [families] {m} = {fam!r} is not a family of [ranges]; valid: {', '.join(fam_names)}")
    budgets = {b: _budget(b, spec, f"{where} [budgets.{b}]")
               for b, spec in _merge({"paper": PAPER_BUDGET}, _table(raw, "budgets", where),
                                     f"{where} [budgets]").items()}
    return Study(
        name=name, path=path, description=str(raw.get("description", "")), points=points,
        seed=_int(raw.get("seed", 0), f"{where} seed", minimum=0), trials=_int(raw.get("trials", 1), f"{where} trials"),
        epochs=tuple(_int(e, f"{where} epochs") for e in _list(raw.get("epochs"), f"{where} epochs")),
        models=tuple(_names(raw.get("models"), None, f"{where} models", "model")), optimizers=optimizers,
        windows=windows, tuned=_tuned(_table(raw, "tuned", where), f"{where} [tuned]"), budgets=budgets,
        families=families)


def _budget(name: str, spec, where: str) -> Budget:
    if not isinstance(spec, dict):
        raise StudyError(f"{where}: must be a table, got {spec!r}")
    _no_unknown(spec, _BUDGET_KEYS, where)
    if "data" not in spec:
        raise StudyError(f"{where}: missing 'data'")
    try:
        data = dataspec.canonical(spec["data"])
    except dataspec.DataError as e:
        raise StudyError(f"{where} data: {e}") from None
    recipe = spec.get("recipe", "light")
    if recipe not in RECIPES:
        raise StudyError(f"{where} recipe: unknown recipe {recipe!r}; valid: {', '.join(RECIPES)}")
    batch = spec.get("batch_size", 128)
    if isinstance(batch, dict):
        if "default" not in batch:
            raise StudyError(f"{where}: a batch_size table needs a 'default' entry")
        batch = {None if m == "default" else m: _int(b, f"{where} batch_size.{m}") for m, b in batch.items()}
    else:
        batch = {None: _int(batch, f"{where} batch_size")}
    models = spec.get("models")
    return Budget(
        name=name, data=data, recipe=recipe, epoch_scale=_positive(spec.get("epoch_scale", 1.0), f"{where} epoch_scale"),
        lr_scale=_lr_scale(spec.get("lr_scale", 1.0), f"{where} lr_scale"),
        trials=None if "trials" not in spec else _int(spec["trials"], f"{where} trials"),
        models=None if models is None else tuple(_names(models, None, f"{where} models", "model")), batch_size=batch,
        resolution=None if "resolution" not in spec else _int(spec["resolution"], f"{where} resolution"),
        paper_epochs=None if "epochs" not in spec else tuple(_int(e, f"{where} epochs") for e in _list(spec["epochs"], f"{where} epochs")),
        seeds=None if "seeds" not in spec else _int(spec["seeds"], f"{where} seeds"),
        tuned=_tuned(spec.get("tuned", {}), f"{where} tuned"))


def _lr_scale(v, where: str) -> dict:
    """A number, {optimizer = x} or {family = {optimizer = x}} -> {(family | None, optimizer | None): x}."""
    if not isinstance(v, dict):
        return {(None, None): _positive(v, where)}
    kinds = {isinstance(x, dict) for x in v.values()}
    if len(kinds) > 1:
        raise StudyError(f"{where}: either {{optimizer = x}} or {{family = {{optimizer = x}}}}, not both")
    out = {}
    if kinds == {True}:
        for fam, by in v.items():
            out.update({(fam, opt): x for (_, opt), x in _lr_scale(by, f"{where}.{fam}").items()})
        return out
    for opt, x in v.items():
        if opt not in OPTIMIZERS:
            raise StudyError(f"{where}.{opt} names an unknown optimizer; valid: {', '.join(OPTIMIZERS)}")
        out[(None, opt)] = _positive(x, f"{where}.{opt}")
    return out


def _tuned(t: dict, where: str) -> dict:
    """{optimizer: {model: [lr, wd]}} -> {(optimizer, model): (lr, wd)}."""
    out = {}
    for opt, by_model in t.items():
        if opt not in OPTIMIZERS:
            raise StudyError(f"{where}: unknown optimizer {opt!r}; valid: {', '.join(OPTIMIZERS)}")
        if not isinstance(by_model, dict):
            raise StudyError(f"{where}.{opt}: must be a table of model = [lr, wd], got {by_model!r}")
        for m, v in by_model.items():
            lr, wd = _pair(v, f"{where}.{opt} {m}")
            out[(opt, m)] = (_positive(lr, f"{where}.{opt} {m} lr"), _positive(wd, f"{where}.{opt} {m} wd", zero=True))
    return out


def _window(sp, where: str) -> Window:
    if not isinstance(sp, dict) or set(sp) != {"lr", "wd"}:
        raise StudyError(f"{where}: must be {{ lr = [low, high], wd = [low, high] }}, got {sp!r}")
    return Window(*(check_range(*_pair(sp[p], f"{where} {p}"), f"{where} {p}") for p in ("lr", "wd")))


def check_range(low, high, what: str) -> Range:
    """A log-uniform range needs 0 < low < high."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise StudyError(f"{what}: range must be two numbers, got [{low!r}, {high!r}]")
    if low <= 0:
        raise StudyError(f"{what}: log-uniform range needs low > 0, got low = {low}")
    if low >= high:
        raise StudyError(f"{what}: range needs low < high, got [{low}, {high}]")
    return Range(float(low), float(high))


def _paper_ranges() -> dict:
    """Table 4 right as study-file tables: {family: {optimizer: {"lr": [lo, hi], "wd": [lo, hi]}}}."""
    out: dict = {}
    for (fam, opt), r in paper.RANGES.items():
        out.setdefault(fam, {})[opt] = {k: list(v) for k, v in r.items()}
    return out


def _merge(base: dict, over: dict, where: str) -> dict:
    """The paper's tables with a study file's on top: a file's family (or budget) replaces or adds
    one entry at a time."""
    out = dict(base)
    for k, v in over.items():
        out[k] = {**base[k], **v} if isinstance(base.get(k), dict) and isinstance(v, dict) else v
    return out


def _table(raw: dict, key: str, where: str) -> dict:
    t = raw.get(key, {})
    if not isinstance(t, dict):
        raise StudyError(f"{where}: [{key}] must be a table, got {t!r}")
    return t


def _no_unknown(d: dict, valid: set, where: str) -> None:
    unknown = sorted(set(d) - valid)
    if unknown:
        raise StudyError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(sorted(valid))}")


def _list(v, where: str) -> list:
    if not isinstance(v, list) or not v:
        raise StudyError(f"{where}: must be a non-empty list, got {v!r}")
    return v


def _names(v, valid, where: str, what: str) -> list[str]:
    """A non-empty list of names (of ``valid`` ones, if given)."""
    items = _list(v, where)
    for x in items:
        if not isinstance(x, str) or not x:
            raise StudyError(f"{where}: each {what} is a name in quotes, got {x!r}")
        if valid is not None and x not in valid:
            raise StudyError(f"{where}: unknown {what} {x!r}; valid: {', '.join(valid)}")
    return items


def _pair(v, where: str) -> tuple:
    if not isinstance(v, list) or len(v) != 2:
        raise StudyError(f"{where}: must be a pair [a, b], got {v!r}")
    return tuple(v)


def _int(v, where: str, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise StudyError(f"{where}: must be an integer >= {minimum}, got {v!r}")
    return v


def _positive(v, where: str, zero: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 or (v == 0 and not zero):
        raise StudyError(f"{where}: must be a number > 0, got {v!r}")
    return float(v)
