"""Load and validate study files (``studies/<name>.toml``)."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from bench.core import paper
from bench.core.errors import UserError
from bench.recipe import OPTIMIZERS

STUDIES_DIR = Path(__file__).resolve().parents[2] / "studies"
PARAMS = ("lr", "wd")
_STUDY_KEYS = {"description", "points", "seed", "trials", "epochs", "models", "optimizers",
               "ranges", "families", "tuned", "budgets"}
_BUDGET_KEYS = {"data", "recipe", "epoch_scale", "lr_scale", "trials", "models", "batch_size", "resolution", "epochs",
                "seeds", "tuned"}


class StudyError(UserError):
    """A study file or a name given on the command line is invalid."""


@dataclass(frozen=True)
class Budget:
    """How much of a study to run and on what data; epochs = max(1, round(paper x epoch_scale)).

    ``lr_scale`` multiplies the study's lrs (ranges and tuned values): one number, a table per
    optimizer, or a table per family of tables per optimizer. Small models trained for a few epochs
    on 32 px data want other lrs than the paper's ImageNet models, so a laptop budget moves the
    paper's "good value x [1/8, 4]" window onto its models' good value, as ``bench calibrate``
    measures it.
    """

    name: str
    data: str
    recipe: str = "light"
    epoch_scale: float = 1.0
    lr_scale: float | dict = 1.0  # a number, {optimizer: number} or {family: {optimizer: number}}
    trials: int | None = None
    models: tuple[str, ...] | None = None
    batch_size: int | dict = 128
    resolution: int | None = None
    paper_epochs: tuple[int, ...] | None = None  # the study's paper epochs this budget runs (None: all)
    seeds: int | None = None  # training seeds per point (None: 1, or --seeds)
    tuned: dict = field(default_factory=dict)  # {optimizer: {model: (lr, wd)}}: this budget's own, not lr_scaled

    def epochs(self, paper_epochs: int) -> int:
        return max(1, round(paper_epochs * self.epoch_scale))

    def lr_factor(self, family: str, optimizer: str) -> float:
        """The factor on the study's lrs for this family and optimizer (1 where the table has no entry)."""
        scale = self.lr_scale
        if isinstance(scale, dict) and all(isinstance(v, dict) for v in scale.values()):
            scale = scale.get(family, {})
        return scale.get(optimizer, 1.0) if isinstance(scale, dict) else scale

    def scale(self, space: dict, family: str, optimizer: str) -> dict:
        """The study's (lr, wd) ranges with the lr range multiplied by ``lr_factor``."""
        return {**space, "lr": tuple(v * self.lr_factor(family, optimizer) for v in space["lr"])}

    def batch_for(self, model: str) -> int:
        if isinstance(self.batch_size, int):
            return self.batch_size
        return self.batch_size.get(model, self.batch_size["default"])


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
    ranges: dict  # {family: {optimizer: {"lr": (low, high), "wd": (low, high)}}}
    tuned: dict = field(default_factory=dict)  # {optimizer: {model: (lr, wd)}}
    budgets: dict = field(default_factory=dict)  # {name: Budget}
    families: dict = field(default_factory=dict)  # {model: family}, for models bench does not register

    def budget_epochs(self, budget: Budget) -> tuple[int, ...]:
        """The epochs of a budget's trials, shortest first: its share of the study's paper epochs, scaled."""
        return tuple(dict.fromkeys(budget.epochs(e) for e in budget.paper_epochs or self.epochs))

    def budget(self, name: str) -> Budget:
        if name not in self.budgets:
            raise StudyError(f"study {self.name!r} has no budget {name!r}; valid: {', '.join(self.budgets)}")
        return self.budgets[name]

    def space(self, family: str, optimizer: str) -> dict:
        """The (lr, wd) ranges of a family and optimizer: {"lr": (low, high), "wd": (low, high)}."""
        try:
            return self.ranges[family][optimizer]
        except KeyError:
            raise StudyError(f"study {self.name!r} has no range for family {family!r} and optimizer "
                             f"{optimizer!r} (add [ranges.{family}] {optimizer} = {{ lr = [..], wd = [..] }})") from None


