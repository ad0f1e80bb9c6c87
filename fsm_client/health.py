"""The daemon's current problem (a full data disk), where `fsm-client status` finds it.

It cannot go into the store: the store is what cannot be written then. It is a small JSON file
in the data dir (``fsm-client.health``) whose space the daemon reserves at start-up, while there
is room, and which is later overwritten in place: writing it needs no new space on the disk.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

HEALTH_FILE = "fsm-client.health"
#: The reserved size; a problem's text is cut to fit (the whole message stays in the log).
RESERVED_BYTES = 4096


class _Record(msgspec.Struct):
    error: str = ""
    hint: str = ""
    since: str = ""


@dataclass(frozen=True)
class Problem:
    error: str
    hint: str
    since: datetime


class HealthFile:
    """``<data_dir>/fsm-client.health``: written by the daemon, read by `fsm-client status`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / HEALTH_FILE

    def reserve(self) -> bool:
        """Make the file its full size now, while there is room (start-up); False if that failed."""
        try:
            if self.path.exists() and self.path.stat().st_size >= RESERVED_BYTES:
                return True
            self._write(_Record())
            return True
        except OSError:
            return False

    def record(self, error: str, hint: str, since: datetime) -> bool:
        """Note a problem; False if even that could not be written (the log still has it)."""
        try:
            self._write(_Record(error=error, hint=hint, since=since.isoformat()))
            return True
        except OSError:
            return False

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            if self.path.exists():
                self._write(_Record())

    def read(self) -> Problem | None:
        """The problem recorded, or None (none, no file, or a file that is not ours)."""
        try:
            with open(self.path, "rb") as f:
                raw = f.read(RESERVED_BYTES)
            record = msgspec.json.decode(raw.rstrip(b" \n"), type=_Record)
            since = datetime.fromisoformat(record.since) if record.error else None
        except (OSError, ValueError, msgspec.DecodeError):
            return None
        if since is None or since.tzinfo is None:
            return None
        return Problem(record.error, record.hint, since)

    def _write(self, record: _Record) -> None:
        data = msgspec.json.encode(record)
        while len(data) >= RESERVED_BYTES:  # cut the texts, never the JSON
            record = _Record(
                record.error[: len(record.error) // 2], record.hint[: len(record.hint) // 2], record.since
            )
            data = msgspec.json.encode(record)
        # Same size every time, written over the old bytes: no new blocks are needed.
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.pwrite(fd, data.ljust(RESERVED_BYTES - 1) + b"\n", 0)
        finally:
            os.close(fd)


__all__ = ["HEALTH_FILE", "RESERVED_BYTES", "HealthFile", "Problem"]
