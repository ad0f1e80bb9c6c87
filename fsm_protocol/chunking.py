"""Split a sealed envelope into self-describing chunks that fit in a mail, and join them again.

A chunk is the envelope's header with ``chunk_index``/``chunk_count`` set (1-based) and
``payload_len`` set to the fragment's length, followed by that fragment of the envelope's
``ciphertext || signature``. ``peek`` works on every chunk. Chunks are pure framing: the
header signed and used as AAD is always the whole envelope's (chunk 1/1), so joining
restores it and opening verifies everything as for an unchunked envelope.

>>> from fsm_protocol.header import _EXAMPLE, pack
>>> env = pack(_EXAMPLE) + bytes(16) + bytes(64)
>>> parts = split(env, 160)
>>> len(parts), join(reversed(parts)) == env
(2, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from .crypto import SIGNATURE_BYTES, TAG_BYTES
from .envelope import DEFAULT_MAX_ENVELOPE_BYTES, peek
from .errors import ChunkError
from .header import MAX_CHUNKS, Header, pack

#: Largest chunk (envelope bytes per mail) by default: 5 MiB. Base64 in the mail adds about 37 %.
DEFAULT_CHUNK_BYTES = 5 * 1024 * 1024


def split(envelope: bytes, max_bytes: int = DEFAULT_CHUNK_BYTES) -> list[bytes]:
    """The envelope as chunks of at most ``max_bytes`` each (a list of one when it fits)."""
    if len(envelope) <= max_bytes:
        return [envelope]
    header = peek(envelope, max_bytes=len(envelope))
    if header.is_chunk:
        raise ChunkError(f"envelope is already chunk {header.chunk_index}/{header.chunk_count}")
    room = max_bytes - header.size
    if room < 1:
        raise ChunkError(
            f"chunk size {max_bytes} leaves no room after the {header.size}-byte header",
            hint="configure a chunk size of at least a few kilobytes",
        )
    body = memoryview(envelope)[header.size :]
    count = -(-len(body) // room)
    if count > MAX_CHUNKS:
        raise ChunkError(
            f"envelope of {len(envelope)} bytes needs {count} chunks of {max_bytes}, over {MAX_CHUNKS}",
            hint="raise the chunk (mail) size",
        )
    chunks = []
    for i in range(count):
        fragment = body[i * room : (i + 1) * room]
        head = dataclasses.replace(header, chunk_index=i + 1, chunk_count=count, payload_len=len(fragment))
        chunks.append(pack(head) + fragment)
    return chunks


def _framing_free(header: Header) -> Header:
    return dataclasses.replace(header, chunk_index=1, chunk_count=1, payload_len=0)


def join(chunks: Iterable[bytes], *, max_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES) -> bytes:
    """The envelope back from all its chunks, in any order; identical duplicates are allowed.

    Raises ChunkError when a chunk is missing, two differ for one position, or they belong to
    different envelopes; TooLarge when the joined envelope would exceed ``max_bytes``.
    """
    first: Header | None = None
    fragments: dict[int, bytes] = {}
    for chunk in chunks:
        header = peek(chunk, max_bytes=max_bytes)
        if first is None:
            first = header
        elif _framing_free(header) != _framing_free(first) or header.chunk_count != first.chunk_count:
            raise ChunkError(
                f"chunk {header.chunk_index}/{header.chunk_count} of {header.client_id} #{header.seq} does "
                f"not belong with chunk {first.chunk_index}/{first.chunk_count} of {first.client_id} "
                f"#{first.seq}",
                hint="join only the chunks of one envelope (same client, seq and ephemeral key)",
            )
        fragment = bytes(memoryview(chunk)[header.size :])
        seen = fragments.setdefault(header.chunk_index, fragment)
        if seen != fragment:
            raise ChunkError(f"two different chunks claim position {header.chunk_index}/{header.chunk_count}")
    if first is None:
        raise ChunkError("no chunks to join")
    if not first.is_chunk:
        if len(fragments) == 1:
            return pack(first) + fragments[1]  # a whole envelope passes through
        raise ChunkError("a whole envelope was mixed with other chunks")
    missing = sorted(set(range(1, first.chunk_count + 1)) - fragments.keys())
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise ChunkError(
            f"report {first.client_id} #{first.seq} is missing chunk(s) {shown} of {first.chunk_count}",
            hint="wait for the remaining mails, or ask the client to resend this seq",
        )
    body_len = sum(len(f) for f in fragments.values())
    if body_len < TAG_BYTES + SIGNATURE_BYTES:
        raise ChunkError(f"joined chunks hold {body_len} bytes, too few for an envelope")
    head = pack(
        dataclasses.replace(first, chunk_index=1, chunk_count=1, payload_len=body_len - SIGNATURE_BYTES)
    )
    envelope = b"".join([head, *(fragments[i] for i in range(1, first.chunk_count + 1))])
    peek(envelope, max_bytes=max_bytes)
    return envelope


__all__ = ["DEFAULT_CHUNK_BYTES", "join", "split"]
