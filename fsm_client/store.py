"""The client's local SQLite store: devices seen, readings, alert state, the outbox, schedule state.

One file in the data dir (``client.sqlite``), WAL mode, ``synchronous=FULL`` so a committed
transaction survives a power cut. Nothing is held only in memory between "read" and
"committed": a reading is stored before anything is built from it, and a report's sequence
number is taken in the SAME transaction that stores its sealed envelope and marks the
readings it carries. A crash therefore leaves either nothing or the whole envelope, never a
number without an envelope (a hole) nor a reading in two envelopes.

Migrations are named functions applied in order, each in its own transaction and recorded
in ``migrations`` (the sqlite-utils pattern).

>>> import tempfile, pathlib
>>> store = Store.open(pathlib.Path(tempfile.mkdtemp()) / "client.sqlite")
>>> with store.atomic():
...     store.next_seq(), store.next_seq()
(1, 2)
>>> store.close()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

import msgspec

from fsm_protocol.identity import device_identity
from fsm_protocol.schema import Device

from .errors import StoreError, StoreFull

STORE_FILE = "client.sqlite"

ReadingKind = Literal["scan", "poll"]

_device_decoder = msgspec.json.Decoder(Device)
_encoder = msgspec.json.Encoder()


def _ts(when: datetime) -> str:
    """Timestamps are stored as UTC ISO 8601 text, which sorts in time order."""
    if when.tzinfo is None:
        raise StoreError(
            f"timestamp {when.isoformat()!r} has no time zone",
            hint="this is a bug in fsm: every time handed to the store must be aware",
        )
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# --- migrations -------------------------------------------------------------------------------


class MigrationDb(Protocol):
    """What a migration step runs its statements on: the store's connection inside the
    migration's transaction (``Store.migrate`` passes one whose ``executescript`` keeps it open)."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor: ...

    def executescript(self, script: str) -> None: ...


def _m001_initial(db: MigrationDb) -> None:
    db.executescript("""
        CREATE TABLE devices (
            ip TEXT PRIMARY KEY,
            serial TEXT, manufacturer TEXT, model TEXT, pmd TEXT,
            first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
            last_reachability TEXT NOT NULL,
            misses INTEGER NOT NULL DEFAULT 0   -- consecutive unreachable reads
        );
        CREATE TABLE readings (
            id INTEGER PRIMARY KEY,
            ip TEXT NOT NULL,
            serial TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('scan', 'poll')),
            observed_at TEXT NOT NULL,
            reachability TEXT NOT NULL,
            device BLOB NOT NULL,               -- fsm_protocol.schema.Device as JSON
            reported_seq INTEGER                -- the envelope that carries it; NULL = not yet
        );
        CREATE INDEX readings_unreported ON readings (kind, id) WHERE reported_seq IS NULL;
        CREATE INDEX readings_seq ON readings (reported_seq);
        CREATE INDEX readings_ip_time ON readings (ip, observed_at);
        CREATE TABLE alert_state (
            ip TEXT NOT NULL,
            condition TEXT NOT NULL,
            active INTEGER NOT NULL,
            since TEXT NOT NULL,                -- when it became active (or cleared)
            last_seen TEXT NOT NULL,
            raised_seq INTEGER,
            cleared_seq INTEGER,
            PRIMARY KEY (ip, condition)
        );
        CREATE TABLE sequence (id INTEGER PRIMARY KEY CHECK (id = 1), last INTEGER NOT NULL);
        INSERT INTO sequence (id, last) VALUES (1, 0);
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            created_at TEXT NOT NULL,
            chunk_count INTEGER NOT NULL,
            plaintext BLOB,                     -- the Report JSON exactly as sealed
            sent_at TEXT,                       -- last chunk accepted; NULL = still to send
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            last_error TEXT
        );
        CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
        CREATE TABLE outbox_chunks (
            seq INTEGER NOT NULL REFERENCES outbox (seq),
            chunk_index INTEGER NOT NULL,
            data BLOB NOT NULL,
            sent_at TEXT,
            answer TEXT,                        -- the relay's answer or the dropped file's name
            PRIMARY KEY (seq, chunk_index)
        );
        CREATE TABLE schedule_state (
            job TEXT PRIMARY KEY,
            last_due TEXT NOT NULL,             -- the due time last handled
            last_run TEXT                       -- when it last actually ran
        );
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """)


def _m002_discovered_devices(db: MigrationDb) -> None:
    # Devices found by a range sweep are read at later scans; ones that came from a single
    # configured target are not (removing the target from the config stops reading it).
    db.execute("ALTER TABLE devices ADD COLUMN discovered INTEGER NOT NULL DEFAULT 0")


