"""Re-import archived mail through the pipeline: mbox, Maildir, single ``.eml`` files and
file-drop ``.fsm`` envelopes (or directories of them).

Everything is streamed: an mbox is split on its ``From `` lines while reading (never loaded
whole), and a message larger than ``[ingest] max_mail_bytes`` is never held either: its first
``quarantine_keep_bytes`` are kept and the rest only hashed, and it is quarantined as
``too_large``. Importing the same archive twice changes nothing (the pipeline is idempotent).

>>> list(split_mbox(io.BytesIO(b"From a\\nSubject: 1\\n\\n>From here\\n\\nFrom b\\nSubject: 2\\n\\nx\\n")))
[(0, b'Subject: 1\\n\\nFrom here\\n', 0), (1, b'Subject: 2\\n\\nx\\n', 0)]
"""

from __future__ import annotations

import hashlib
import io  # noqa: F401 - used by the doctest
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fsm_protocol.header import MAGIC

from ..errors import IngestError
from .pipeline import Pipeline, Tally, Verdict

#: progress(bytes done, bytes total, verdict of the message just processed)
Progress = Callable[[int, int, Verdict], None]

_ESCAPED_FROM = re.compile(rb"^>+From ")
_READ = 1024 * 1024


@dataclass
class Item:
    """One message out of an archive: whole, or (too large) its head, size and hash."""

    source: str
    raw: bytes
    size: int
    sha256: str | None = None  # set only when ``raw`` is a truncated head
    end_offset: int = 0  # bytes of all the archives consumed up to and including this message


def _mbox_messages(f: BinaryIO, limit: int, keep: int) -> Iterator[tuple[int, bytes, int, str | None, int]]:
    """(index, bytes, size, sha256-if-truncated, end offset) for each message of an mbox stream."""
    index = -1
    buf: list[bytes] = []
    held = 0
    size = 0
    digest: hashlib._Hash | None = None
    offset = 0
    prev_blank = True

    def finish() -> tuple[int, bytes, int, str | None, int]:
        data = b"".join(buf)
        if digest is None:
            # the blank line before the next "From " belongs to the mbox, not to the message
            if data.endswith(b"\r\n\r\n") or data.endswith(b"\n\n"):
                data = data[:-2] if data.endswith(b"\r\n") else data[:-1]
            return index, data, len(data), None, offset
        return index, data[:keep], size, digest.hexdigest(), offset

    def add(line: bytes) -> None:
        nonlocal size, digest, buf, held
        size += len(line)
        if digest is None and size > limit:  # from here on: keep the head, hash the rest
            joined = b"".join(buf)
            digest = hashlib.sha256(joined)
            buf, held = [joined[:keep]], min(len(joined), keep)
        if digest is None:
            buf.append(line)
            return
        digest.update(line)
        if held < keep:
            buf.append(line[: keep - held])
            held += len(buf[-1])

    at_line_start = True
    while line := f.readline(_READ):  # capped: a 2 GB line without a newline is never held whole
        offset += len(line)
        starts, at_line_start = at_line_start, line.endswith(b"\n")
        if not starts:  # the rest of an over-long line
            if index >= 0:
                add(line)
            continue
        if line.startswith(b"From ") and prev_blank:
            if index >= 0:
                yield finish()
            index += 1
            buf, held, size, digest = [], 0, 0, None
            prev_blank = False
            continue
        prev_blank = line in (b"\n", b"\r\n")
        if index >= 0:  # text before the first "From " line is no message
            add(line[1:] if _ESCAPED_FROM.match(line) else line)
    if index >= 0:
        yield finish()


def split_mbox(f: BinaryIO, *, limit: int = 2**62, keep: int = 2**62) -> Iterator[tuple[int, bytes, int]]:
    """(index, message, hash-or-0) per message of an mbox; a plain helper for tests and tools."""
    for index, data, _size, digest, _end in _mbox_messages(f, limit, keep):
        yield index, data, 0 if digest is None else int(digest[:8], 16)


def _read_file(path: Path, limit: int, keep: int) -> tuple[bytes, int, str | None]:
    size = path.stat().st_size
    with path.open("rb") as f:
        if size <= limit:
            return f.read(), size, None
        head = f.read(keep)
        digest = hashlib.sha256(head)
        while chunk := f.read(_READ):
            digest.update(chunk)
        return head, size, digest.hexdigest()


def _is_maildir(path: Path) -> bool:
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def _is_mbox(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(5) == b"From "


def _files(path: Path) -> Iterator[Path]:
    """Every message file under a directory (Maildirs' cur/new, *.eml, *.fsm), in a stable order."""
    if _is_maildir(path):
        for sub in ("cur", "new"):
            yield from sorted(p for p in (path / sub).iterdir() if p.is_file())
        for child in sorted(path.iterdir()):  # Maildir++ subfolders (.FSM.Processed, ...)
            if child.name.startswith(".") and _is_maildir(child):
                yield from _files(child)
        return
    for child in sorted(path.iterdir()):
        if child.is_dir():
            yield from _files(child)
        elif child.suffix.lower() in (".eml", ".fsm", ".mbox") or child.name.endswith(":2,"):
            yield child


def archive_size(paths: Iterable[Path]) -> int:
    """Bytes to read, for a progress bar."""
    total = 0
    for p in paths:
        if p.is_dir():
            total += sum(f.stat().st_size for f in _files(p))
        elif p.exists():
            total += p.stat().st_size
    return total


def iter_items(paths: Iterable[Path], *, limit: int, keep: int) -> Iterator[Item]:
    """Every message in ``paths``, streamed; IngestError for a path that does not exist."""
    base = 0
    for path in paths:
        if not path.exists():
            raise IngestError(
                f"{str(path)!r} does not exist", hint="give mbox files, Maildirs, .eml or .fsm files"
            )
        files = list(_files(path)) if path.is_dir() else [path]
        for file in files:
            if file.suffix.lower() not in (".eml", ".fsm") and _is_mbox(file):
                with file.open("rb", buffering=_READ) as f:
                    for index, data, size, digest, end in _mbox_messages(f, limit, keep):
                        yield Item(
                            source=f"mbox:{file}#{index + 1}",
                            raw=data,
                            size=size,
                            sha256=digest,
                            end_offset=base + end,
                        )
                base += file.stat().st_size
            else:
                data, size, digest = _read_file(file, limit, keep)
                kind = "fsm" if data.startswith(MAGIC) else "eml"
                base += size
                yield Item(source=f"{kind}:{file}", raw=data, size=size, sha256=digest, end_offset=base)


def import_paths(paths: Iterable[Path], pipeline: Pipeline, *, progress: Progress | None = None) -> Tally:
    """Put every message in ``paths`` through ``pipeline``; returns the counts by outcome and reason."""
    paths = [Path(p) for p in paths]
    total = archive_size(paths)
    limits = pipeline.limits
    tally = Tally()
    for item in iter_items(paths, limit=limits.max_mail_bytes, keep=limits.quarantine_keep_bytes):
        if item.sha256 is not None:
            verdict = pipeline.quarantine_oversize(
                item.raw, size=item.size, sha256=item.sha256, source=item.source
            )
        else:
            verdict = pipeline.process(item.raw, source=item.source)
        tally.add(verdict)
        if progress is not None:
            progress(min(item.end_offset, total), total, verdict)
    return tally


__all__ = ["Item", "Progress", "archive_size", "import_paths", "iter_items", "split_mbox"]
