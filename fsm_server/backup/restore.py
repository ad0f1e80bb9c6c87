"""Restore a backup into SQLite or PostgreSQL (whichever wrote it), all or nothing.

In order: the archive is checked against its manifest (every table's sha256 and row count); a
target holding data is refused unless ``force``; then, in ONE transaction, the target's tables
are dropped, the backup's schema is made by the migrations it names, the rows are loaded parents
first, PostgreSQL's id sequences are moved past the loaded ids, the migrations the backup lacks
(an older backup) run, and the result is checked (row counts against the manifest, foreign keys,
SQLite's integrity check). Any failure rolls the whole transaction back: the target is as before.
"""

from __future__ import annotations

import base64
import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from fsm_protocol.errors import FsmError
from fsm_protocol.keys import load_encryption_key, write_private_file

from ..db import migrations, open_database
from ..db.connect import Database, translated
from ..errors import BackupCorrupt, BackupError, TargetNotEmpty
from . import tables as tbl
from .archive import ArchiveReader, ColumnKind, Manifest, TableEntry
from .keywrap import unwrap_key

BATCH = 2000  # rows per executemany on SQLite


@dataclass
class RestoreResult:
    manifest: Manifest
    target: str  # sqlite | postgresql
    rows: dict[str, int] = field(default_factory=dict)
    migrated: list[str] = field(default_factory=list)  # migrations the backup lacked, applied after
    replaced: int = 0  # rows that were in the target before (--force)
    seconds: float = 0.0


def row_counts(db: Database) -> dict[str, int]:
    """Rows of every data table of ``db``."""
    with translated("cannot count the rows of the database"):
        return {
            t: int(db.peewee.execute_sql(f"SELECT COUNT(*) FROM {tbl.quote(t)}").fetchone()[0])
            for t in tbl.data_tables(db.peewee)
        }


def check_schema(manifest: Manifest) -> list[str]:
    """The migrations this fsm has that the backup lacks; refuses a backup of a newer schema."""
    ours = [m.__name__ for m in migrations.MIGRATIONS]
    unknown = [s for s in manifest.schema if s not in ours]
    if unknown:
        raise BackupError(
            f"the backup's schema has migrations this fsm does not know: {', '.join(unknown)}",
            hint=f"it was written by fsm {manifest.fsm_version}; restore it with that version or a newer one",
        )
    return [s for s in ours if s not in manifest.schema]


def _decoder(entry: TableEntry, target: dict[str, ColumnKind]) -> Any:
    """A function turning one backup line into the row to insert."""
    missing = [c for c in entry.columns if c not in target]
    if missing:
        raise BackupError(
            f"table {entry.name!r} of the backup has columns the restored schema lacks: {', '.join(missing)}",
            hint="restore it with the fsm version that wrote it",
        )
    steps: list[tuple[int, Any]] = []
    for i, (col, kind) in enumerate(zip(entry.columns, entry.kinds, strict=True)):
        if kind == "bytes":
            steps.append((i, lambda v: base64.b64decode(v) if isinstance(v, str) else v))
        elif target[col] == "bool":
            steps.append((i, lambda v: bool(v) if isinstance(v, int) else v))
    decode = msgspec.json.Decoder(list[Any]).decode

    def row(line: bytes) -> list[Any]:
        values = decode(line)
        if len(values) != len(entry.columns):
            raise BackupCorrupt(
                f"a row of table {entry.name!r} has {len(values)} values for {len(entry.columns)} columns"
            )
        for i, fn in steps:
            if values[i] is not None:
                values[i] = fn(values[i])
        return values

    return row


def _load_table(db: Database, reader: ArchiveReader, entry: TableEntry) -> None:
    target = dict(tbl.columns(db.peewee, entry.name))
    if not target:
        raise BackupError(
            f"the backup holds table {entry.name!r}, which the restored schema lacks",
            hint="restore it with the fsm version that wrote it",
        )
    row = _decoder(entry, target)
    cols = ", ".join(tbl.quote(c) for c in entry.columns)
    conn = db.peewee.connection()
    if db.kind == "postgresql":
        with conn.cursor() as cur, cur.copy(f"COPY {tbl.quote(entry.name)} ({cols}) FROM STDIN") as copy:
            for line in reader.lines(entry):
                copy.write_row(row(line))
        return
    sql = f"INSERT INTO {tbl.quote(entry.name)} ({cols}) VALUES ({', '.join('?' * len(entry.columns))})"
    batch: list[list[Any]] = []
    for line in reader.lines(entry):
        batch.append(row(line))
        if len(batch) >= BATCH:
            conn.executemany(sql, batch)
            batch.clear()
    if batch:
        conn.executemany(sql, batch)


def _drop_all(db: Database) -> None:
    pw = db.peewee
    for table in reversed(tbl.data_tables(pw)):  # children first: SQLite checks foreign keys on drop
        pw.execute_sql(f"DROP TABLE {tbl.quote(table)}" + (" CASCADE" if db.kind == "postgresql" else ""))
    for table in tbl.SKIPPED & set(pw.get_tables()):
        pw.execute_sql(f"DROP TABLE {tbl.quote(table)}")


