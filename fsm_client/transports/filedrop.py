"""Write report mails into a folder (USB stick, shared drive) for sites with no mail at all.

Each mail becomes ``<client>-<seq>-<i>of<n>.eml`` (the same bytes SMTP would carry, which
``fsm-server import`` reads). Writes are atomic: the bytes go to a hidden temporary file in the
same folder (``.fsm-<random>.part``, which never matches ``*.eml``), are fsynced, then renamed
over the final name, and the folder is fsynced. A reader (or a crash at any moment) sees either
no file or the whole file, never a part of one.

A kill during a write leaves its temporary file behind. The writer holds an flock on it until it
is renamed, so one that nobody holds is stale: such files are removed when the daemon starts and
before each write (``remove_stale_parts``). A write in progress in another process on this machine
is left alone; where the folder's file system cannot lock, only temporary files older than an hour
are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Sequence
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

from fsm_common.errors import TransientTransportError, TransportError
from fsm_common.transport import BaseTransport
from fsm_protocol.files import fsync_dir

log = logging.getLogger("fsm_client.transports.filedrop")

#: What final names look like; temporary names are built never to match it.
FINAL_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}-[0-9]+-[0-9]+of[0-9]+\.eml")
TEMP_PREFIX = ".fsm-"
TEMP_SUFFIX = ".part"
#: Exactly the temporary names this transport makes; nothing else in the folder is ever removed.
TEMP_NAME_RE = re.compile(re.escape(TEMP_PREFIX) + r"[0-9a-f]{16}" + re.escape(TEMP_SUFFIX))
#: Where locks do not work, a temporary file untouched this long is taken for stale.
STALE_UNLOCKED_SECONDS = 3600.0
_CLIENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CHUNK_RE = re.compile(r"([0-9]+)/([0-9]+)")
# Headers end within the first few KB of a report mail; never parse more than this to name it.
_HEADER_LIMIT = 64 * 1024


def file_name(message: bytes) -> str:
    """``<client>-<seq>-<i>of<n>.eml`` from the mail's X-Fsm-Client, X-Fsm-Seq and X-Fsm-Chunk headers."""
    head = message[:_HEADER_LIMIT]
    end = head.find(b"\r\n\r\n")
    if end < 0:
        end = head.find(b"\n\n")
    headers = BytesHeaderParser(policy=compat32).parsebytes(head[: end if end >= 0 else len(head)])
    client = (headers.get("X-Fsm-Client") or "").strip()
    seq = (headers.get("X-Fsm-Seq") or "").strip()
    chunk = _CHUNK_RE.fullmatch((headers.get("X-Fsm-Chunk") or "1/1").strip())
    if not _CLIENT_RE.fullmatch(client) or not seq.isdigit() or chunk is None:
        raise TransportError(
            f"the mail has no usable X-Fsm headers (client {client!r}, seq {seq!r}) to name its file",
            hint="the file drop writes report mails built by fsm_protocol.mime.build_message",
        )
    name = f"{client}-{int(seq)}-{int(chunk[1])}of{int(chunk[2])}.eml"
    assert FINAL_NAME_RE.fullmatch(name)
    return name


class FileDropTransport(BaseTransport):
    """A folder that receives report mails as files (see the module docstring)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def __repr__(self) -> str:
        return f"FileDropTransport({str(self.directory)!r})"

    async def send(self, message: bytes, *, mail_from: str = "", rcpt_to: Sequence[str] = ()) -> str:
        """Write the mail atomically; return the path written. Sender and recipients are not used."""
        name = file_name(message)
        # A USB stick can be slow: keep the event loop (status polls, alerts) running meanwhile.
        return await asyncio.to_thread(self.write, name, message)

    def write(self, name: str, data: bytes) -> str:
        """Atomically place `data` at directory/name (synchronous; `send` runs it in a thread)."""
        if not FINAL_NAME_RE.fullmatch(name):
            raise TransportError(
                f"file name {name!r} is not a report file name", hint="use file_name(message)"
            )
        remove_stale_parts(self.directory)
        final = self.directory / name
        temp = self.directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}{TEMP_SUFFIX}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                # Held until the rename: tells remove_stale_parts in other processes it is not stale.
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
                os.replace(temp, final)
            finally:
                os.close(fd)
            fsync_dir(self.directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise _translate(exc, self.directory) from exc
        return str(final)


def remove_stale_parts(directory: Path | str) -> list[str]:
    """Remove the temporary files of our naming in ``directory`` that no writer holds (left by a
    write that was killed); returns their names. A folder that cannot be read is left to the
    write to report."""
    directory = Path(directory)
    try:
        names = [e.name for e in os.scandir(directory) if TEMP_NAME_RE.fullmatch(e.name)]
    except OSError:
        return []
    removed = []
    for name in names:
        path = directory / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:  # gone meanwhile (renamed into place), or a link: not ours to touch
            continue
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or not _stale(fd, info.st_mtime):
                continue
            os.unlink(path)
            removed.append(name)
        except OSError:
            continue
        finally:
            os.close(fd)
    if removed:
        log.warning(
            "removed %d stale temporary file(s) from the drop folder %r, left by an interrupted write: %s",
            len(removed),
            str(directory),
            ", ".join(removed),
        )
    return removed


def _stale(fd: int, mtime: float) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False  # a write in progress holds it
    except OSError:  # this file system cannot lock: judge by age
        return time.time() - mtime > STALE_UNLOCKED_SECONDS
    return True


def _translate(exc: OSError, directory: Path) -> TransportError:
    where = str(directory)
    if exc.errno == errno.ENOENT:
        return TransientTransportError(
            f"the drop folder {where!r} does not exist",
            hint="mount the stick or share, or create the folder named in [filedrop] directory; "
            "the envelope stays in the outbox and is retried",
        )
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return TransientTransportError(
            f"the drop folder {where!r} is full", hint="make room on it; the envelope is retried"
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return TransientTransportError(
            f"cannot write into the drop folder {where!r}: {exc.strerror}",
            hint="give the fsm-client user write access (or remount read-write); the envelope is retried",
        )
    return TransientTransportError(
        f"writing into the drop folder {where!r} failed: {exc.strerror or exc}",
        hint="check the folder named in [filedrop] directory; the envelope is retried",
    )


__all__ = [
    "FINAL_NAME_RE",
    "TEMP_NAME_RE",
    "TEMP_PREFIX",
    "TEMP_SUFFIX",
    "FileDropTransport",
    "file_name",
    "remove_stale_parts",
]
