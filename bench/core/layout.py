"""The results layout, said once: what lives where under ``<results>/<study>/`` (:class:`StudyDir`)
and in a trial's folder (:class:`TrialDir`), the study's lock, and where the committed references are.

    <results>/<study>/optuna.journal     the study's trials (optuna JournalStorage), unless --storage
    <results>/<study>/runner.lock        held by the one `bench run` or `bench repair` of the study
    <results>/<study>/trials/<key>/      a trial's folder (TrialDir): result.json, checkpoint.pt, job.json,
                                         heartbeat, attempts.jsonl, error.txt
    <results>/<study>/submitit/          the jobs' submitit folders
    <results>/<study>/design.json        a study grown by --until-decided: its looks and verdicts
    <results>/<study>/study.toml         the study file as the last `bench run` read it
    <results>/<study>/report.html        `bench report`'s default output (plots: <kind>.png)
    <results>/<study>/trials.<csv|parquet>  `bench export`'s default output
    <results>/calibrate_<study>/<budget>.json  `bench calibrate`'s record (with its trials' study)
    <checkout>/results/reference/<name>/trials.csv  a committed reference study (REFERENCES)
    <checkout>/results/reference/calibration/<study>_<budget>.json  `bench calibrate --write-reference`

The trial dir is the source of truth: a ``result.json`` there is recorded without retraining.
"""
from __future__ import annotations

import fcntl
import json
import time
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import UserError

JOURNAL = "optuna.journal"
DESIGN = "design.json"  # a grown study's looks and verdicts, beside its journal or trials.csv
# the committed references: results/reference/ of the checkout that holds the bench package
REFERENCES = Path(__file__).resolve().parents[2] / "results" / "reference"


def calibration_name(study: str) -> str:
    """The study that holds ``bench calibrate``'s trials of ``study`` (a folder of its own under <results>)."""
    return f"calibrate_{study}"


def reference_calibration(study: str, budget: str) -> Path:
    """Where ``bench calibrate --write-reference`` writes its record: beside the committed references."""
    return REFERENCES / "calibration" / f"{study}_{budget}.json"


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

    def trial(self, key: str) -> TrialDir:
        return TrialDir(self.trials / key)

    def trial_dirs(self) -> list[TrialDir]:
        """The study's trial folders, by key."""
        return [TrialDir(p) for p in sorted(self.trials.iterdir()) if p.is_dir()] if self.trials.is_dir() else []

    @property
    def submitit(self) -> Path:
        return self.root / "submitit"

    @property
    def design(self) -> Path:
        return self.root / DESIGN

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


@dataclass(frozen=True)
class TrialDir:
    """The folder of one trial: the engine's result and checkpoint, the runner's job record, the job's
    heartbeat, attempts and error. The small records are written and read here."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @property
    def result(self) -> Path:
        return self.path / "result.json"

    @property
    def checkpoint(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def job(self) -> Path:
        """The runner's record of the job that runs the trial (cluster, id, host, log)."""
        return self.path / "job.json"

    @property
    def heartbeat(self) -> Path:
        return self.path / "heartbeat"

    @property
    def attempts(self) -> Path:
        return self.path / "attempts.jsonl"

    @property
    def error(self) -> Path:
        return self.path / "error.txt"

    def read_result(self):
        """The parsed result.json (any JSON value), or None if it is missing or unreadable."""
        return _read_json(self.result)

    def read_job(self) -> dict:
        """The job record ({} if there is none)."""
        info = _read_json(self.job)
        return info if isinstance(info, dict) else {}

    def beat(self) -> None:
        """The job is alive: touch the heartbeat."""
        self.heartbeat.touch()

    def beat_age(self) -> float | None:
        """Seconds since the last heartbeat (None: never)."""
        try:
            return time.time() - self.heartbeat.stat().st_mtime
        except OSError:
            return None

    def add_attempt(self, record: dict) -> None:
        """Append a record of a job's start on this trial."""
        with open(self.attempts, "a") as f:
            f.write(json.dumps(record) + "\n")

    def last_attempt(self) -> dict:
        """The last readable attempt record (a torn or corrupt line is skipped; {} if none)."""
        lines = self.attempts.read_text(errors="replace").splitlines() if self.attempts.exists() else []
        for line in reversed(lines):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                return rec
        return {}

    def write_error(self, text: str) -> None:
        self.error.write_text(text)

    def clear_error(self) -> None:
        self.error.unlink(missing_ok=True)

    def error_line(self) -> str | None:
        """The first line of the error a job left here, if any."""
        lines = self.error.read_text(errors="replace").splitlines() if self.error.exists() else []
        return lines[0] if lines else None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


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
