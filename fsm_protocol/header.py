"""The envelope's cleartext header: fixed layout, pack and parse only (no crypto, no policy).

Layout (docs/wire-format.md has the table and the ABNF); integers are big-endian::

    magic "\\x89FSM" | version u8 | flags u8 | kind u8 | client_id_len u8 | seq u64
    | chunk_index u16 | chunk_count u16 | payload_len u32 | report_len u32
    | server_key_id [8] | ephemeral_key [32] | nonce [12] | signer_fingerprint [32]
    | client_id [client_id_len]

>>> h = parse(pack(_EXAMPLE))
>>> h == _EXAMPLE and pack(h) == pack(_EXAMPLE)
True
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .crypto import KEY_BYTES, NONCE_BYTES, SIGNATURE_BYTES, TAG_BYTES, Buffer
from .errors import MalformedEnvelope, UnsupportedVersion
from .keys import KEY_ID_BYTES, fingerprint_from_raw, fingerprint_to_raw

MAGIC = b"\x89FSM"
VERSION = 1
_FIXED = struct.Struct(">4sBBBBQHHII8s32s12s32s")
FIXED_BYTES = _FIXED.size  # 112
MAX_CLIENT_ID_BYTES = 64
MAX_CHUNKS = 0xFFFF

#: Report kind <-> its one-byte code. 0 is never valid, so a zeroed header is caught.
KIND_CODES: dict[str, int] = {"periodic": 1, "alert": 2, "inventory": 3, "resend": 4}
_KIND_NAMES = {code: name for name, code in KIND_CODES.items()}

#: Letters, digits, '.', '_', '-'; first a letter or digit. Client ids go into file names and
#: mail headers unquoted, so the header admits nothing else.
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class Header:
    """The parsed cleartext header of an envelope or of one chunk of it."""

    client_id: str
    seq: int
    kind: str
    server_key_id: str  # 16 lowercase hex digits, as ServerPublicKey.key_id
    ephemeral_key: bytes  # X25519 public key, 32 bytes
    nonce: bytes  # AES-GCM nonce, 12 bytes
    signer_fingerprint: str  # "SHA256:<base64>", as VerifyKey.fingerprint
    payload_len: int  # whole envelope: ciphertext+tag bytes; chunk: bytes of this fragment
    report_len: int  # the encoded report's length before compression
    chunk_index: int = 1  # 1-based
    chunk_count: int = 1
    version: int = VERSION
    flags: int = 0

    @property
    def size(self) -> int:
        """Bytes the header takes on the wire."""
        return FIXED_BYTES + len(self.client_id)

    @property
    def is_chunk(self) -> bool:
        return self.chunk_count != 1

    @property
    def total_size(self) -> int:
        """The length the whole envelope (or chunk) must have, as this header declares it."""
        trailer = 0 if self.is_chunk else SIGNATURE_BYTES
        return self.size + self.payload_len + trailer


def pack(header: Header) -> bytes:
    """Serialise a header; ValueError when a field cannot be represented (a caller's bug)."""
    cid = header.client_id.encode("ascii")
    if not CLIENT_ID_RE.fullmatch(header.client_id):
        raise ValueError(f"client id {header.client_id!r} is not allowed in a header")
    return (
        _FIXED.pack(
            MAGIC,
            header.version,
            header.flags,
            KIND_CODES[header.kind],
            len(cid),
            header.seq,
            header.chunk_index,
            header.chunk_count,
            header.payload_len,
            header.report_len,
            bytes.fromhex(header.server_key_id),
            header.ephemeral_key,
            header.nonce,
            fingerprint_to_raw(header.signer_fingerprint),
        )
        + cid
    )


def parse(data: Buffer) -> Header:
    """Parse the header at the start of ``data`` (which may hold more); sizes checked first.

    Raises MalformedEnvelope for anything that is not a v1 header and UnsupportedVersion for a
    header of another version (checked right after the magic, before the layout is assumed).
    """
    view = memoryview(data)
    if len(view) < 5 or view[:4] != MAGIC:
        raise MalformedEnvelope(
            f"not an fsm envelope: starts with {bytes(view[:8])!r}, not {MAGIC!r}",
            hint="the mail attachment or file is not a sealed report (or was mangled in transit)",
        )
    if view[4] != VERSION:
        raise UnsupportedVersion(f"envelope version {view[4]} is not supported (this side reads {VERSION})")
    if len(view) < FIXED_BYTES:
        raise MalformedEnvelope(f"envelope is {len(view)} bytes, shorter than its {FIXED_BYTES}-byte header")
    (
        _,
        version,
        flags,
        kind_code,
        cid_len,
        seq,
        index,
        count,
        payload_len,
        report_len,
        key_id,
        ephemeral,
        nonce,
        signer,
    ) = _FIXED.unpack_from(view)
    if flags != 0:
        raise MalformedEnvelope(f"header flags are {flags:#04x}; version 1 defines none")
    kind = _KIND_NAMES.get(kind_code)
    if kind is None:
        raise MalformedEnvelope(f"unknown report kind code {kind_code}")
    if not 1 <= cid_len <= MAX_CLIENT_ID_BYTES:
        raise MalformedEnvelope(f"client id length {cid_len} is outside 1..{MAX_CLIENT_ID_BYTES}")
    if len(view) < FIXED_BYTES + cid_len:
        raise MalformedEnvelope(f"envelope is {len(view)} bytes, shorter than its header")
    raw_cid = bytes(view[FIXED_BYTES : FIXED_BYTES + cid_len])
    client_id = raw_cid.decode("latin-1")
    if not CLIENT_ID_RE.fullmatch(client_id):
        raise MalformedEnvelope(f"client id {raw_cid!r} has characters a header may not hold")
    if not 1 <= index <= count:
        raise MalformedEnvelope(f"chunk {index}/{count} is not a valid position")
    minimum = 1 if count != 1 else TAG_BYTES
    if payload_len < minimum:
        raise MalformedEnvelope(f"payload length {payload_len} is under the minimum of {minimum}")
    return Header(
        client_id=client_id,
        seq=seq,
        kind=kind,
        server_key_id=key_id.hex(),
        ephemeral_key=ephemeral,
        nonce=nonce,
        signer_fingerprint=fingerprint_from_raw(signer),
        payload_len=payload_len,
        report_len=report_len,
        chunk_index=index,
        chunk_count=count,
        version=version,
        flags=flags,
    )


_EXAMPLE = Header(
    client_id="acme-hq",
    seq=42,
    kind="periodic",
    server_key_id="00" * KEY_ID_BYTES,
    ephemeral_key=bytes(KEY_BYTES),
    nonce=bytes(NONCE_BYTES),
    signer_fingerprint=fingerprint_from_raw(bytes(32)),
    payload_len=TAG_BYTES,
    report_len=0,
)

__all__ = [
    "CLIENT_ID_RE",
    "FIXED_BYTES",
    "KIND_CODES",
    "MAGIC",
    "MAX_CHUNKS",
    "MAX_CLIENT_ID_BYTES",
    "VERSION",
    "Header",
    "pack",
    "parse",
]
