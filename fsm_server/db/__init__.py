"""The server database: ``open_database`` opens one (SQLite by default, PostgreSQL by URL) and
brings its schema up to date; ``connect`` holds the connection and the translation of database
errors, ``models`` the tables, ``migrations`` the schema's steps.

It lives here, above ``connect`` and ``migrations``, because it uses both and migrations need the
connection: neither module imports the other's opener.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import peewee

from ..errors import DatabaseError
from .connect import DB_FILE, Database, redact, sqlite_database, sqlite_path, translated
from .migrations import migrate as run_migrations

#: Session settings of every PostgreSQL connection (libpq ``options``) unless the URL names its own.
PG_OPTIONS = "-c jit=off"


def open_database(url: str, *, data_dir: Path, migrate: bool = True) -> Database:
    """Open (and by default migrate) the database ``url`` names; '' means SQLite in ``data_dir``."""
    scheme = urlsplit(url).scheme if url else "sqlite"
    if scheme == "sqlite":
        path = sqlite_path(url, data_dir) or data_dir / DB_FILE
        db = Database(sqlite_database(path), "sqlite", url or f"sqlite:///{path}")
    elif scheme in ("postgresql", "postgres"):
        conninfo = "postgresql" + url[len(scheme) :]
        # No JIT: fsm's queries seek through indexes, and a plan over a large table is priced high
        # enough to be compiled (40 ms a query, more than running it); a URL's own options win.
        if "options=" in url:
            pw = peewee.PostgresqlDatabase(conninfo, prefer_psycopg3=True)
        else:
            pw = peewee.PostgresqlDatabase(conninfo, prefer_psycopg3=True, options=PG_OPTIONS)
        db = Database(pw, "postgresql", url)
    else:
        raise DatabaseError(
            f"database url {url!r} has scheme {scheme!r}, which fsm does not support",
            hint="use sqlite:///PATH, postgresql://USER@HOST:PORT/DB, or leave [database] url empty",
        )
    with translated(f"cannot open database {redact(db.url)!r}"):
        db.peewee.connect(reuse_if_open=True)
    if migrate:
        run_migrations(db)
    return db


__all__ = ["PG_OPTIONS", "open_database"]
