"""Durable file writes, for everything fsm keeps on disk (key files, PMD sets, reports, backups):
a reader, or a crash at any moment, sees the old content or the new, never a part.

They live in the wire contract's package, the lowest layer, because its key files need them; the
programs and the shared plumbing above take them from here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

#: What a file system says when it cannot fsync a directory (vfat on a stick, SMB).
_NO_DIR_SYNC = (errno.EINVAL, errno.ENOTSUP, errno.EBADF)


def fsync_dir(path: Path) -> None:
    """Make the names in directory ``path`` (a rename into it) durable. A file system that cannot
    fsync a directory is left at that: the rename stands."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIR_SYNC:
            raise
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes, mode: int = 0o644, *, exact_mode: bool = False) -> None:
    """Create ``path`` (it must not exist, nor be a link), write and fsync it. The file has ``mode``
    from its creation (a private key is never readable by others, not even for a moment), less
    the umask unless ``exact_mode``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as f:
        if exact_mode:
            os.fchmod(f.fileno(), mode)  # the umask may have removed bits we want, never added any
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_file(path: Path, mode: int = 0o644, *, exact_mode: bool = False) -> Iterator[BinaryIO]:
    """A new file (see ``write_new``) that replaces ``path`` when the block ends without an error,
    durably, so a reader sees the old or the new content; after an error ``path`` is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as f:
            if exact_mode:
                os.fchmod(f.fileno(), mode)  # the umask may have removed bits we want, never added any
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, mode: int = 0o644, *, exact_mode: bool = False) -> None:
    """Replace ``path`` with ``data`` so a reader sees the old or the new content, durably (a
    temporary file beside it, renamed over it, then the directory synced)."""
    with atomic_file(path, mode, exact_mode=exact_mode) as f:
        f.write(data)


__all__ = ["atomic_file", "fsync_dir", "write_atomic", "write_new"]
