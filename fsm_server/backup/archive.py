"""The backup file: a ZIP archive of one JSON-lines member per table and a manifest, written so that a
kill at any moment leaves no file that looks complete but is not.

    fsm-backup-20250301T030000Z.zip         the archive (only whole, fsynced files get this name)
    fsm-backup-20250301T030000Z.zip.sha256  its sha256, in `sha256sum -c` format (off-site copies)
    .fsm-backup-....zip.partial             being written; never read, removed by the next backup

Inside: ``manifest.json`` (format, time, schema = the migrations applied, per table its columns,
row count and the sha256 of its member) and ``tables/NNN-<table>.jsonl``, one JSON array per row in
the manifest's column order, tables in an order where every row's foreign keys point at rows
loaded before it. ``keys/server.key.enc`` only with ``--with-keys`` (``keywrap``).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

import msgspec

from fsm_protocol.files import fsync_dir

from ..errors import BackupCorrupt, BackupError

FORMAT = "fsm-backup"
VERSION = 1
MANIFEST = "manifest.json"
NAME_RE = re.compile(r"^fsm-backup-(\d{8}T\d{6}Z)(?:-(\d+))?\.zip$")
PARTIAL_SUFFIX = ".partial"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024

#: How a column's values are carried: "bytes" as base64, "datetime" as ``YYYY-MM-DD HH:MM:SS[.ffffff]``
#: (what peewee stores in SQLite; PostgreSQL reads it too), "bool" as true/false, "value" as JSON has it.
ColumnKind = Literal["value", "bytes", "datetime", "bool"]


class TableEntry(msgspec.Struct, kw_only=True):
    name: str
    member: str
    columns: list[str]
    kinds: list[ColumnKind]
    rows: int
    sha256: str  # of the member's uncompressed bytes


class KeyEntry(msgspec.Struct, kw_only=True):
    """The server key, encrypted (``keywrap``); the parameters needed to open it."""

    member: str
    file_name: str
    kdf: str
    n: int
    r: int
    p: int
    salt: bytes
    nonce: bytes
    cipher: str
    sha256: str  # of the encrypted member


class Manifest(msgspec.Struct, kw_only=True):
    format: str
    version: int
    created_at: datetime
    fsm_version: str
    source: str  # sqlite | postgresql
    schema: list[str]  # the migrations applied, in order
    tables: list[TableEntry]
    keys: KeyEntry | None = None
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)


def backup_name(at: datetime, directory: Path) -> Path:
    """A new file name in ``directory`` for a backup taken at ``at`` (suffixed if the second is taken)."""
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"fsm-backup-{stamp}.zip"
    n = 1
    while path.exists() or path.with_name(f".{path.name}{PARTIAL_SUFFIX}").exists():
        n += 1
        path = directory / f"fsm-backup-{stamp}-{n}.zip"
    return path


def taken_at(path: Path) -> datetime | None:
    """When the backup named ``path`` was taken, from its name; None for another file."""
    m = NAME_RE.match(path.name)
    return datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) if m else None


def list_backups(directory: Path) -> list[Path]:
    """Complete backups in ``directory``, oldest first (partial files are never listed)."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if NAME_RE.match(p.name) and p.is_file()]
    return sorted(found, key=lambda p: (taken_at(p) or datetime.min.replace(tzinfo=UTC), p.name))


