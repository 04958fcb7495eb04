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
        return _rdb(str(source))
    path = Path(source)
    if path.is_dir():
        raise journal.JournalError(f"{path} is a folder, not a journal file: rebuild the journal from the trial "
                                   f"dirs with `{layout.repair_command(path)}` (it keeps the folder as a backup)")
    if not path.exists():
        if not create:
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        except OSError as e:
            raise StorageError(f"cannot create {path}: {e.strerror or e}") from None
    if create:
        journal.heal_tail(path)
    journal.check(path, layout.repair_command(path))
    from optuna.storages.journal import JournalFileBackend

    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def _rdb(url: str):
    """optuna's RDB storage, with a missing driver, a refused connection or bad credentials as one line."""
    import optuna

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
