"""Take a backup: every table of the database, read in one snapshot transaction while ingest and
the portal go on writing, streamed into the archive.

Why rows and not ``pg_dump`` or SQLite's file copy: the same file restores into SQLite and into
PostgreSQL (a dealer who outgrows SQLite moves by backup and restore), it needs no client binary
of the server's exact major version, and its manifest can count and hash every table. Consistency
comes from the engines' own snapshots, the mechanism pg_dump itself uses: PostgreSQL
``REPEATABLE READ READ ONLY`` (one snapshot for every table), SQLite a read transaction on the WAL
(the readers' snapshot; writers go on appending to the WAL). Details: docs/operations.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import IO, Any

import msgspec

from ..db.connect import Database, redact, translated
from ..errors import BackupError
from . import tables as tbl
from .archive import PARTIAL_SUFFIX, ArchiveWriter, ColumnKind, KeyEntry, Manifest, TableEntry, backup_name
from .keywrap import wrap_key

log = logging.getLogger("fsm_server.backup")

FETCH = 5000  # rows per round trip of the PostgreSQL server-side cursor
LOCK_FILE = ".fsm-backup.lock"


@dataclass
class BackupResult:
    path: Path
    manifest: Manifest
    size: int
    sha256: str


def fsm_version() -> str:
    try:
        return version("fsm")
    except PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """One backup at a time per directory (the daemon's and a cron job's). The kernel drops the
    lock when its holder dies, so a kill -9 never leaves it held; the partial files a killed
    backup left are removed under it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle: IO[str] = open(directory / LOCK_FILE, "a")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise BackupError(
            f"cannot use the backup directory {str(directory)!r}: {exc.strerror or exc}",
            hint="set [backup] dir (or --to) to a directory this user can write",
        ) from exc
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(
                f"another backup is being written to {str(directory)!r}",
                hint="wait for it to finish, then run `fsm-server backup status`",
            ) from None
        for stale in directory.glob(f".fsm-backup-*{PARTIAL_SUFFIX}"):
            stale.unlink(missing_ok=True)  # left by a backup that was killed
        yield
    finally:
        handle.close()


@contextlib.contextmanager
def snapshot(db: Database) -> Iterator[Any]:
    """A raw DB-API connection inside one read-only snapshot transaction."""
    conn = db.peewee.connection()
    if db.kind == "postgresql":
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    else:
        conn.execute("BEGIN DEFERRED")  # not peewee's atomic(): that takes the write lock here
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.execute("ROLLBACK")


def _rows(db: Database, conn: Any, table: str, names: list[str]) -> Iterator[tuple[Any, ...]]:
    cols = ", ".join(tbl.quote(c) for c in names)
    order = ", ".join(tbl.quote(c) for c in tbl.primary_key(db.peewee, table)) or "1"
    sql = f"SELECT {cols} FROM {tbl.quote(table)} ORDER BY {order}"
    if db.kind == "postgresql":
        with conn.cursor(name=f"fsm_backup_{table}"[:60]) as cur:  # server-side: memory stays flat
            cur.itersize = FETCH
            cur.execute(sql)
            yield from cur
    else:
        cur = conn.execute(sql)
        try:
            yield from cur
        finally:
            cur.close()


def _datetime(v: Any) -> Any:
    if isinstance(v, datetime):
        return str(v.replace(tzinfo=None) if v.tzinfo is None else v)
    if isinstance(v, date):
        return v.isoformat()
    return v


def _converters(kinds: list[ColumnKind]) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    for i, k in enumerate(kinds):
        if k == "bytes":
            out.append((i, lambda v: bytes(v) if isinstance(v, memoryview) else v))
        elif k == "datetime":
            out.append((i, _datetime))
    return out


def write_tables(db: Database, writer: ArchiveWriter) -> tuple[list[str], list[TableEntry]]:
    """Every data table into ``writer`` from one snapshot; returns (schema, table entries)."""
    from ..db.migrations import applied

    encoder = msgspec.json.Encoder()
    entries: list[TableEntry] = []
    with translated("cannot read the database for the backup"), snapshot(db) as conn:
        schema = applied(db)  # inside the snapshot: the schema of the rows that follow
        for n, table in enumerate(tbl.data_tables(db.peewee), start=1):
            cols = tbl.columns(db.peewee, table)
            names, kinds = [c for c, _ in cols], [k for _, k in cols]
            convert = _converters(kinds)
            member = f"tables/{n:03d}-{table}.jsonl"
            rows = 0
            with writer.member(member) as out:
                buf = bytearray()
                for raw in _rows(db, conn, table, names):
                    row = list(raw)
                    for i, fn in convert:
                        if row[i] is not None:
                            row[i] = fn(row[i])
                    encoder.encode_into(row, buf, len(buf))
                    buf += b"\n"
                    rows += 1
                    if len(buf) > 1 << 20:
                        out.write(bytes(buf))
                        buf.clear()
                out.write(bytes(buf))
                digest = out.sha.hexdigest()
            entries.append(
                TableEntry(name=table, member=member, columns=names, kinds=kinds, rows=rows, sha256=digest)
            )
    return schema, entries


def take_backup(
    db: Database,
    directory: Path,
    *,
    now: datetime | None = None,
    key_file: Path | None = None,
    passphrase: str | None = None,
    compresslevel: int = 1,
) -> BackupResult:
    """Back up ``db`` into a new file in ``directory``; with ``key_file`` and ``passphrase`` the
    server key goes in too, encrypted (``keywrap``). Returns the file and its manifest."""
    if (key_file is None) != (passphrase is None):
        raise BackupError(
            "--with-keys needs both the key file and a passphrase",
            hint="give the passphrase with --passphrase-file or [backup] passphrase_file",
        )
    start = time.monotonic()
    now = now or datetime.now(UTC)
    with directory_lock(directory):
        final = backup_name(now, directory)
        with ArchiveWriter(final, compresslevel=compresslevel) as writer:
            schema, entries = write_tables(db, writer)
            key_entry: KeyEntry | None = None
            if key_file is not None and passphrase is not None:
                key_entry = wrap_key(writer, key_file, passphrase)
            manifest = Manifest(
                format="fsm-backup",
                version=1,
                created_at=now,
                fsm_version=fsm_version(),
                source=db.kind,
                schema=schema,
                tables=entries,
                keys=key_entry,
                seconds=round(time.monotonic() - start, 3),
            )
            try:
                path = writer.commit(manifest)
            except OSError as exc:
                raise BackupError(
                    f"cannot write the backup {str(final)!r}: {exc.strerror or exc}",
                    hint="check the free space and permissions of the backup directory",
                ) from exc
    log.info("backup of %s: %s (%d rows, %d bytes)", redact(db.url), path, manifest.total_rows, writer.size)
    return BackupResult(path=path, manifest=manifest, size=writer.size, sha256=writer.sha256)


__all__ = ["BackupResult", "directory_lock", "fsm_version", "snapshot", "take_backup", "write_tables"]