class HashingWriter:
    """Counts and hashes what passes into a member."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.out.write(data)


class ArchiveWriter:
    """Writes the archive under a partial name; ``commit`` fsyncs and renames it into place.

    >>> # with ArchiveWriter(final) as w: ...members...; w.commit(manifest)
    Leaving the block without ``commit`` removes the partial file.
    """

    def __init__(self, final: Path, *, compresslevel: int = 1) -> None:
        self.final = final
        self.partial = final.with_name(f".{final.name}{PARTIAL_SUFFIX}")
        try:
            self._file = open(self.partial, "xb")  # noqa: SIM115 - closed in commit/abort
            os.fchmod(self._file.fileno(), 0o600)  # a database copy is as private as the database
        except OSError as exc:
            raise BackupError(
                f"cannot create {str(self.partial)!r}: {exc.strerror or exc}",
                hint="choose a backup directory this user can write ([backup] dir or --to)",
            ) from exc
        self.zip = zipfile.ZipFile(
            self._file, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel, allowZip64=True
        )
        self.committed = False
        self.sha256 = ""
        self.size = 0

    @contextlib.contextmanager
    def member(self, name: str) -> Iterator[HashingWriter]:
        with self.zip.open(name, "w", force_zip64=True) as out:
            yield HashingWriter(out)

    def commit(self, manifest: Manifest) -> Path:
        """Write the manifest, fsync, rename to the final name, write the .sha256 beside it."""
        self.zip.writestr(MANIFEST, msgspec.json.format(msgspec.json.encode(manifest), indent=1))
        self.zip.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        digest = hashlib.sha256()
        with open(self.partial, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        self.sha256 = digest.hexdigest()
        self.size = self.partial.stat().st_size
        # the rename is the moment the backup exists: before it only a .partial name, after it
        # every byte is on disk (fsync above) and the directory entry too (fsync_dir below)
        os.replace(self.partial, self.final)
        fsync_dir(self.final.parent)
        side = self.final.with_name(self.final.name + ".sha256")
        tmp = side.with_name(f".{side.name}{PARTIAL_SUFFIX}")
        with open(tmp, "w") as f:
            f.write(f"{self.sha256}  {self.final.name}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, side)
        fsync_dir(self.final.parent)
        self.committed = True
        return self.final

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self.zip.close()
        with contextlib.suppress(Exception):
            self._file.close()
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> ArchiveWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.abort()


class ArchiveReader:
    """Opens a backup file and checks it against its manifest before anything is read from it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path, "r")
        except FileNotFoundError as exc:
            raise BackupError(
                f"no backup file {str(path)!r}", hint="name a file `fsm-server backup status` lists"
            ) from exc
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BackupCorrupt(
                f"{str(path)!r} is not a complete fsm backup (not a readable ZIP archive: {exc})"
            ) from exc
        self.manifest = self._manifest()

    def _manifest(self) -> Manifest:
        try:
            info = self.zip.getinfo(MANIFEST)
        except KeyError:
            raise BackupCorrupt(f"{str(self.path)!r} has no {MANIFEST}: it is no fsm backup") from None
        if info.file_size > MAX_MANIFEST_BYTES:
            raise BackupCorrupt(f"{str(self.path)!r}: {MANIFEST} is {info.file_size} bytes, too large")
        try:
            m = msgspec.json.decode(self.zip.read(MANIFEST), type=Manifest)
        except (msgspec.ValidationError, msgspec.DecodeError, zipfile.BadZipFile, OSError) as exc:
            raise BackupCorrupt(f"{str(self.path)!r}: {MANIFEST} cannot be read: {exc}") from exc
        if m.format != FORMAT or m.version > VERSION:
            raise BackupCorrupt(
                f"{str(self.path)!r} is {m.format!r} version {m.version}; this fsm reads "
                f"{FORMAT!r} up to version {VERSION}",
                hint="restore it with the fsm version that wrote it (or a newer one)",
            )
        return m

    def check(self) -> None:
        """Every member's sha256 and row count against the manifest, and the .sha256 beside the file."""
        side = self.path.with_name(self.path.name + ".sha256")
        if side.is_file():
            want = side.read_text().split()[0] if side.read_text().split() else ""
            digest = hashlib.sha256()
            with open(self.path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            if digest.hexdigest() != want:
                raise BackupCorrupt(
                    f"{str(self.path)!r} does not match {side.name}: the file changed after it was written"
                )
        for t in self.manifest.tables:
            digest, rows = hashlib.sha256(), 0
            for line in self.lines(t):
                digest.update(line)
                rows += 1
            if digest.hexdigest() != t.sha256 or rows != t.rows:
                raise BackupCorrupt(
                    f"{str(self.path)!r}: table {t.name!r} holds {rows} rows with sha256 "
                    f"{digest.hexdigest()[:16]}..., the manifest says {t.rows} rows, "
                    f"{t.sha256[:16]}..."
                )
        if self.manifest.keys is not None:
            k = self.manifest.keys
            if hashlib.sha256(self.read(k.member)).hexdigest() != k.sha256:
                raise BackupCorrupt(f"{str(self.path)!r}: the encrypted key does not match the manifest")

    def read(self, member: str) -> bytes:
        try:
            return self.zip.read(member)
        except (KeyError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BackupCorrupt(f"{str(self.path)!r}: member {member!r} cannot be read: {exc}") from exc

    def lines(self, table: TableEntry) -> Iterator[bytes]:
        """The member's lines (each ending in a newline) as written."""
        try:
            with self.zip.open(table.member) as f:
                yield from f
        except (KeyError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BackupCorrupt(f"{str(self.path)!r}: table {table.name!r} cannot be read: {exc}") from exc

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> ArchiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "FORMAT",
    "MANIFEST",
    "NAME_RE",
    "PARTIAL_SUFFIX",
    "VERSION",
    "ArchiveReader",
    "ArchiveWriter",
    "ColumnKind",
    "KeyEntry",
    "Manifest",
    "TableEntry",
    "backup_name",
    "list_backups",
    "taken_at",
]