def _m003_devices_by_serial(db: MigrationDb) -> None:
    # Every reading looks for the same serial at another address (Store.follow_move).
    db.execute("CREATE INDEX devices_serial ON devices (upper(trim(serial)))")


MIGRATIONS: tuple[tuple[str, Callable[[MigrationDb], None]], ...] = (
    ("001_initial", _m001_initial),
    ("002_discovered_devices", _m002_discovered_devices),
    ("003_devices_by_serial", _m003_devices_by_serial),
)


# --- rows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredReading:
    id: int
    kind: ReadingKind
    device: Device
    reported_seq: int | None


@dataclass(frozen=True)
class KnownDevice:
    ip: str
    serial: str | None
    manufacturer: str | None
    model: str | None
    first_seen: datetime
    last_seen: datetime
    last_reachability: str
    misses: int


@dataclass(frozen=True)
class OutboxEntry:
    seq: int
    kind: str
    created_at: datetime
    chunk_count: int
    sent_at: datetime | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    chunks_sent: int
    retained: bool  # the sealed chunks are still kept (not purged by retention)


@dataclass(frozen=True)
class PendingChunk:
    seq: int
    chunk_index: int
    chunk_count: int
    kind: str
    data: bytes


@dataclass(frozen=True)
class AlertStateRow:
    ip: str
    condition: str
    active: bool
    since: datetime
    last_seen: datetime
    raised_seq: int | None
    cleared_seq: int | None


# --- the store --------------------------------------------------------------------------------