def available() -> list[str]:
    """Names of the study files in the studies directory."""
    return sorted(p.stem for p in STUDIES_DIR.glob("*.toml"))


def load(name_or_path: str) -> Study:
    """Load a study by name (``studies/<name>.toml``) or by path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = STUDIES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise StudyError(f"unknown study {name_or_path!r}; valid: {', '.join(available()) or '(none)'}")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{path}: not valid TOML: {e}") from None
    return parse(raw, name=path.stem, path=path)


def parse(raw: dict, name: str, path: Path = Path("<memory>")) -> Study:
    """Validate the dict of a study file; every problem is a one-line StudyError."""
    where = f"study {name!r} ({path})"
    _no_unknown(raw, _STUDY_KEYS, where)
    points = raw.get("points", "random")
    if points not in ("random", "tuned"):
        raise StudyError(f"{where}: points must be 'random' or 'tuned', got {points!r}")
    optimizers = tuple(raw.get("optimizers", OPTIMIZERS))
    bad = [o for o in optimizers if o not in OPTIMIZERS]
    if bad:
        raise StudyError(f"{where}: unknown optimizer {bad[0]!r}; valid: {', '.join(OPTIMIZERS)}")
    ranges = {fam: {opt: _space(sp, f"{where} [ranges.{fam}] {opt}") for opt, sp in by_opt.items()}
              for fam, by_opt in _merge(_paper_ranges(), raw.get("ranges", {})).items()}
    families = raw.get("families", {})
    if not isinstance(families, dict):
        raise StudyError(f"{where}: [families] must be a table of model = \"family\"")
    for m, fam in families.items():
        if fam not in ranges:
            raise StudyError(f"{where}: [families] {m} = {fam!r} is not a family of [ranges]; valid: {', '.join(ranges)}")
    tuned = {opt: {m: _pair(v, f"{where} [tuned.{opt}] {m}") for m, v in by_model.items()}
             for opt, by_model in raw.get("tuned", {}).items()}
    budgets = {b: _budget(b, spec, f"{where} [budgets.{b}]")
               for b, spec in _merge({"paper": paper.PAPER_BUDGET}, raw.get("budgets", {})).items()}
    return Study(
        name=name, path=path, description=str(raw.get("description", "")), points=points,
        seed=_int(raw.get("seed", 0), f"{where} seed", minimum=0),
        trials=_int(raw.get("trials", 1), f"{where} trials"),
        epochs=tuple(_int(e, f"{where} epochs") for e in _list(raw.get("epochs"), f"{where} epochs")),
        models=tuple(_list(raw.get("models"), f"{where} models")), optimizers=optimizers,
        ranges=ranges, tuned=tuned, budgets=budgets, families=families)


def check_range(low: float, high: float, what: str) -> tuple[float, float]:
    """A log-uniform range needs 0 < low < high."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
        raise StudyError(f"{what}: range must be two numbers, got [{low!r}, {high!r}]")
    if low <= 0:
        raise StudyError(f"{what}: log-uniform range needs low > 0, got low = {low}")
    if low >= high:
        raise StudyError(f"{what}: range needs low < high, got [{low}, {high}]")
    return float(low), float(high)


def _space(sp, where: str) -> dict:
    if not isinstance(sp, dict) or set(sp) != set(PARAMS):
        raise StudyError(f"{where}: must be {{ lr = [low, high], wd = [low, high] }}, got {sp!r}")
    return {p: check_range(*_pair(sp[p], f"{where} {p}"), f"{where} {p}") for p in PARAMS}


