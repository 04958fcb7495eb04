"""The one way to open an optuna storage: a database URL (``postgresql://...``) or a journal file.

A journal is checked on opening (a folder, a binary file, a record optuna cannot read, an unknown
operation: one line naming ``bench repair``) and, when opened for writing, first healed of a torn
tail; a database's missing driver, refused connection or bad credentials are one line too. The
runner's ``Store`` and the analysis' loader both open through here.
"""
from __future__ import annotations

import re
from pathlib import Path

from bench.core import journal, layout
from bench.core.errors import UserError

DRIVERS = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]", "pymysql": "PyMySQL", "MySQLdb": "mysqlclient"}


class StorageError(UserError):
    """The storage holds something that contradicts the study file, or cannot be opened."""


def redact(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", str(url))


def is_url(source) -> bool:
    return "://" in str(source)


def open_storage(source, create: bool = False):
    """The optuna storage at ``source`` (None: a journal that does not exist, when not ``create``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if is_url(source):
        sqlite = _sqlite_file(str(source))
        if sqlite is not None and not create and not sqlite.is_file():
            return None  # as an absent journal: a dry run creates no database
        return _rdb(str(source))
    path = Path(source)
    if path.is_dir():
        raise journal.JournalError(f"{path} is a folder, not a journal file: rebuild the journal from the trial "
                                   f"dirs with `{layout.repair_command(path)}` (it keeps the folder as a backup)")
    if not path.exists():
        if not create:
            return None
        check_name(source)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        except OSError as e:
            raise StorageError(f"cannot create {path}: {e.strerror or e}") from None
    if create:
        try:
            journal.heal_tail(path)  # takes optuna's lock, a file beside the journal: the first write
        except OSError as e:
            raise StorageError(f"cannot write journal {path}: {e.strerror or e}; give a --storage on a filesystem "
                               "you can write (reading it works: bench status, export, report)") from None
    journal.check(path, layout.repair_command(path))
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


JOURNAL_SUFFIX = ".journal"  # a new journal file's name ends in it (any other word is taken for a typo)


def check_name(source) -> None:
    """Raise StorageError for a storage that is neither a URL nor a journal file (one that exists, or a new one
    named ``*.journal``): ``--storage 'not a url'`` is a typo, not the name of a journal to create."""
    if not is_url(source) and not Path(source).exists() and Path(source).suffix != JOURNAL_SUFFIX:
        raise StorageError(f"storage {str(source)!r} is neither a database URL (postgresql://user@host/db, "
                           f"sqlite:////abs/file.db) nor a journal file (an existing one, or a new one named "
                           f"*{JOURNAL_SUFFIX})")


def _sqlite_file(url: str) -> Path | None:
    """The database file of a sqlite URL (``sqlite:///rel.db`` is relative, ``sqlite:////abs.db`` absolute)."""
    head, sep, rest = url.partition(":///")
    return Path(rest.split("?", 1)[0]) if sep and head.split("+", 1)[0] == "sqlite" and rest else None


def _rdb(url: str):
    """optuna's RDB storage, with a missing driver, a refused connection or bad credentials as one line."""
    import optuna

    sqlite = _sqlite_file(url)
    if sqlite is not None and not sqlite.parent.is_dir():
        raise StorageError(f"cannot open storage {url}: no folder {sqlite.parent}/ for its file {sqlite}"
                           + (f" (three slashes make the path relative to the working folder; an absolute one takes "
                              f"four: sqlite:////{sqlite})" if not sqlite.is_absolute() else ""))
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    except ImportError as e:  # optuna raises it from SQLAlchemy's ModuleNotFoundError
        missing = getattr(e.__cause__, "name", None) or getattr(e, "name", None) or "?"
        raise StorageError(f"cannot open storage {redact(url)}: its database driver is not installed "
                           f"(no module {missing!r}; pip install {DRIVERS.get(missing, missing)})") from None
    except Exception as e:
        if not (lost_connection(e) or type(e).__module__.startswith("sqlalchemy")):
            raise
        raise StorageError(f"cannot open storage {redact(url)}: {cause(e)}") from None


def lost_connection(e: Exception) -> bool:
    import optuna
    import sqlalchemy.exc

    return isinstance(e, (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError))


def cause(e: BaseException) -> str:
    """The first line of the deepest cause: the driver's own words (never the URL's password)."""
    while getattr(e, "orig", None) or e.__cause__:
        e = getattr(e, "orig", None) or e.__cause__
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return lines[0] if lines else type(e).__name__