class Store:
    """The local store. Use ``atomic()`` for every multi-statement change; nested calls are
    savepoints. One Store is used from one thread at a time (the daemon's event loop)."""

    def __init__(self, db: sqlite3.Connection, path: Path, *, readonly: bool = False) -> None:
        self._db = db
        self.path = path
        self.readonly = readonly
        self._depth = 0
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating and migrating as needed) the store at ``path``."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
        except (sqlite3.Error, OSError) as exc:
            why = _unwritable(path.parent)
            if why:
                raise StoreError(
                    f"cannot open the local store {str(path)!r}: the data dir {why}",
                    hint="give it write access (remount it read-write) or choose a writable "
                    "--data-dir; `fsm-client status` and `outbox list` work read-only",
                ) from exc
            raise StoreError(
                f"cannot open the local store {str(path)!r}: {exc}",
                hint="check that the data dir exists and is writable by this user",
            ) from exc
        store = cls(db, path)
        store.migrate()
        return store

    @classmethod
    def open_readonly(cls, path: Path) -> Store:
        """Open an existing store only to read it: nothing is created, migrated or written, so
        read-only commands (`status`, `outbox list`) work on a read-only data dir."""
        path = Path(path)
        if not path.is_file():
            raise StoreError(
                f"there is no local store at {str(path)!r}",
                hint="`fsm-client run` or `send` creates it; check --data-dir and [client] data_dir",
            )
        try:
            db = _connect_readonly(path)
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(
                f"cannot read the local store {str(path)!r}: {exc}",
                hint="check that this user may read the data dir and the files in it",
            ) from exc
        store = cls(db, path, readonly=True)
        missing = [name for name, _ in MIGRATIONS if name not in store._known_migrations()]
        if missing:
            store.close()
            raise StoreError(
                f"the local store {str(path)!r} was made by an older fsm-client and is not "
                f"migrated yet ({', '.join(missing)})",
                hint="run `fsm-client run --once` once with write access to the data dir",
            )
        return store

    @classmethod
    def in_data_dir(cls, data_dir: Path, *, readonly: bool = False) -> Store:
        """The store in ``data_dir``; ``readonly`` for commands that only read (see open_readonly)."""
        path = Path(data_dir) / STORE_FILE
        return cls.open_readonly(path) if readonly else cls.open(path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions --

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A transaction (BEGIN IMMEDIATE: the write lock is taken up front, so two processes
        never both read the same sequence number); nested calls become savepoints."""
        if self.readonly:
            raise StoreError(
                f"the local store {str(self.path)!r} was opened read-only",
                hint="this is a bug in fsm: a read-only command tried to write",
            )
        with self._lock:
            depth = self._depth
            try:
                if depth == 0:
                    self._db.execute("BEGIN IMMEDIATE")
                else:
                    self._db.execute(f"SAVEPOINT sp{depth}")
            except sqlite3.OperationalError as exc:
                raise StoreError(
                    f"the local store {str(self.path)!r} is busy: {exc}",
                    hint="another fsm-client process holds it; stop it or wait",
                ) from exc
            self._depth += 1
            try:
                yield
            except BaseException as exc:
                self._depth -= 1
                self._rollback(depth)
                if isinstance(exc, sqlite3.Error) and self._full(exc):
                    raise self.full_error() from exc
                raise
            else:
                self._depth -= 1
                try:
                    self._db.execute("COMMIT" if depth == 0 else f"RELEASE sp{depth}")
                except sqlite3.Error as exc:
                    self._rollback(depth)
                    if self._full(exc):
                        raise self.full_error() from exc
                    raise

    def _rollback(self, depth: int) -> None:
        # On a full disk SQLite may have rolled the transaction back already: nothing left to undo.
        with contextlib.suppress(sqlite3.Error):
            if depth == 0:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            else:
                self._db.execute(f"ROLLBACK TO sp{depth}")
                self._db.execute(f"RELEASE sp{depth}")

    def _full(self, exc: sqlite3.Error) -> bool:
        """SQLITE_FULL, or an I/O error while (next to) nothing is free on the data disk."""
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        return code == sqlite3.SQLITE_FULL or (code == sqlite3.SQLITE_IOERR and self.free_bytes() < 64 * 1024)

    def free_bytes(self) -> int:
        """Bytes free for this user on the disk that holds the store."""
        try:
            return shutil.disk_usage(self.path.parent).free
        except OSError:
            return 0

    def full_error(self) -> StoreFull:
        where = str(self.path.parent)
        return StoreFull(f"the data disk is full ({self.free_bytes()} bytes free at {where!r})")

    def probe_write(self) -> None:
        """One small write; raises StoreFull while the disk is still full."""
        self.set_meta("last_write_probe", _ts(datetime.now(UTC)))

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def _require_transaction(self, what: str) -> None:
        if not self.in_transaction:
            raise StoreError(
                f"{what} must run inside Store.atomic()",
                hint="this is a bug in fsm: the caller forgot the transaction",
            )

    # -- migrations --

    def applied_migrations(self) -> list[str]:
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        return [r[0] for r in self._db.execute("SELECT name FROM migrations ORDER BY name")]

    def _known_migrations(self) -> set[str]:
        """The migrations recorded, without creating the table (a read-only store)."""
        try:
            done = {r[0] for r in self._db.execute("SELECT name FROM migrations")}
        except sqlite3.OperationalError:  # no such table: nothing applied yet
            return set()
        self._refuse_newer(done)
        return done

    def _refuse_newer(self, done: set[str]) -> None:
        unknown = done - {name for name, _ in MIGRATIONS}
        if unknown:
            raise StoreError(
                f"the local store {str(self.path)!r} was migrated by a newer fsm-client "
                f"({', '.join(sorted(unknown))})",
                hint="run the fsm-client version that created it, or move the data dir aside",
            )

    def migrate(self) -> list[str]:
        """Apply every migration not yet recorded, each in its own transaction."""
        done = set(self.applied_migrations())
        applied = []
        self._refuse_newer(done)
        for name, step in MIGRATIONS:
            if name in done:
                continue
            with self.atomic():
                # executescript would COMMIT our transaction: run the statements one by one
                step(_NoScript(self._db))
                self._db.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (?, ?)", (name, _ts(datetime.now(UTC)))
                )
            applied.append(name)
        return applied

    # -- devices and readings --

    def add_reading(self, device: Device, *, kind: ReadingKind) -> int:
        """Store one reading and update the device it came from; returns the reading id."""
        with self.atomic():
            cur = self._db.execute(
                "INSERT INTO readings (ip, serial, kind, observed_at, reachability, device)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    device.ip,
                    device.serial,
                    kind,
                    _ts(device.observed_at),
                    device.reachability,
                    _encoder.encode(device),
                ),
            )
            self.note_seen(device)
            return int(cur.lastrowid or 0)

    def note_seen(self, device: Device) -> None:
        """Update the device row from a reading (identity, last seen, unanswered reads in a row)
        without keeping the reading itself (a status poll that changed nothing)."""
        at = _ts(device.observed_at)
        reachable = device.reachability != "unreachable"
        self._db.execute(
            """INSERT INTO devices (ip, serial, manufacturer, model, pmd, first_seen, last_seen,
                                    last_reachability, misses)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (ip) DO UPDATE SET
                 serial = coalesce(excluded.serial, serial),
                 manufacturer = coalesce(excluded.manufacturer, manufacturer),
                 model = coalesce(excluded.model, model),
                 pmd = coalesce(excluded.pmd, pmd),
                 last_seen = CASE WHEN ? THEN excluded.last_seen ELSE last_seen END,
                 last_reachability = excluded.last_reachability,
                 misses = CASE WHEN ? THEN 0 ELSE misses + 1 END""",
            (
                device.ip,
                device.serial,
                device.manufacturer,
                device.model,
                device.pmd,
                at,
                at,
                device.reachability,
                0 if reachable else 1,
                reachable,
                reachable,
            ),
        )
        if reachable:
            self.follow_move(device)

    def follow_move(self, device: Device) -> list[str]:
        """A device answering at a new address with the serial of one that stopped answering at
        another has moved (DHCP): the old address's row goes, its alert state and discovery mark
        come along, so the old address is no longer polled. Returns the old addresses.

        Devices sharing a serial that both answer (simulators, cloned firmware) stay apart."""
        self._require_transaction("follow_move")
        if device.reachability == "unreachable":
            return []
        key, strong = device_identity(
            client="", manufacturer=device.manufacturer, serial=device.serial, mac=None, ip=device.ip
        )
        if not strong:
            return []
        sn = (device.serial or "").strip().upper()
        rows = self._db.execute(
            "SELECT ip, manufacturer, serial FROM devices"
            " WHERE ip != ? AND upper(trim(serial)) = ? AND misses > 0",
            (device.ip, sn),
        )
        moved = [
            ip
            for ip, manufacturer, serial in rows
            if device_identity(
                client="", manufacturer=manufacturer or device.manufacturer, serial=serial, mac=None, ip=ip
            )[0]
            == key
        ]
        for old in moved:
            # a condition already active at the new address keeps its own row
            self._db.execute("UPDATE OR IGNORE alert_state SET ip = ? WHERE ip = ?", (device.ip, old))
            self._db.execute("DELETE FROM alert_state WHERE ip = ?", (old,))
            if self.device(device.ip) is None:
                self._db.execute("UPDATE devices SET ip = ? WHERE ip = ?", (device.ip, old))
                continue
            self._db.execute(
                "UPDATE devices SET"
                " first_seen = min(first_seen, (SELECT first_seen FROM devices WHERE ip = ?)),"
                " discovered = max(discovered, (SELECT discovered FROM devices WHERE ip = ?)) WHERE ip = ?",
                (old, old, device.ip),
            )
            self._db.execute("DELETE FROM devices WHERE ip = ?", (old,))
        return moved

    def mark_discovered(self, ip: str) -> None:
        """Remember that a range sweep found ``ip``: later scans and polls read it."""
        with self.atomic():
            self._db.execute("UPDATE devices SET discovered = 1 WHERE ip = ?", (ip,))

    def devices(self, *, discovered: bool = False) -> list[KnownDevice]:
        """Every device seen, or only those found by discovery."""
        rows = self._db.execute(
            "SELECT ip, serial, manufacturer, model, first_seen, last_seen, last_reachability, misses"
            " FROM devices" + (" WHERE discovered = 1" if discovered else "") + " ORDER BY ip"
        )
        return [
            KnownDevice(r[0], r[1], r[2], r[3], _dt(r[4]), _dt(r[5]), r[6], r[7])  # type: ignore[arg-type]
            for r in rows
        ]

    def device(self, ip: str) -> KnownDevice | None:
        r = self._db.execute(
            "SELECT ip, serial, manufacturer, model, first_seen, last_seen, last_reachability, misses"
            " FROM devices WHERE ip = ?",
            (ip,),
        ).fetchone()
        return KnownDevice(r[0], r[1], r[2], r[3], _dt(r[4]), _dt(r[5]), r[6], r[7]) if r else None  # type: ignore[arg-type]

    def unreported_readings(
        self, *, kinds: Sequence[ReadingKind] = ("scan", "poll"), limit: int | None = None
    ) -> list[StoredReading]:
        marks = ",".join("?" * len(kinds))
        sql = (
            f"SELECT id, kind, device, reported_seq FROM readings"
            f" WHERE reported_seq IS NULL AND kind IN ({marks}) ORDER BY id"
        )
        params: list[object] = list(kinds)
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [self._reading(r) for r in self._db.execute(sql, params)]

    def readings(self, *, seq: int | None = None) -> list[StoredReading]:
        """All readings, or those carried by envelope ``seq``."""
        if seq is None:
            rows = self._db.execute("SELECT id, kind, device, reported_seq FROM readings ORDER BY id")
        else:
            rows = self._db.execute(
                "SELECT id, kind, device, reported_seq FROM readings WHERE reported_seq = ? ORDER BY id",
                (seq,),
            )
        return [self._reading(r) for r in rows]

    def readings_by_id(self, ids: Sequence[int]) -> list[StoredReading]:
        """The readings with these ids, oldest first."""
        marks = ",".join("?" * len(ids))
        return [
            self._reading(r)
            for r in self._db.execute(
                f"SELECT id, kind, device, reported_seq FROM readings WHERE id IN ({marks}) ORDER BY id",
                list(ids),
            )
        ]

    @staticmethod
    def _reading(r: tuple[int, str, bytes, int | None]) -> StoredReading:
        return StoredReading(
            id=r[0],
            kind=r[1],  # type: ignore[arg-type]
            device=_device_decoder.decode(r[2]),
            reported_seq=r[3],
        )

    def mark_reported(self, reading_ids: Sequence[int], seq: int) -> None:
        """Record that envelope ``seq`` carries these readings (inside the enqueue transaction)."""
        self._require_transaction("mark_reported")
        for rid in reading_ids:
            cur = self._db.execute(
                "UPDATE readings SET reported_seq = ? WHERE id = ? AND reported_seq IS NULL", (seq, rid)
            )
            if cur.rowcount != 1:
                raise StoreError(
                    f"reading {rid} is unknown or already in an envelope",
                    hint="this is a bug in fsm: a reading must go into exactly one envelope",
                )

    # -- alert state --

    def alert_states(self, ip: str | None = None, *, active_only: bool = False) -> list[AlertStateRow]:
        sql = "SELECT ip, condition, active, since, last_seen, raised_seq, cleared_seq FROM alert_state"
        where, params = [], []
        if ip is not None:
            where.append("ip = ?")
            params.append(ip)
        if active_only:
            where.append("active = 1")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ip, condition"
        return [
            AlertStateRow(r[0], r[1], bool(r[2]), _dt(r[3]), _dt(r[4]), r[5], r[6])  # type: ignore[arg-type]
            for r in self._db.execute(sql, params)
        ]

    def set_alert_state(
        self, ip: str, condition: str, *, active: bool, at: datetime, seq: int | None = None
    ) -> None:
        """Record a condition raised (``active``) or cleared, with the envelope that says so."""
        self._require_transaction("set_alert_state")
        if active:
            self._db.execute(
                """INSERT INTO alert_state (ip, condition, active, since, last_seen, raised_seq, cleared_seq)
                   VALUES (?, ?, 1, ?, ?, ?, NULL)
                   ON CONFLICT (ip, condition) DO UPDATE SET active = 1, since = excluded.since,
                     last_seen = excluded.last_seen, raised_seq = excluded.raised_seq, cleared_seq = NULL""",
                (ip, condition, _ts(at), _ts(at), seq),
            )
        else:
            self._db.execute(
                "UPDATE alert_state SET active = 0, since = ?, last_seen = ?, cleared_seq = ?"
                " WHERE ip = ? AND condition = ?",
                (_ts(at), _ts(at), seq, ip, condition),
            )

    def touch_alerts(self, ip: str, conditions: Sequence[str], at: datetime) -> None:
        """Note that still-active conditions were seen again (no report is sent for that)."""
        for c in conditions:
            self._db.execute(
                "UPDATE alert_state SET last_seen = ? WHERE ip = ? AND condition = ?", (_ts(at), ip, c)
            )

    # -- sequence numbers and the outbox --

    def next_seq(self) -> int:
        """Take the next sequence number; only inside the transaction that stores its envelope."""
        self._require_transaction("next_seq")
        self._db.execute("UPDATE sequence SET last = last + 1 WHERE id = 1")
        return int(self._db.execute("SELECT last FROM sequence WHERE id = 1").fetchone()[0])

    def last_seq(self) -> int:
        return int(self._db.execute("SELECT last FROM sequence WHERE id = 1").fetchone()[0])

    def skip_seq_to(self, last: int) -> None:
        """Make the next number at least ``last + 1`` (never lowers it)."""
        self._require_transaction("skip_seq_to")
        self._db.execute("UPDATE sequence SET last = max(last, ?) WHERE id = 1", (last,))

    def renumber(self, old: int, new: int, *, plaintext: bytes, chunks: Sequence[bytes]) -> None:
        """Replace report ``old`` by the same report sealed again as ``new`` (``new`` from next_seq),
        moving the readings and alert marks it carries; the new one is still to send."""
        self._require_transaction("renumber")
        row = self._db.execute("SELECT kind, created_at FROM outbox WHERE seq = ?", (old,)).fetchone()
        if row is None:
            raise StoreError(
                f"there is no report {old} in the outbox",
                hint="`fsm-client outbox list` shows the numbers that exist",
            )
        self.add_envelope(
            new,
            kind=row[0],
            created_at=_dt(row[1]),  # type: ignore[arg-type]
            plaintext=plaintext,
            chunks=chunks,
        )
        self._db.execute("UPDATE readings SET reported_seq = ? WHERE reported_seq = ?", (new, old))
        self._db.execute("UPDATE alert_state SET raised_seq = ? WHERE raised_seq = ?", (new, old))
        self._db.execute("UPDATE alert_state SET cleared_seq = ? WHERE cleared_seq = ?", (new, old))
        self._db.execute("DELETE FROM outbox_chunks WHERE seq = ?", (old,))
        self._db.execute("DELETE FROM outbox WHERE seq = ?", (old,))

    def add_envelope(
        self, seq: int, *, kind: str, created_at: datetime, plaintext: bytes, chunks: Sequence[bytes]
    ) -> None:
        """Store a sealed envelope (as its chunks) under ``seq``, ready to send."""
        self._require_transaction("add_envelope")
        if not chunks:
            raise StoreError(f"envelope {seq} has no chunks", hint="this is a bug in fsm")
        self._db.execute(
            "INSERT INTO outbox (seq, kind, created_at, chunk_count, plaintext) VALUES (?, ?, ?, ?, ?)",
            (seq, kind, _ts(created_at), len(chunks), plaintext),
        )
        self._db.executemany(
            "INSERT INTO outbox_chunks (seq, chunk_index, data) VALUES (?, ?, ?)",
            [(seq, i, bytes(c)) for i, c in enumerate(chunks)],
        )

    def pending_chunks(self, *, limit: int = 100) -> list[PendingChunk]:
        """Chunks still to send, in sequence then chunk order."""
        rows = self._db.execute(
            """SELECT c.seq, c.chunk_index, o.chunk_count, o.kind, c.data
               FROM outbox o JOIN outbox_chunks c ON c.seq = o.seq
               WHERE o.sent_at IS NULL AND c.sent_at IS NULL
               ORDER BY c.seq, c.chunk_index LIMIT ?""",
            (limit,),
        )
        return [PendingChunk(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def outbox_depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])

    def mark_chunk_sent(self, seq: int, chunk_index: int, *, at: datetime, answer: str) -> bool:
        """Record one accepted chunk; returns True when that completed the envelope."""
        with self.atomic():
            self._db.execute(
                "UPDATE outbox_chunks SET sent_at = ?, answer = ? WHERE seq = ? AND chunk_index = ?",
                (_ts(at), answer[:500], seq, chunk_index),
            )
            left = self._db.execute(
                "SELECT count(*) FROM outbox_chunks WHERE seq = ? AND sent_at IS NULL", (seq,)
            ).fetchone()[0]
            if left == 0:
                self._db.execute(
                    "UPDATE outbox SET sent_at = ?, last_error = NULL, next_attempt_at = NULL WHERE seq = ?",
                    (_ts(at), seq),
                )
                self.set_meta("last_send_at", _ts(at))
                return True
            return False

    def record_failure(self, seq: int, *, error: str, next_attempt_at: datetime) -> int:
        """Count a failed attempt at ``seq``; returns the number of attempts so far."""
        with self.atomic():
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                " WHERE seq = ?",
                (error[:1000], _ts(next_attempt_at), seq),
            )
            return int(self._db.execute("SELECT attempts FROM outbox WHERE seq = ?", (seq,)).fetchone()[0])

    def attempts(self, seq: int) -> int:
        row = self._db.execute("SELECT attempts FROM outbox WHERE seq = ?", (seq,)).fetchone()
        return int(row[0]) if row else 0

    def next_attempt_at(self) -> datetime | None:
        """When the first unsent envelope may be tried again (None: now)."""
        row = self._db.execute(
            "SELECT next_attempt_at FROM outbox WHERE sent_at IS NULL ORDER BY seq LIMIT 1"
        ).fetchone()
        return _dt(row[0]) if row else None

    def requeue(self, first: int, last: int | None = None) -> list[int]:
        """Mark retained envelopes ``first``..``last`` to be sent again under their own numbers."""
        if first < 1 or (last is not None and last < first):
            raise StoreError(
                f"bad range {first}..{last if last is not None else ''}",
                hint="give --from N with N >= 1 and --to M with M >= N",
            )
        hi = last if last is not None else self.last_seq()
        with self.atomic():
            have = [
                r[0]
                for r in self._db.execute(
                    "SELECT DISTINCT seq FROM outbox_chunks WHERE seq BETWEEN ? AND ? ORDER BY seq",
                    (first, hi),
                )
            ]
            missing = sorted(set(range(first, hi + 1)) - set(have))
            if missing:
                raise StoreError(
                    f"envelopes {_ranges(missing)} are no longer kept (retention) or were never created",
                    hint="resend only a range that `fsm-client outbox list` shows as retained",
                )
            self._db.execute(
                "UPDATE outbox SET sent_at = NULL, attempts = 0, next_attempt_at = NULL, last_error = NULL"
                " WHERE seq BETWEEN ? AND ?",
                (first, hi),
            )
            self._db.execute("UPDATE outbox_chunks SET sent_at = NULL WHERE seq BETWEEN ? AND ?", (first, hi))
        return have

    def replace_chunks(self, seq: int, chunks: Sequence[bytes]) -> None:
        """Store envelope ``seq`` split differently (same envelope, same number); only before any
        of its chunks went out, so the server never sees two splits of one number."""
        with self.atomic():
            row = self._db.execute(
                "SELECT sent_at, (SELECT count(*) FROM outbox_chunks c WHERE c.seq = o.seq AND c.sent_at"
                " IS NOT NULL) FROM outbox o WHERE seq = ?",
                (seq,),
            ).fetchone()
            if row is None:
                raise StoreError(
                    f"there is no report {seq} in the outbox",
                    hint="`fsm-client outbox list` shows the numbers that exist",
                )
            if row[0] is not None or row[1]:
                raise StoreError(
                    f"report {seq} was already sent (in part or whole) as it is split now",
                    hint="only a report that has not left yet can be split again",
                )
            self._db.execute("DELETE FROM outbox_chunks WHERE seq = ?", (seq,))
            self._db.executemany(
                "INSERT INTO outbox_chunks (seq, chunk_index, data) VALUES (?, ?, ?)",
                [(seq, i, bytes(c)) for i, c in enumerate(chunks)],
            )
            self._db.execute(
                "UPDATE outbox SET chunk_count = ?, next_attempt_at = NULL WHERE seq = ?", (len(chunks), seq)
            )

    def outbox(self, *, limit: int | None = None) -> list[OutboxEntry]:
        sql = """SELECT o.seq, o.kind, o.created_at, o.chunk_count, o.sent_at, o.attempts, o.next_attempt_at,
                        o.last_error,
                        (SELECT count(*) FROM outbox_chunks c WHERE c.seq = o.seq AND c.sent_at IS NOT NULL),
                        (SELECT count(*) FROM outbox_chunks c WHERE c.seq = o.seq)
                 FROM outbox o ORDER BY o.seq DESC"""
        params: tuple[object, ...] = ()
        if limit is not None:
            sql += " LIMIT ?"
            params = (limit,)
        return [
            OutboxEntry(
                r[0],
                r[1],
                _dt(r[2]),  # type: ignore[arg-type]
                r[3],
                _dt(r[4]),
                r[5],
                _dt(r[6]),
                r[7],
                r[8],
                r[9] > 0,
            )
            for r in self._db.execute(sql, params)
        ][::-1]

    def answers(self) -> dict[int, str]:
        """Per envelope, the answer its last accepted chunk got (a relay's words, a receipt, a file)."""
        return {
            r[0]: r[1]
            for r in self._db.execute(
                "SELECT seq, answer FROM outbox_chunks WHERE answer IS NOT NULL ORDER BY seq, chunk_index"
            )
        }

    def plaintext(self, seq: int) -> bytes:
        row = self._db.execute("SELECT plaintext FROM outbox WHERE seq = ?", (seq,)).fetchone()
        if row is None:
            raise StoreError(
                f"there is no report {seq} in the outbox",
                hint="`fsm-client outbox list` shows the numbers that exist",
            )
        if row[0] is None:
            raise StoreError(
                f"the plaintext of report {seq} is past its retention and was deleted",
                hint="raise [outbox] plaintext_retention_days to keep them longer",
            )
        return bytes(row[0])

    def chunks(self, seq: int) -> list[bytes]:
        """The sealed chunks of envelope ``seq`` as stored (empty once purged)."""
        return [
            bytes(r[0])
            for r in self._db.execute(
                "SELECT data FROM outbox_chunks WHERE seq = ? ORDER BY chunk_index", (seq,)
            )
        ]

    def purge(self, *, now: datetime, envelope_days: float, plaintext_days: float) -> tuple[int, int]:
        """Drop sealed chunks of envelopes sent more than ``envelope_days`` ago and plaintexts
        (and the readings they carried) older than ``plaintext_days``. Unsent ones are never purged."""
        env_cut = _ts(now - timedelta(days=envelope_days))
        txt_cut = _ts(now - timedelta(days=plaintext_days))
        with self.atomic():
            n_env = self._db.execute(
                "DELETE FROM outbox_chunks WHERE seq IN"
                " (SELECT seq FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?)",
                (env_cut,),
            ).rowcount
            n_txt = self._db.execute(
                "UPDATE outbox SET plaintext = NULL WHERE plaintext IS NOT NULL AND sent_at IS NOT NULL"
                " AND sent_at < ?",
                (txt_cut,),
            ).rowcount
            self._db.execute(
                "DELETE FROM readings WHERE reported_seq IN"
                " (SELECT seq FROM outbox WHERE plaintext IS NULL AND sent_at IS NOT NULL)"
            )
        return n_env, n_txt

    # -- schedule state and small facts --

    def schedule_state(self, job: str) -> tuple[datetime, datetime | None] | None:
        row = self._db.execute(
            "SELECT last_due, last_run FROM schedule_state WHERE job = ?", (job,)
        ).fetchone()
        return (_dt(row[0]), _dt(row[1])) if row else None  # type: ignore[return-value]

    def schedule_states(self) -> dict[str, tuple[datetime, datetime | None]]:
        return {
            r[0]: (_dt(r[1]), _dt(r[2]))  # type: ignore[misc]
            for r in self._db.execute("SELECT job, last_due, last_run FROM schedule_state")
        }

    def set_schedule_state(self, job: str, *, last_due: datetime, last_run: datetime | None) -> None:
        with self.atomic():
            self._db.execute(
                """INSERT INTO schedule_state (job, last_due, last_run) VALUES (?, ?, ?)
                   ON CONFLICT (job) DO UPDATE SET last_due = excluded.last_due,
                     last_run = coalesce(excluded.last_run, last_run)""",
                (job, _ts(last_due), _ts(last_run) if last_run else None),
            )

    def set_meta(self, key: str, value: str) -> None:
        with self.atomic():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def meta_time(self, key: str) -> datetime | None:
        return _dt(self.meta(key))

    def set_meta_time(self, key: str, when: datetime) -> None:
        self.set_meta(key, _ts(when))


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection. A WAL database needs its -shm file, which a read-only directory
    cannot get once the last writer closed and removed it; then every committed change is in
    the main file (no -wal left, or an empty one) and it is read as immutable."""
    uri = path.resolve().as_uri()
    try:
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError as exc:
        wal = path.with_name(path.name + "-wal")
        if exc.sqlite_errorcode != sqlite3.SQLITE_CANTOPEN or not _unwritable(path.parent):
            raise
        if wal.exists() and wal.stat().st_size > 0:
            raise StoreError(
                f"cannot read the local store {str(path)!r} in a read-only data dir: its latest "
                f"changes are still in {wal.name}, which SQLite reads only with write access",
                hint="run `fsm-client status` once with write access to the data dir, or copy "
                "the data dir to a writable place and point --data-dir there",
            ) from exc
    db = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
    db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return db


def _unwritable(directory: Path) -> str | None:
    """Why this user cannot write in ``directory`` (None: it can, or it does not exist)."""
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return f"{str(directory)!r} is on a read-only file system"
    except OSError:
        return None
    if not os.access(directory, os.W_OK):
        return f"{str(directory)!r} is not writable by this user"
    return None


class _NoScript:
    """Lets a migration call ``executescript`` without the implicit COMMIT sqlite3 adds."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def executescript(self, script: str) -> None:
        for statement in _split_sql(script):
            self._db.execute(statement)

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)


def _split_sql(script: str) -> list[str]:
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line.split("--", 1)[0] + ("\n" if "--" in line else "")
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def _ranges(numbers: Sequence[int]) -> str:
    """``[1, 2, 3, 7]`` -> ``"1-3, 7"``."""
    parts: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


__all__ = [
    "MIGRATIONS",
    "STORE_FILE",
    "AlertStateRow",
    "KnownDevice",
    "OutboxEntry",
    "PendingChunk",
    "ReadingKind",
    "Store",
    "StoredReading",
]
