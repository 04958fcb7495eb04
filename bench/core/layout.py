"""The results layout, said once: what lives where under ``<results>/<study>/``, and its lock.

    <results>/<study>/optuna.journal     the study's trials (optuna JournalStorage), unless --storage
    <results>/<study>/runner.lock        held by the one `bench run` or `bench repair` of the study
    <results>/<study>/trials/<key>/      a trial's checkpoint, result.json, job.json, heartbeat, logs
    <results>/<study>/submitit/          the jobs' submitit folders
    <results>/<study>/design.json        a study grown by --until-decided: its looks and verdicts
    <results>/<study>/study.toml         the study file as the last `bench run` read it
    <results>/<study>/report.html        `bench report`'s default output (plots: <kind>.png)
    <results>/<study>/trials.<csv|parquet>  `bench export`'s default output
    <results>/calibrate_<study>/<budget>.json  `bench calibrate`'s record (with its trials' study)

The trial dir is the source of truth: a ``result.json`` there is recorded without retraining.
"""
from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import UserError

JOURNAL = "optuna.journal"


class LockedError(UserError):
    """Another runner (or repair) holds the study."""


@dataclass(frozen=True)
class StudyDir:
    """The folder of one study's results."""

    results: Path
    name: str

    @classmethod
    def of_journal(cls, path) -> StudyDir | None:
        """The study folder a journal file is the journal of (None: a journal elsewhere)."""
        path = Path(path)
        return cls(path.parent.parent, path.parent.name) if path.name == JOURNAL else None

    @property
    def root(self) -> Path:
        return Path(self.results) / self.name

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL

    @property
    def trials(self) -> Path:
        return self.root / "trials"

    def trial(self, key: str) -> Path:
        return self.trials / key

    @property
    def submitit(self) -> Path:
        return self.root / "submitit"

    @property
    def design(self) -> Path:
        return self.root / "design.json"

    @property
    def study_file(self) -> Path:
        return self.root / "study.toml"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def figure(self, kind: str) -> Path:
        return self.root / f"{kind}.png"

    def export(self, fmt: str) -> Path:
        return self.root / f"trials.{fmt}"

    def calibration(self, budget: str) -> Path:
        return self.root / f"{budget}.json"

    def repair_command(self) -> str:
        return f"bench repair --study {self.name}" + ("" if Path(self.results) == Path("results") else f" --results {self.results}")

    def lock(self, what: str = "`bench run`") -> StudyLock:
        """The study's lock (an flock, released even on kill -9): one runner or repair at a time."""
        return StudyLock(self.root / "runner.lock", what)


def repair_command(journal) -> str:
    """The ``bench repair`` command line for a journal file."""
    where = StudyDir.of_journal(journal)
    return where.repair_command() if where else f"bench repair --storage {journal}"


def studies_in(results) -> dict[str, StudyDir]:
    """Every study under ``results`` that has a journal, by name."""
    root = Path(results)
    return {p.parent.name: StudyDir(root, p.parent.name) for p in sorted(root.glob(f"*/{JOURNAL}"))} \
        if root.is_dir() else {}


class StudyLock:
    """An exclusive, non-blocking flock on a study's ``runner.lock``."""

    def __init__(self, path: Path, what: str):
        self.path, self.what = Path(path), what

    def __enter__(self):
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.f = open(self.path, "a+")
        except OSError as e:
            raise UserError(f"cannot write in {self.path.parent}: {e.strerror or e}") from None
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.f.close()
            raise LockedError(f"another `bench run` or `bench repair` holds this study ({self.path} is locked): "
                              f"wait for it or stop it before {self.what}") from None
        return self

    def __exit__(self, *exc):
        self.f.close()
