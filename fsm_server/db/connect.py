"""Open the server database: SQLite by default, PostgreSQL by URL; the one place peewee's and the
drivers' exceptions become fsm errors.

``""`` or ``sqlite:///path`` gives a SQLite file (WAL, foreign keys on, ``synchronous=FULL`` so a
committed report survives a power cut, writers take the lock at BEGIN so two ingest processes
queue instead of failing half-way). ``postgresql://user@host:port/db`` gives PostgreSQL through
psycopg 3, which peewee 4 drives natively.

``open_database`` (in ``fsm_server.db``) opens one and migrates it::

    >>> import tempfile, pathlib
    >>> from fsm_server.db import open_database
    >>> db = open_database("", data_dir=pathlib.Path(tempfile.mkdtemp()))
    >>> db.kind, db.peewee.pragma("journal_mode")
    ('sqlite', 'wal')
    >>> db.close()
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import peewee

from ..errors import DatabaseError, DataRefused

DB_FILE = "fsm.db"

#: Every peewee exception class and what it becomes. IntegrityError is not here on purpose:
#: the loader catches it to detect a duplicate (client, seq) and turns it into DuplicateEnvelope.
PEEWEE_ERRORS: dict[type[Exception], str] = {
    peewee.OperationalError: "the database refused or lost the connection",
    peewee.InterfaceError: "the database driver is misused or the connection is closed",
    peewee.ProgrammingError: "the database schema does not match this fsm version",
    peewee.InternalError: "the database reported an internal error",
    peewee.NotSupportedError: "the database does not support an operation fsm needs",
    peewee.DataError: "a value does not fit its column",
    peewee.IntegrityError: "a database constraint was violated",
    peewee.DatabaseError: "the database failed",
    peewee.ImproperlyConfigured: "the database driver is missing",
}


#: SQLSTATE classes of PostgreSQL errors caused by the values a statement carries: 22 data exception
#: (too long, out of range, NUL, bad encoding), 23 integrity constraint, 54 program limit exceeded
#: (an index row too large). Everything else (08 connection, 40 rollback, 53 resources, 57 operator
#: intervention, XX internal, ...) is the database's own fault and worth retrying.
_PG_DATA_CLASSES = ("22", "23", "54")
#: SQLite result codes of the same kind: CONSTRAINT, MISMATCH, TOOBIG, RANGE.
_SQLITE_DATA_CODES = frozenset({19, 20, 18, 25})


def refuses_data(exc: BaseException) -> bool:
    """Whether a database exception is about the values sent (the message's fault), not the database's."""
    if isinstance(exc, peewee.DataError | OverflowError):
        return True
    # a raw driver error (backup and restore use cursors) carries its code itself
    orig = exc if not isinstance(exc, peewee.PeeweeException) else exc.__cause__ or exc.__context__
    if orig is None and exc.args and isinstance(exc.args[0], BaseException):
        orig = exc.args[0]  # peewee re-raises driver errors with the original as first argument
    if orig is None:
        return False
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate[:2] in _PG_DATA_CLASSES
    code = getattr(orig, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in _SQLITE_DATA_CODES


class DuplicateKey(DatabaseError):
    """A unique constraint refused a row (used for idempotence; the loader turns it into a verdict)."""

    reason = "duplicate_key"


def driver_errors() -> tuple[type[Exception], ...]:
    """The DB-API drivers' own exception roots, met where fsm uses a raw cursor (backup, restore)."""
    import sqlite3

    try:
        import psycopg
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, psycopg.Error)


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn peewee/driver exceptions raised inside into DatabaseError: DuplicateKey for an
    IntegrityError, DataRefused for a value the database refuses (see ``refuses_data``; the
    sqlite3 module raises a bare OverflowError for an integer over 64 bits)."""
    caught: tuple[type[Exception], ...] = (peewee.PeeweeException, OverflowError, *driver_errors())
    try:
        yield
    except peewee.IntegrityError as exc:
        raise DuplicateKey(f"{what}: {exc}".strip(), hint="this row exists already") from exc
    except caught as exc:
        if not refuses_data(exc):
            raise _unavailable(what, exc) from exc
        raise DataRefused(
            f"{what}: the database refused a value: {str(exc).strip() or type(exc).__name__}",
            hint="a value passed fsm's checks but not the database's: a bug in fsm; report it",
        ) from exc
    except OSError as exc:
        raise _unavailable(what, exc) from exc


def _unavailable(what: str, exc: Exception) -> DatabaseError:
    summary = next((v for k, v in PEEWEE_ERRORS.items() if isinstance(exc, k)), "the database failed")
    return DatabaseError(
        f"{what}: {summary}: {str(exc).strip() or type(exc).__name__}",
        hint="check [database] url in the config and that the database server is running",
    )


@dataclass
class Database:
    """An open database and what kind it is."""

    peewee: peewee.Database
    kind: Literal["sqlite", "postgresql"]
    url: str

    def atomic(self) -> Any:
        """One transaction (a savepoint when nested)."""
        return self.peewee.atomic()

    def close(self) -> None:
        with contextlib.suppress(peewee.PeeweeException):
            if not self.peewee.is_closed():
                self.peewee.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sqlite_database(path: Path) -> peewee.SqliteDatabase:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(
            f"cannot create the directory {str(path.parent)!r} of the database: {exc.strerror or exc}",
            hint="choose a --data-dir ([server] data_dir) or a sqlite:/// path this user can write",
        ) from exc
    return peewee.SqliteDatabase(
        str(path),
        pragmas={"journal_mode": "wal", "foreign_keys": 1, "synchronous": "full", "busy_timeout": 30000},
        timeout=30,
        lock_type="IMMEDIATE",
        returning_clause=True,
    )


def sqlite_path(url: str, data_dir: Path) -> Path | None:
    """The file a SQLite ``url`` names ('' means ``<data_dir>/fsm.db``); None for another database."""
    if url and urlsplit(url).scheme != "sqlite":
        return None
    raw = url[len("sqlite:///") :] if url.startswith("sqlite:///") else ""
    return Path(raw) if raw else data_dir / DB_FILE


def redact(url: str) -> str:
    """The URL with any password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def database_url_from_env(default: str) -> str:
    """FSM_DATABASE_URL overrides the config (tests, one-off imports into another database)."""
    return os.environ.get("FSM_DATABASE_URL", default)


__all__ = [
    "DB_FILE",
    "PEEWEE_ERRORS",
    "Database",
    "DuplicateKey",
    "database_url_from_env",
    "driver_errors",
    "redact",
    "refuses_data",
    "sqlite_database",
    "sqlite_path",
    "translated",
]
