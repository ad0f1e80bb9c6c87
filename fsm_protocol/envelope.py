"""Seal a report into an envelope and open it again: compress, encrypt, sign / verify, decrypt, inflate.

An envelope is ``header || ciphertext || signature`` (docs/wire-format.md):

- the report's canonical JSON is zlib-compressed;
- an ephemeral X25519 key agrees a secret with the server's key; HKDF-SHA256 turns it into
  an AES-256 key, binding protocol version, client id and the signer's fingerprint;
- AES-256-GCM encrypts with the cleartext header as associated data;
- Ed25519 signs header and ciphertext together, once.

Opening checks the size first, then the header, then the keys named in it, then the
signature, and only then decrypts and inflates (with the declared size as a hard limit).

>>> from fsm_protocol import keys, schema
>>> from datetime import datetime, UTC
>>> signer = keys.SigningKey(keys.crypto.ed25519_generate())
>>> server = keys.EncryptionKey(keys.crypto.x25519_generate())
>>> r = schema.Report(client_id="acme-hq", seq=1, kind="periodic",
...                   created_at=datetime(2026, 1, 1, tzinfo=UTC))
>>> data = seal(r, signing_key=signer, server_key=server.public)
>>> peek(data).seq, open_envelope(data, verify_key=signer.public, encryption_key=server) == r
(1, True)
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from . import crypto
from .errors import BadSignature, ChunkError, MalformedEnvelope, SchemaError, TooLarge, UnknownKey
from .header import CLIENT_ID_RE, Header, pack, parse
from .keys import EncryptionKey, ServerPublicKey, SigningKey, VerifyKey, fingerprint_to_raw
from .schema import MAX_REPORT_BYTES, Report, decode_report, encode_report, utcnow

#: Largest envelope `peek`/`open_envelope` look at by default (a joined report, not one mail).
DEFAULT_MAX_ENVELOPE_BYTES = 64 * 1024 * 1024
#: Largest decompressed report `open_envelope` accepts by default.
DEFAULT_MAX_REPORT_BYTES = MAX_REPORT_BYTES
#: zlib level used by `seal`; any level opens. 6 is zlib's default balance.
COMPRESSION_LEVEL = 6
#: Domain-separation label at the start of the HKDF info.
HKDF_LABEL = b"fsm-envelope"
_MAX_U32 = 0xFFFFFFFF
_MAX_U64 = 0xFFFFFFFFFFFFFFFF


def _derive_key(secret: bytes, header: Header, server_public: bytes) -> bytes:
    cid = header.client_id.encode("ascii")
    info = b"".join(
        [HKDF_LABEL, bytes([header.version, len(cid)]), cid, fingerprint_to_raw(header.signer_fingerprint)]
    )
    return crypto.hkdf_sha256(secret, salt=header.ephemeral_key + server_public, info=info)


def seal(
    report: Report,
    *,
    signing_key: SigningKey,
    server_key: ServerPublicKey,
    now: datetime | None = None,
    rng: Callable[[int], bytes] | None = None,
) -> bytes:
    """Seal ``report`` for ``server_key``, signed by ``signing_key``; sets ``report.sealed_at``.

    ``now`` and ``rng`` (called as ``rng(32)`` for the ephemeral X25519 key, then ``rng(12)``
    for the nonce) make the output reproducible; leave them out in production.
    """
    if not CLIENT_ID_RE.fullmatch(report.client_id):
        raise SchemaError(
            f"client id {report.client_id!r} cannot go into an envelope header",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit ([client] id)",
        )
    if not 0 <= report.seq <= _MAX_U64:
        raise SchemaError(f"sequence number {report.seq} is outside 0..2^64-1")
    report.sealed_at = now if now is not None else utcnow()
    plain = encode_report(report)
    if len(plain) > _MAX_U32:
        raise TooLarge(
            f"report is {len(plain)} bytes; an envelope holds at most {_MAX_U32}",
            hint="send fewer devices per report",
        )
    return _seal_payload(
        zlib.compress(plain, COMPRESSION_LEVEL),
        report_len=len(plain),
        client_id=report.client_id,
        seq=report.seq,
        kind=report.kind,
        signing_key=signing_key,
        server_key=server_key,
        rng=rng,
    )


def _seal_payload(
    compressed: bytes,
    *,
    report_len: int,
    client_id: str,
    seq: int,
    kind: str,
    signing_key: SigningKey,
    server_key: ServerPublicKey,
    rng: Callable[[int], bytes] | None,
) -> bytes:
    """Seal bytes that are already compressed, declaring ``report_len`` (tests forge bombs with it)."""
    if rng is None:
        ephemeral, nonce = crypto.x25519_generate(), os.urandom(crypto.NONCE_BYTES)
    else:
        ephemeral = crypto.x25519_from_raw(rng(crypto.KEY_BYTES))
        nonce = rng(crypto.NONCE_BYTES)
    header = Header(
        client_id=client_id,
        seq=seq,
        kind=kind,
        server_key_id=server_key.key_id,
        ephemeral_key=crypto.x25519_public_raw(ephemeral),
        nonce=nonce,
        signer_fingerprint=signing_key.fingerprint,
        payload_len=len(compressed) + crypto.TAG_BYTES,
        report_len=report_len,
    )
    head = pack(header)
    key = _derive_key(server_key.agree(ephemeral), header, server_key.raw)
    out = bytearray(head)
    out += crypto.aes_gcm_encrypt(key, nonce, compressed, head)
    # One signature over header and ciphertext, computed on the buffer that is sent.
    out += signing_key.sign(out)
    return bytes(out)


def peek(data: bytes, *, max_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES) -> Header:
    """Parse the cleartext header of an envelope or chunk and check its length; no crypto.

    Raises TooLarge (checked before anything is parsed), MalformedEnvelope, UnsupportedVersion.
    """
    if len(data) > max_bytes:
        raise TooLarge(
            f"envelope is {len(data)} bytes, over the limit of {max_bytes}",
            hint="raise max_envelope_bytes only if reports this large are expected",
        )
    header = parse(data)
    if len(data) != header.total_size:
        raise MalformedEnvelope(
            f"envelope is {len(data)} bytes but its header declares {header.total_size}",
            hint="the envelope was truncated or padded in transit",
        )
    return header


class Opened(NamedTuple):
    """An opened envelope: its header and the report bytes, authentic but not yet validated."""

    header: Header
    payload: bytes


def open_envelope(
    data: bytes,
    *,
    verify_key: VerifyKey,
    encryption_key: EncryptionKey,
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    max_report_bytes: int = DEFAULT_MAX_REPORT_BYTES,
) -> Report:
    """Open an envelope and validate the report in it: `open_payload`, then `validate`."""
    opened = open_payload(
        data,
        verify_key=verify_key,
        encryption_key=encryption_key,
        max_envelope_bytes=max_envelope_bytes,
        max_report_bytes=max_report_bytes,
    )
    return validate(opened, max_report_bytes=max_report_bytes)


def open_payload(
    data: bytes,
    *,
    verify_key: VerifyKey,
    encryption_key: EncryptionKey,
    max_envelope_bytes: int = DEFAULT_MAX_ENVELOPE_BYTES,
    max_report_bytes: int = DEFAULT_MAX_REPORT_BYTES,
) -> Opened:
    """Verify, decrypt and inflate an envelope; the signature is checked before decrypting.

    The payload is the report's JSON exactly as the client sealed it; `validate` turns it into
    a Report. Raises one class per reason: TooLarge, MalformedEnvelope, UnsupportedVersion,
    ChunkError, UnknownKey, BadSignature, DecryptionFailed.
    """
    header = peek(data, max_bytes=max_envelope_bytes)
    if header.is_chunk:
        raise ChunkError(
            f"this is chunk {header.chunk_index}/{header.chunk_count} of report "
            f"{header.client_id} #{header.seq}, not a whole envelope",
            hint="join all chunks (fsm_protocol.chunking.join) before opening",
        )
    if header.server_key_id != encryption_key.key_id:
        raise UnknownKey(
            f"envelope is sealed to server key id {header.server_key_id}, this server's key id is "
            f"{encryption_key.key_id}",
            hint="give the client this server's current server.pub, or load the older server.key",
        )
    if header.signer_fingerprint != verify_key.fingerprint:
        raise BadSignature(
            f"envelope is signed by key {header.signer_fingerprint}, client {header.client_id!r} "
            f"is registered with {verify_key.fingerprint}",
            hint="if the client's key was replaced on purpose, rotate it on the server (clients rotate)",
        )
    view = memoryview(data)
    end = len(view) - crypto.SIGNATURE_BYTES
    verify_key.verify(view[end:], view[:end])
    if header.report_len > max_report_bytes:
        raise TooLarge(
            f"report declares {header.report_len} bytes, over the limit of {max_report_bytes}",
            hint="raise max_report_bytes only if reports this large are expected",
        )
    key = _derive_key(encryption_key.agree(header.ephemeral_key), header, encryption_key.public.raw)
    compressed = crypto.aes_gcm_decrypt(key, header.nonce, view[header.size : end], view[: header.size])
    return Opened(header, _inflate(compressed, header.report_len))


def validate(opened: Opened, *, max_report_bytes: int = DEFAULT_MAX_REPORT_BYTES) -> Report:
    """Decode an opened payload into a Report and check that it is the report its header names.

    Raises SchemaError (or UnsupportedVersion for another schema version).
    """
    header = opened.header
    report = decode_report(opened.payload, max_bytes=max_report_bytes)
    said = (report.client_id, report.seq, report.kind)
    if said != (header.client_id, header.seq, header.kind):
        raise SchemaError(
            f"header says client {header.client_id!r} seq {header.seq} {header.kind}, "
            f"the sealed report says client {said[0]!r} seq {said[1]} {said[2]}",
            hint="the sending client is broken; it must seal the report it names in the header",
        )
    return report


def _inflate(compressed: bytes, expected: int) -> bytes:
    """Decompress to exactly ``expected`` bytes; never produces more than ``expected + 1``.

    ``expected`` comes from the signed header and is already within the report limit, so one
    bounded call is enough: zlib stops at ``expected + 1`` output bytes whatever the input
    claims, and a stream that would give more is a bomb.
    """
    inflater = zlib.decompressobj()
    try:
        plain = inflater.decompress(compressed, expected + 1)
    except zlib.error as exc:
        raise MalformedEnvelope(
            f"the sealed payload is not a valid zlib stream: {exc}", hint="the sending client is broken"
        ) from exc
    if len(plain) > expected:
        raise TooLarge(
            f"payload inflates to more than the {expected} bytes its header declares; refused at the limit",
            hint="the sender lies about the report size (a compression bomb?)",
        )
    if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail or len(plain) != expected:
        raise MalformedEnvelope(
            f"payload inflates to {len(plain)} bytes (complete: {inflater.eof}), header declares {expected}",
            hint="the sending client is broken",
        )
    return plain


__all__ = [
    "COMPRESSION_LEVEL",
    "DEFAULT_MAX_ENVELOPE_BYTES",
    "DEFAULT_MAX_REPORT_BYTES",
    "HKDF_LABEL",
    "Opened",
    "open_envelope",
    "open_payload",
    "peek",
    "seal",
    "validate",
]
