"""Sealing and opening: round trips, one reason per failure, size limits before work."""

from __future__ import annotations

import os
import zlib
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_reports import realistic_report, reports

from fsm_protocol import crypto
from fsm_protocol.chunking import split
from fsm_protocol.envelope import Opened, _seal_payload, open_envelope, open_payload, peek, seal, validate
from fsm_protocol.errors import (
    BadSignature,
    ChunkError,
    EnvelopeError,
    MalformedEnvelope,
    SchemaError,
    TooLarge,
    UnknownKey,
    UnsupportedVersion,
)
from fsm_protocol.header import FIXED_BYTES, parse
from fsm_protocol.keys import EncryptionKey, SigningKey
from fsm_protocol.schema import Report, clean_report, encode_report

NOW = datetime(2026, 3, 1, 6, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def sealed(signing_key: SigningKey, encryption_key: EncryptionKey) -> bytes:
    return seal(
        realistic_report(3, seq=7), signing_key=signing_key, server_key=encryption_key.public, now=NOW
    )


def _open(data: bytes, signing_key: SigningKey, encryption_key: EncryptionKey, **limits: int) -> Report:
    return open_envelope(data, verify_key=signing_key.public, encryption_key=encryption_key, **limits)


def test_open_returns_the_sealed_report_with_sealed_at(
    signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    report = realistic_report(3, seq=7)
    data = seal(report, signing_key=signing_key, server_key=encryption_key.public, now=NOW)
    opened = _open(data, signing_key, encryption_key)
    assert opened == report
    assert opened.sealed_at == NOW


def test_open_payload_gives_the_sealed_json_and_validate_the_report(
    signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    """The two steps of `open_envelope`: authentic bytes first, then the validated report."""
    report = realistic_report(2, seq=9)
    data = seal(report, signing_key=signing_key, server_key=encryption_key.public, now=NOW)
    opened = open_payload(data, verify_key=signing_key.public, encryption_key=encryption_key)
    assert opened.header == peek(data)
    assert opened.payload == encode_report(report)
    assert validate(opened) == report
    with pytest.raises(SchemaError, match="seq 9"):
        validate(
            Opened(
                parse(
                    seal(
                        realistic_report(0, seq=10), signing_key=signing_key, server_key=encryption_key.public
                    )
                ),
                opened.payload,
            )
        )
    with pytest.raises(TooLarge):
        validate(opened, max_report_bytes=len(opened.payload) - 1)


def test_peek_reads_the_header_without_keys(
    sealed: bytes, signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    header = peek(sealed)
    assert (header.version, header.client_id, header.seq, header.kind) == (1, "acme-hq", 7, "periodic")
    assert (header.chunk_index, header.chunk_count) == (1, 1)
    assert header.server_key_id == encryption_key.key_id
    assert header.signer_fingerprint == signing_key.fingerprint


def test_sealing_twice_gives_different_bytes_that_both_open(
    signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    report = realistic_report(1)
    a = seal(report, signing_key=signing_key, server_key=encryption_key.public, now=NOW)
    b = seal(report, signing_key=signing_key, server_key=encryption_key.public, now=NOW)
    assert a != b  # fresh ephemeral key and nonce each time
    assert _open(a, signing_key, encryption_key) == _open(b, signing_key, encryption_key)


@settings(max_examples=60, deadline=None)
@given(report=reports)
def test_any_report_round_trips(
    report: Report, signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    """Every report comes back as sealed, apart from printer text, which comes back cleaned."""
    data = seal(report, signing_key=signing_key, server_key=encryption_key.public, now=NOW)
    assert _open(data, signing_key, encryption_key) == clean_report(report)


def _expected_reason(original: bytes, flipped: bytes, offset: int) -> str:
    """The reason docs/wire-format.md ("Which reason for which byte") gives for a change at ``offset``."""
    cid_len = original[7]
    if offset < 4:
        return "malformed"  # magic
    if offset == 4:
        return "version_not_supported"
    if offset == 5:
        return "malformed"  # flags: v1 defines none
    if offset == 6:
        return "malformed" if flipped[6] not in (1, 2, 3, 4) else "bad_signature"  # kind code
    if offset == 7 or 16 <= offset < 24:
        return "malformed"  # client id length, chunk i/n, payload length: the lengths stop adding up
    if 28 <= offset < 36:
        return "unknown_key"  # server key id
    if FIXED_BYTES <= offset < FIXED_BYTES + cid_len:
        import re

        ok = re.fullmatch(rb"[A-Za-z0-9][A-Za-z0-9._-]*", flipped[FIXED_BYTES : FIXED_BYTES + cid_len])
        return "bad_signature" if ok else "malformed"
    # seq, report length, ephemeral key, nonce, signer fingerprint, ciphertext, signature
    return "bad_signature"


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_changing_any_byte_is_rejected_with_the_reason_its_field_gives(
    data: st.DataObject, sealed: bytes, signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    # Bias towards the header, where the reasons differ; the body is all bad_signature.
    offset = data.draw(st.integers(0, FIXED_BYTES + 8) | st.integers(0, len(sealed) - 1), label="offset")
    delta = data.draw(st.integers(1, 255), label="xor")
    flipped = bytearray(sealed)
    flipped[offset] ^= delta
    with pytest.raises(EnvelopeError) as caught:
        _open(bytes(flipped), signing_key, encryption_key)
    assert caught.value.reason == _expected_reason(sealed, bytes(flipped), offset), caught.value.message


def test_every_byte_of_the_header_and_signature_is_covered(
    sealed: bytes, signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    """The exhaustive, small version of the property above: each header and signature byte, one bit."""
    size = parse(sealed).size
    for offset in [*range(size), *range(len(sealed) - 64, len(sealed))]:
        flipped = bytearray(sealed)
        flipped[offset] ^= 0x01
        with pytest.raises(EnvelopeError) as caught:
            _open(bytes(flipped), signing_key, encryption_key)
        assert caught.value.reason == _expected_reason(sealed, bytes(flipped), offset), offset


def test_a_different_signing_key_is_a_bad_signature(
    signing_key: SigningKey, other_signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    data = seal(realistic_report(1), signing_key=other_signing_key, server_key=encryption_key.public)
    with pytest.raises(BadSignature, match="is registered with"):
        _open(data, signing_key, encryption_key)


def test_a_different_server_key_is_an_unknown_key(
    signing_key: SigningKey, encryption_key: EncryptionKey, other_encryption_key: EncryptionKey
) -> None:
    data = seal(realistic_report(1), signing_key=signing_key, server_key=other_encryption_key.public)
    with pytest.raises(UnknownKey, match=other_encryption_key.key_id):
        _open(data, signing_key, encryption_key)


def test_a_forged_signer_fingerprint_still_fails_the_signature(
    signing_key: SigningKey, other_signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    """An attacker who names the registered key in the header cannot produce its signature."""
    data = bytearray(
        seal(realistic_report(1), signing_key=other_signing_key, server_key=encryption_key.public)
    )
    fp = crypto.sha256(signing_key.public.raw)
    data[80:112] = fp
    with pytest.raises(BadSignature, match="does not verify"):
        _open(bytes(data), signing_key, encryption_key)


def test_a_newer_version_is_refused_before_anything_else(sealed: bytes) -> None:
    with pytest.raises(UnsupportedVersion, match="version 2"):
        peek(sealed[:4] + b"\x02" + sealed[5:])


@pytest.mark.parametrize("cut", [0, 3, 5, 50, FIXED_BYTES + 2, -1])
def test_truncated_envelopes_are_malformed(sealed: bytes, cut: int) -> None:
    with pytest.raises(MalformedEnvelope):
        peek(sealed[:cut])


def test_oversize_envelope_is_refused_before_parsing(sealed: bytes) -> None:
    with pytest.raises(TooLarge, match="over the limit of 100"):
        peek(b"garbage" * 100, max_bytes=100)
    with pytest.raises(TooLarge):
        open_envelope(sealed, verify_key=None, encryption_key=None, max_envelope_bytes=100)  # type: ignore[arg-type]


def test_declared_report_size_over_the_limit_is_refused_after_the_signature(
    sealed: bytes, signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    with pytest.raises(TooLarge, match="declares"):
        _open(sealed, signing_key, encryption_key, max_report_bytes=100)


def test_a_chunk_cannot_be_opened_alone(signing_key: SigningKey, encryption_key: EncryptionKey) -> None:
    data = seal(realistic_report(30), signing_key=signing_key, server_key=encryption_key.public)
    with pytest.raises(ChunkError, match=r"chunk 1/\d+ of report acme-hq #1, not a whole envelope"):
        _open(split(data, 1024)[0], signing_key, encryption_key)


def test_client_ids_that_cannot_go_in_a_header_are_refused_at_seal(
    signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    report = realistic_report(0, client_id="acme hq")
    with pytest.raises(SchemaError, match="'acme hq'"):
        seal(report, signing_key=signing_key, server_key=encryption_key.public)


def test_header_and_report_must_name_the_same_client(
    signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    """A (buggy or hostile but registered) client cannot file a report under another header."""
    report = realistic_report(1, client_id="other-client")
    plain = encode_report(report)
    data = _seal_payload(
        zlib.compress(plain),
        report_len=len(plain),
        client_id="acme-hq",
        seq=1,
        kind="periodic",
        signing_key=signing_key,
        server_key=encryption_key.public,
        rng=os.urandom,
    )
    with pytest.raises(SchemaError, match="other-client"):
        _open(data, signing_key, encryption_key)