def _budget(name: str, spec, where: str) -> Budget:
    if not isinstance(spec, dict):
        raise StudyError(f"{where}: must be a table")
    _no_unknown(spec, _BUDGET_KEYS, where)
    if "data" not in spec:
        raise StudyError(f"{where}: missing 'data'")
    lr_scale = spec.get("lr_scale", 1.0)
    if isinstance(lr_scale, dict) and len({isinstance(v, dict) for v in lr_scale.values()}) > 1:
        raise StudyError(f"{where}: lr_scale is either {{optimizer = x}} or {{family = {{optimizer = x}}}}, not both")
    scales = {"epoch_scale": spec.get("epoch_scale", 1.0), **_flat("lr_scale", lr_scale)}
    for key, value in scales.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise StudyError(f"{where}: {key} must be a number > 0, got {value!r}")
        if key.count(".") and key.rsplit(".", 1)[1] not in OPTIMIZERS:
            raise StudyError(f"{where}: {key} names an unknown optimizer; valid: {', '.join(OPTIMIZERS)}")
    batch = spec.get("batch_size", 128)
    if isinstance(batch, dict):
        if "default" not in batch:
            raise StudyError(f"{where}: a batch_size table needs a 'default' entry")
        batch = {m: _int(b, f"{where} batch_size.{m}") for m, b in batch.items()}
    else:
        batch = _int(batch, f"{where} batch_size")
    models = spec.get("models")
    paper_epochs = None if "epochs" not in spec else tuple(_int(e, f"{where} epochs") for e in _list(spec["epochs"], f"{where} epochs"))
    tuned = spec.get("tuned", {})
    if not isinstance(tuned, dict) or not all(isinstance(v, dict) for v in tuned.values()):
        raise StudyError(f"{where}: tuned must be tables [budgets.NAME.tuned.OPTIMIZER] of model = [lr, wd]")
    bad = [o for o in tuned if o not in OPTIMIZERS]
    if bad:
        raise StudyError(f"{where} tuned: unknown optimizer {bad[0]!r}; valid: {', '.join(OPTIMIZERS)}")
    return Budget(
        paper_epochs=paper_epochs, seeds=None if "seeds" not in spec else _int(spec["seeds"], f"{where} seeds"),
        tuned={o: {m: _pair(v, f"{where} tuned.{o}.{m}") for m, v in by.items()} for o, by in tuned.items()},
        name=name, data=str(spec["data"]), recipe=str(spec.get("recipe", "light")),
        epoch_scale=float(scales["epoch_scale"]),
        lr_scale=_floats(lr_scale),
        trials=None if "trials" not in spec else _int(spec["trials"], f"{where} trials"),
        models=None if models is None else tuple(_list(models, f"{where} models")), batch_size=batch,
        resolution=None if "resolution" not in spec else _int(spec["resolution"], f"{where} resolution"))


def _flat(key: str, v) -> dict:
    """{"lr_scale.vit.adamw": 12.0, ...} from a number or nested tables."""
    if isinstance(v, dict):
        return {k2: x for k, sub in v.items() for k2, x in _flat(f"{key}.{k}", sub).items()}
    return {key: v}


def _floats(v):
    return {k: _floats(x) for k, x in v.items()} if isinstance(v, dict) else float(v)


def _paper_ranges() -> dict:
    """Table 4 right as study-file tables: {family: {optimizer: {"lr": [lo, hi], "wd": [lo, hi]}}}."""
    out: dict = {}
    for (fam, opt), r in paper.RANGES.items():
        out.setdefault(fam, {})[opt] = {k: list(v) for k, v in r.items()}
    return out


def _merge(base: dict, over) -> dict:
    """The paper's tables with a study file's on top: a file's family (or budget) replaces or adds
    one entry at a time."""
    if not isinstance(over, dict):
        raise StudyError(f"expected a table, got {over!r}")
    out = dict(base)
    for k, v in over.items():
        out[k] = {**base[k], **v} if isinstance(base.get(k), dict) and isinstance(v, dict) else v
    return out


def _no_unknown(d: dict, valid: set, where: str) -> None:
    unknown = sorted(set(d) - valid)
    if unknown:
        raise StudyError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(sorted(valid))}")


def _table(raw: dict, key: str, where: str) -> dict:
    t = raw.get(key)
    if not isinstance(t, dict) or not t:
        raise StudyError(f"{where}: needs a non-empty [{key}] table")
    return t


def _list(v, where: str) -> list:
    if not isinstance(v, list) or not v:
        raise StudyError(f"{where}: must be a non-empty list, got {v!r}")
    return v


def _pair(v, where: str) -> tuple:
    if not isinstance(v, list) or len(v) != 2:
        raise StudyError(f"{where}: must be a pair [a, b], got {v!r}")
    return tuple(v)


def _int(v, where: str, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise StudyError(f"{where}: must be an integer >= {minimum}, got {v!r}")
    return v
