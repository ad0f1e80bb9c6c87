"""The cleartext header: pack and parse are exact inverses, and parse takes no liberties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from protocol_reports import client_ids

from fsm_protocol.errors import MalformedEnvelope, UnsupportedVersion
from fsm_protocol.header import FIXED_BYTES, KIND_CODES, MAGIC, Header, pack, parse
from fsm_protocol.keys import fingerprint_from_raw

headers = st.builds(
    Header,
    client_id=client_ids,
    seq=st.integers(0, 2**64 - 1),
    kind=st.sampled_from(sorted(KIND_CODES)),
    server_key_id=st.binary(min_size=8, max_size=8).map(bytes.hex),
    ephemeral_key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=12, max_size=12),
    signer_fingerprint=st.binary(min_size=32, max_size=32).map(fingerprint_from_raw),
    payload_len=st.integers(16, 2**32 - 1),
    report_len=st.integers(0, 2**32 - 1),
)


@settings(max_examples=200, deadline=None)
@given(header=headers)
def test_pack_then_parse_gives_the_same_header(header: Header) -> None:
    data = pack(header)
    assert len(data) == header.size == FIXED_BYTES + len(header.client_id)
    assert parse(data) == header


@settings(max_examples=300, deadline=None)
@given(
    kind=st.integers(0, 5),
    fields=st.binary(min_size=FIXED_BYTES - 8, max_size=FIXED_BYTES - 8),
    client_id=client_ids.map(str.encode) | st.binary(max_size=70),
    rest=st.binary(max_size=40),
)
def test_parse_then_pack_gives_the_same_bytes(
    kind: int, fields: bytes, client_id: bytes, rest: bytes
) -> None:
    """No two byte strings parse to one header (the header is not malleable)."""
    data = MAGIC + bytes([1, 0, kind, len(client_id) % 256]) + fields + client_id + rest
    try:
        header = parse(data)
    except MalformedEnvelope:
        return
    assert pack(header) == data[: header.size]


@settings(max_examples=100, deadline=None)
@given(header=headers, chunk=st.tuples(st.integers(1, 0xFFFF), st.integers(1, 0xFFFF)))
def test_chunk_positions_round_trip(header: Header, chunk: tuple[int, int]) -> None:
    index, count = min(chunk), max(chunk)
    header = Header(
        **{
            **{f: getattr(header, f) for f in Header.__slots__},
            "chunk_index": index,
            "chunk_count": count,
            "payload_len": max(header.payload_len, 1),
        }
    )
    assert parse(pack(header)) == header


def test_header_layout_offsets_are_as_documented() -> None:
    header = Header(
        client_id="c",
        seq=0x0102030405060708,
        kind="alert",
        server_key_id="aa" * 8,
        ephemeral_key=b"E" * 32,
        nonce=b"N" * 12,
        signer_fingerprint=fingerprint_from_raw(b"S" * 32),
        payload_len=0x11223344,
        report_len=0x55667788,
        chunk_index=2,
        chunk_count=3,
    )
    data = pack(header)
    assert data[0:4] == b"\x89FSM" and data[4] == 1 and data[5] == 0 and data[6] == 2 and data[7] == 1
    assert data[8:16] == bytes.fromhex("0102030405060708")
    assert data[16:20] == bytes.fromhex("00020003")
    assert data[20:28] == bytes.fromhex("1122334455667788")
    assert data[28:36] == b"\xaa" * 8
    assert data[36:68] == b"E" * 32 and data[68:80] == b"N" * 12 and data[80:112] == b"S" * 32
    assert data[112:] == b"c"


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", MalformedEnvelope, "not an fsm envelope"),
        (b"%PDF-1.7", MalformedEnvelope, "not an fsm envelope"),
        (MAGIC + b"\x00", UnsupportedVersion, "version 0"),
        (MAGIC + b"\x01" + bytes(10), MalformedEnvelope, "shorter than its 112-byte header"),
    ],
)
def test_parse_refuses_what_is_not_a_v1_header(data: bytes, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse(data)