def reset_sequences(db: Database) -> None:
    """PostgreSQL: each id sequence continues after the largest id loaded (SQLite needs nothing)."""
    if db.kind != "postgresql":
        return
    cur = db.peewee.execute_sql(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND (column_default LIKE 'nextval(%%' OR is_identity = 'YES')"
    )
    for table, column in cur.fetchall():
        db.peewee.execute_sql(
            f"SELECT setval(pg_get_serial_sequence(%s, %s), "
            f"COALESCE((SELECT MAX({tbl.quote(column)}) FROM {tbl.quote(table)}), 0) + 1, false)",
            (tbl.quote(table), column),
        )


def _check(db: Database, manifest: Manifest) -> dict[str, int]:
    counts = row_counts(db)
    for t in manifest.tables:
        if counts.get(t.name) != t.rows:
            raise BackupError(
                f"after the restore table {t.name!r} holds {counts.get(t.name)} rows, the backup {t.rows}",
                hint="nothing was changed; report this as a bug",
            )
    if db.kind == "sqlite":
        bad = db.peewee.execute_sql("PRAGMA foreign_key_check").fetchall()
        if bad:
            raise BackupError(
                f"after the restore {len(bad)} rows point at rows that are not there "
                f"(first: table {bad[0][0]!r}, row {bad[0][1]})",
                hint="nothing was changed; take another backup file",
            )
        ok = db.peewee.execute_sql("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError(
                f"SQLite's integrity check failed after the restore: {ok}",
                hint="nothing was changed; check the disk, then try again",
            )
    return counts


def restore(path: Path, db: Database, *, force: bool = False) -> RestoreResult:
    """Restore the backup ``path`` into ``db`` (opened without migrating); see the module docstring."""
    start = time.monotonic()
    with ArchiveReader(path) as reader:
        reader.check()
        manifest = reader.manifest
        lacking = check_schema(manifest)
        before = row_counts(db)
        holding = {t: n for t, n in before.items() if n}
        if holding and not force:
            shown = ", ".join(f"{t} ({n})" for t, n in sorted(holding.items(), key=lambda kv: -kv[1])[:4])
            raise TargetNotEmpty(
                f"the target database holds data: {shown}{' ...' if len(holding) > 4 else ''}"
            )
        result = RestoreResult(manifest=manifest, target=db.kind, replaced=sum(holding.values()))
        with translated(f"cannot restore {str(path)!r}"), db.atomic():
            _drop_all(db)
            migrations.migrate(db, only=set(manifest.schema))
            for entry in manifest.tables:
                _load_table(db, reader, entry)
            reset_sequences(db)
            result.migrated = migrations.migrate(db)
            if result.migrated != lacking:
                raise BackupError(
                    f"the migrations after the restore were {result.migrated}, not {lacking}",
                    hint="nothing was changed; report this as a bug",
                )
            result.rows = _check(db, manifest)
    result.seconds = time.monotonic() - start
    return result


def verify(path: Path) -> RestoreResult:
    """Restore ``path`` into a scratch SQLite database and check it; the live database is not touched."""
    with (
        tempfile.TemporaryDirectory(prefix="fsm-verify-") as scratch,
        open_database("", data_dir=Path(scratch), migrate=False) as db,
    ):
        return restore(path, db)


def read_key(path: Path, passphrase: str) -> bytes:
    """The server key file kept (encrypted) in the backup ``path``; a wrong passphrase is an error."""
    with ArchiveReader(path) as reader:
        entry = reader.manifest.keys
        if entry is None:
            raise BackupError(
                f"{str(path)!r} holds no server key (it was taken without --with-keys)",
                hint="restore the key from where you keep it, or leave out --with-keys",
            )
        return unwrap_key(entry, reader.read(entry.member), passphrase)


def write_key(data: bytes, dest: Path, *, force: bool = False) -> Path:
    """Write the key file ``data`` to ``dest``; an existing different key is replaced only with ``force``."""
    if dest.exists():
        if dest.read_bytes() == data:
            return dest
        if not force:
            raise BackupError(
                f"{str(dest)!r} holds another server key; refusing to replace it",
                hint="add --force to replace it (reports sealed to it can then no longer be "
                "opened: keep a copy)",
            )
    try:
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private_file(dest, data)
        load_encryption_key(dest)
    except (OSError, FsmError) as exc:
        raise BackupError(
            f"cannot write the server key to {str(dest)!r}: {getattr(exc, 'message', exc)}",
            hint="check [keys] encryption_key and the permissions of its directory",
        ) from exc
    return dest


def restore_key(path: Path, passphrase: str, dest: Path, *, force: bool = False) -> Path:
    """Write the server key kept in the backup ``path`` to ``dest``."""
    return write_key(read_key(path, passphrase), dest, force=force)


@contextlib.contextmanager
def opened(path: Path) -> Iterator[Manifest]:
    """The manifest of ``path``, checked (for `backup verify` and status)."""
    with ArchiveReader(path) as reader:
        reader.check()
        yield reader.manifest


__all__ = [
    "RestoreResult",
    "check_schema",
    "opened",
    "read_key",
    "reset_sequences",
    "restore",
    "restore_key",
    "row_counts",
    "verify",
    "write_key",
]
