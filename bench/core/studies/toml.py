"""Study files: where they are found, and their TOML read into a validated :class:`Study`; every
problem is one line (a :class:`StudyError`) naming the file and the key. Keys a file leaves out take
the paper's values (``bench.core.paper``: Table 4's ranges and tuned values, the ``paper`` budget)."""
from __future__ import annotations

import math
import tomllib
from pathlib import Path

from bench.core import dataspec, paper
from bench.core.identity import DEFAULT_BATCH, DEFAULT_RECIPE, OPTIMIZERS, RECIPE_NAMES
from bench.core.studies.schema import KINDS, PAPER_BUDGET, Budget, Range, Study, StudyError, Window

_STUDY_KEYS = {"description", "points", "seed", "trials", "epochs", "models", "optimizers", "ranges", "families",
               "tuned", "budgets"}
_BUDGET_KEYS = {"data", "recipe", "epoch_scale", "lr_scale", "trials", "models", "batch_size", "resolution", "epochs",
                "seeds", "tuned"}


def _local_dir() -> Path:
    return Path.cwd() / "studies"


def own_dir() -> Path:
    """bench's own study files: ``bench/studies/`` of an installed wheel, else the ``studies/`` beside
    the bench package (a checkout's top level)."""
    package = Path(__file__).resolve().parents[2]
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
    kind = raw.get("points", "random")
    if kind not in KINDS:
        raise StudyError(f"{where}: points must be one of {', '.join(KINDS)}, got {kind!r}")
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
        name=name, path=path, description=str(raw.get("description", "")), kind=kind,
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
    recipe = spec.get("recipe", DEFAULT_RECIPE)
    if recipe not in RECIPE_NAMES:
        raise StudyError(f"{where} recipe: unknown recipe {recipe!r}; valid: {', '.join(RECIPE_NAMES)}")
    batch = spec.get("batch_size", DEFAULT_BATCH)
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
