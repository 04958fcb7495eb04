"""Health of an optuna journal file: heal a torn tail, find unreadable records, salvage the rest.

optuna's ``JournalFileBackend`` skips a last line without its newline (a writer killed mid-record)
but appends the next record straight after it; the glued line then sits mid-file and every later
read fails. So a writer heals the tail before appending, and a bad record elsewhere is reported
with its line number and the command that repairs it (``bench repair``).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from optuna.storages.journal import JournalFileSymlinkLock

from bench.core.errors import UserError


class JournalError(UserError):
    """A journal holds a record that cannot be read."""


def heal_tail(path: Path, log=lambda msg: print(msg, file=sys.stderr)) -> Path | None:
    """Move the bytes after the last newline, when they are a torn record, to ``<journal>.torn-<time>``,
    under optuna's own journal lock; returns the side file, or None if there was nothing to heal (a
    tail that cannot be a record is left for ``check`` to report)."""
    path = Path(path)
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        with open(path, "r+b") as f:
            data = f.read()
            cut = data.rfind(b"\n") + 1
            if cut == len(data) or not _torn(data[cut:]):
                return None
            side = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9}")
            side.write_bytes(data[cut:])
            f.truncate(cut)
    finally:
        lock.release()
    log(f"warning: {path} ended in a torn record ({len(data) - cut} bytes, a writer killed mid-write); "
        f"moved it to {side.name} and went on")
    return side


def check(path: Path, repair_hint: str) -> None:
    """Raise JournalError naming the first unreadable line: one that is not a JSON record of an
    operation optuna knows, or a last line without its newline that cannot be the start of one (a
    torn last record is fine: optuna skips it and a writer heals it)."""
    try:
        f = open(path, "rb")
    except IsADirectoryError:
        raise JournalError(f"{path} is a folder, not a journal file: move it away") from None
    with f:
        for number, line in enumerate(f, start=1):
            bad = _record(line) is None if line.endswith(b"\n") else not _torn(line)
            if bad:
                raise JournalError(f"{path} line {number} is not a readable record ({_preview(line)}); "
                                   f"repair it with `{repair_hint}`")


def salvage(path: Path) -> tuple[list[dict], int]:
    """The readable records of a journal, and the number of lines dropped. A line where a torn
    record was glued to a whole one keeps the whole one (the record a writer saw itself append)."""
    records, dropped = [], 0
    with open(path, "rb") as f:
        for line in f:
            rec = _record(line) if line.endswith(b"\n") else None
            rec = rec if rec is not None else _glued(line)
            if rec is None:
                dropped += 1
            else:
                records.append(rec)
    return records, dropped


def write(path: Path, records: list[dict]) -> None:
    """A journal file holding ``records`` (optuna's format: one compact JSON object a line)."""
    with open(path, "w") as f:
        f.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


OP_CODES = set(range(11))  # optuna's JournalOperation: CREATE_STUDY (0) ... DISCARD_TRIALS (10)


def _record(line: bytes) -> dict | None:
    try:
        rec = json.loads(line)
    except ValueError:  # UnicodeDecodeError included
        return None
    return rec if isinstance(rec, dict) and rec.get("op_code") in OP_CODES else None


def _torn(line: bytes) -> bool:
    """Whether a last line without its newline can be the start of a record (a writer killed mid-write)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return text.startswith("{")


def _glued(line: bytes) -> dict | None:
    """The whole record at the end of a line that starts with a torn one, if any."""
    text = line.decode("utf-8", "replace").rstrip("\n")
    decoder = json.JSONDecoder()
    start = text.find("{", 1)
    while start > 0:
        try:
            rec, end = decoder.raw_decode(text, start)
        except ValueError:
            rec, end = None, -1
        if end == len(text) and isinstance(rec, dict) and rec.get("op_code") in OP_CODES:
            return rec
        start = text.find("{", start + 1)
    return None


def _preview(line: bytes) -> str:
    text = line.decode("utf-8", "replace").strip()
    return repr(text[:60] + ("..." if len(text) > 60 else ""))
