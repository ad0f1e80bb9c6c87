"""Chunking: envelopes over the mail size become self-describing chunks that join in any order."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_reports import realistic_report

from fsm_protocol.chunking import DEFAULT_CHUNK_BYTES, join, split
from fsm_protocol.envelope import open_envelope, peek, seal
from fsm_protocol.errors import ChunkError, MalformedEnvelope
from fsm_protocol.keys import EncryptionKey, SigningKey


@pytest.fixture(scope="module")
def envelope(signing_key: SigningKey, encryption_key: EncryptionKey) -> bytes:
    return seal(realistic_report(40), signing_key=signing_key, server_key=encryption_key.public)


def test_default_chunk_size_is_five_mebibytes() -> None:
    assert DEFAULT_CHUNK_BYTES == 5 * 1024 * 1024


def test_an_envelope_that_fits_is_one_chunk(envelope: bytes) -> None:
    assert split(envelope, len(envelope)) == [envelope]


def test_chunks_fit_describe_themselves_and_open_once_joined(
    envelope: bytes, signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    chunks = split(envelope, 1000)
    assert len(chunks) > 2 and all(len(c) <= 1000 for c in chunks)
    whole = peek(envelope)
    for i, chunk in enumerate(chunks, start=1):
        header = peek(chunk)
        assert (header.chunk_index, header.chunk_count) == (i, len(chunks))
        assert (header.client_id, header.seq, header.kind) == (whole.client_id, whole.seq, whole.kind)
    shuffled = chunks[:]
    random.Random(1).shuffle(shuffled)
    assert join(shuffled) == envelope
    report = open_envelope(join(shuffled), verify_key=signing_key.public, encryption_key=encryption_key)
    assert len(report.devices) == 40


@settings(max_examples=40, deadline=None)
@given(size=st.integers(200, 20_000), seed=st.integers(0, 2**32), duplicates=st.integers(0, 3))
def test_join_undoes_split_in_any_order_with_duplicates(
    envelope: bytes, size: int, seed: int, duplicates: int
) -> None:
    chunks = split(envelope, size)
    rng = random.Random(seed)
    delivered = chunks + [rng.choice(chunks) for _ in range(duplicates)]  # at-least-once delivery
    rng.shuffle(delivered)
    assert join(delivered) == envelope


def test_a_missing_chunk_is_named(envelope: bytes) -> None:
    chunks = split(envelope, 1000)
    with pytest.raises(ChunkError, match=f"missing chunk\\(s\\) 2 of {len(chunks)}"):
        join(chunks[:1] + chunks[2:])


def test_chunks_of_two_envelopes_do_not_join(
    envelope: bytes, signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    other = seal(realistic_report(40), signing_key=signing_key, server_key=encryption_key.public)
    a, b = split(envelope, 1000), split(other, 1000)
    with pytest.raises(ChunkError, match="does not belong"):
        join([a[0], *b[1:]])


def test_two_different_chunks_for_one_position_are_refused(envelope: bytes) -> None:
    chunks = split(envelope, 1000)
    forged = bytearray(chunks[1])
    forged[-1] ^= 1
    with pytest.raises(ChunkError, match="claim position 2/"):
        join([*chunks, bytes(forged)])


def test_a_damaged_chunk_is_malformed(envelope: bytes) -> None:
    chunks = split(envelope, 1000)
    with pytest.raises(MalformedEnvelope):
        join([chunks[0][:-1], *chunks[1:]])


def test_nothing_to_join_is_an_error() -> None:
    with pytest.raises(ChunkError, match="no chunks"):
        join([])


def test_a_chunk_size_smaller_than_the_header_is_refused(envelope: bytes) -> None:
    with pytest.raises(ChunkError, match="no room"):
        split(envelope, 100)
