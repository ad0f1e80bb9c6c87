"""The sweep's BER codec: what it encodes pysnmp (pyasn1) decodes, what pysnmp encodes it
decodes, and garbage only ever raises BerError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from fsm_client.snmp import ber
from fsm_client.snmp.source import SnmpValue

OIDS = ["1.3.6.1.2.1.1.2.0", "1.3.6.1.2.1.1.1.0", "1.3.6.1.4.1.2435.2.3.9.4.2.1.5.5.8.0", "2.999.1"]


@pytest.mark.parametrize("version", [0, 1])
def test_a_get_template_is_read_by_pysnmp_with_the_patched_request_id(version: int) -> None:
    template = ber.RequestTemplate.get(version=version, community=b"pub\x00lic", oids=OIDS)
    for rid in (ber.MIN_REQUEST_ID, 0x12345678, ber.MAX_REQUEST_ID):
        proto = api.PROTOCOL_MODULES[version]
        msg, rest = decoder.decode(template.render(rid), asn1Spec=proto.Message())
        assert rest == b""
        pdu = proto.apiMessage.get_pdu(msg)
        assert int(proto.apiPDU.get_request_id(pdu)) == rid
        assert bytes(proto.apiMessage.get_community(msg)) == b"pub\x00lic"
        assert [str(o) for o, _ in proto.apiPDU.get_varbinds(pdu)] == OIDS


def test_request_ids_outside_four_bytes_are_refused() -> None:
    template = ber.RequestTemplate.get(version=1, community=b"x", oids=OIDS[:1])
    for rid in (0, ber.MIN_REQUEST_ID - 1, ber.MAX_REQUEST_ID + 1):
        with pytest.raises(ValueError, match="four-byte"):
            template.render(rid)


def test_a_pysnmp_response_decodes_with_every_value_type() -> None:
    proto = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
    values = [
        proto.Integer(-5),
        proto.OctetString(b"\xff\x00abc"),
        proto.ObjectIdentifier("1.3.6.1.4.1.11"),
        proto.IpAddress("10.1.2.3"),
        proto.Counter32(4294967295),
        proto.Gauge32(7),
        proto.TimeTicks(99),
        proto.Opaque(b"\x9f\x78\x04"),
        proto.Counter64(2**64 - 1),
        proto.Null(""),
    ]
    pdu = proto.GetResponsePDU()
    proto.apiPDU.set_defaults(pdu)
    proto.apiPDU.set_request_id(pdu, 0x7654321)
    proto.apiPDU.set_varbinds(pdu, [(f"1.3.6.1.9.{i}", v) for i, v in enumerate(values)])
    msg = proto.Message()
    proto.apiMessage.set_defaults(msg)
    proto.apiMessage.set_community(msg, "c")
    proto.apiMessage.set_pdu(msg, pdu)
    got = ber.decode_message(encoder.encode(msg))
    assert (got.version, got.community, got.pdu_type, got.request_id) == (1, b"c", ber.RESPONSE, 0x7654321)
    assert [v for _, v in got.varbinds] == [
        SnmpValue("integer", -5),
        SnmpValue("octets", b"\xff\x00abc"),
        SnmpValue("oid", "1.3.6.1.4.1.11"),
        SnmpValue("ipaddress", "10.1.2.3"),
        SnmpValue("counter32", 4294967295),
        SnmpValue("gauge32", 7),
        SnmpValue("timeticks", 99),
        SnmpValue("opaque", b"\x9f\x78\x04"),
        SnmpValue("counter64", 2**64 - 1),
        SnmpValue("null", None),
    ]


def test_varbind_exceptions_decode_as_absent() -> None:
    raw = ber.encode_message(
        version=1,
        community=b"c",
        pdu_type=ber.RESPONSE,
        request_id=ber.MIN_REQUEST_ID,
        varbinds=[
            ("1.3.6.1.2.1.1.1.0", ber.NO_SUCH_OBJECT),
            ("1.3.6.1.2.1.1.2.0", ber.NO_SUCH_INSTANCE),
            ("1.3.6.1.2.1.1.3.0", ber.END_OF_MIB_VIEW),
        ],
    )
    assert [v for _, v in ber.decode_message(raw).varbinds] == [None, None, None]


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x30",
        b"\x30\x84\xff\xff\xff\xff",
        b"\x30\x03\x02\x01\x05",  # version 5
        b"\x30\x80\x00\x00",  # indefinite length
        ber.RequestTemplate.get(version=1, community=b"c", oids=OIDS).render(ber.MIN_REQUEST_ID)[:-3],
        ber.RequestTemplate.get(version=1, community=b"c", oids=OIDS).render(ber.MIN_REQUEST_ID) + b"\x00",
    ],
)
def test_malformed_messages_raise_ber_error(garbage: bytes) -> None:
    with pytest.raises(ber.BerError):
        ber.decode_message(garbage)
    assert not ber.is_framed(garbage) or garbage.startswith(b"\x30\x03")


GOOD = ber.encode_message(
    version=1,
    community=b"public",
    pdu_type=ber.RESPONSE,
    request_id=0x1234567,
    varbinds=[
        ("1.3.6.1.2.1.1.1.0", SnmpValue("octets", b"HP LaserJet")),
        ("1.3.6.1.2.1.1.2.0", SnmpValue("oid", "1.3.6.1.4.1.11.2.3.9.1")),
        ("1.3.6.1.2.1.1.3.0", SnmpValue("timeticks", 12345)),
        ("1.3.6.1.2.1.4.20.1.1.10.0.0.5", SnmpValue("ipaddress", "10.0.0.5")),
    ],
)


@given(
    st.one_of(
        st.binary(max_size=300),
        st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=4).map(
            lambda edits: bytes(dict(edits).get(i, b) for i, b in enumerate(GOOD))
        ),
        st.integers(0, len(GOOD) - 1).map(lambda n: GOOD[:n]),
    )
)
def test_garbage_and_damaged_answers_raise_only_ber_error(data: bytes) -> None:
    with contextlib.suppress(ber.BerError):
        ber.decode_message(data)
    ber.is_framed(data)


@given(
    st.lists(st.integers(min_value=0, max_value=2**32), min_size=1, max_size=12),
    st.sampled_from([0, 1, 2]),
    st.integers(min_value=0, max_value=39),
)
def test_oids_round_trip(arcs: list[int], first: int, second: int) -> None:
    oid = ".".join(map(str, [first, second, *arcs]))
    assert ber.decode_oid_content(ber.encode_oid_content(oid)) == oid


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_integers_round_trip_in_minimal_form(v: int) -> None:
    content = ber.encode_int_content(v)
    assert ber.decode_int_content(content) == v
    assert len(content) == 1 or not (content[0] == 0 and content[1] < 0x80)


@pytest.mark.parametrize("version", [0, 1])
def test_message_id_is_the_request_id_of_a_v1_v2c_message(version: int) -> None:
    msg = ber.encode_message(
        version=version,
        community=b"public",
        pdu_type=ber.RESPONSE,
        request_id=123456789,
        varbinds=[("1.3.6.1.2.1.1.5.0", SnmpValue("octets", b"x"))],
    )
    assert ber.message_id(msg) == 123456789


def test_message_id_is_the_msgid_of_a_v3_message() -> None:
    assert ber.message_id(ber.RequestTemplate.v3_discovery().render(0x01ABCDEF)) == 0x01ABCDEF


@given(st.binary(max_size=64))
def test_message_id_of_garbage_raises_only_ber_error(data: bytes) -> None:
    with contextlib.suppress(ber.BerError):
        ber.message_id(data)
