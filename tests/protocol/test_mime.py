"""The report mail: build and parse round trip, headers an operator can read, refusals."""

from __future__ import annotations

import email
import email.message
import email.policy
from datetime import UTC, datetime

import pytest
from protocol_reports import realistic_report

from fsm_protocol.chunking import join, split
from fsm_protocol.envelope import open_envelope, seal
from fsm_protocol.errors import MalformedEnvelope, MimeError, NotFsmMail, TooLarge
from fsm_protocol.keys import EncryptionKey, SigningKey
from fsm_protocol.mime import build_message, parse_message

NOW = datetime(2026, 3, 1, 6, 5, tzinfo=UTC)
ADDRS = {"from_addr": "fsm@acme.example", "to_addr": "dealer@fsm.test"}


@pytest.fixture(scope="module")
def envelope(signing_key: SigningKey, encryption_key: EncryptionKey) -> bytes:
    return seal(
        realistic_report(5, seq=42), signing_key=signing_key, server_key=encryption_key.public, now=NOW
    )


def test_mail_round_trips_the_envelope(
    envelope: bytes, signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    mail = parse_message(build_message(envelope, now=NOW, **ADDRS))
    assert mail.envelope == envelope
    assert (mail.client_id, mail.seq, mail.kind, mail.chunk_index, mail.chunk_count) == (
        "acme-hq",
        42,
        "periodic",
        1,
        1,
    )
    assert mail.message_id is not None and mail.message_id.startswith("<fsm.acme-hq.42.1of1.")
    report = open_envelope(mail.envelope, verify_key=signing_key.public, encryption_key=encryption_key)
    assert report.seq == 42


def test_mail_reads_at_a_glance(envelope: bytes) -> None:
    raw = build_message(envelope, now=NOW, **ADDRS)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # SMTP line ends throughout
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == "fsm periodic report acme-hq #42"
    assert (msg["X-Fsm-Client"], msg["X-Fsm-Seq"], msg["X-Fsm-Kind"], msg["X-Fsm-Chunk"]) == (
        "acme-hq",
        "42",
        "periodic",
        "1/1",
    )
    assert msg["Date"] == "Sun, 01 Mar 2026 06:05:00 +0000"
    text, attachment = list(msg.iter_parts())
    assert "Sequence: 42" in text.get_content()
    assert attachment.get_content_type() == "application/octet-stream"
    assert attachment.get_filename() == "acme-hq-42-1of1.fsm"


def test_building_the_same_envelope_twice_gives_the_same_message_id(envelope: bytes) -> None:
    ids = {parse_message(build_message(envelope, **ADDRS)).message_id for _ in range(2)}
    assert len(ids) == 1
    given = parse_message(build_message(envelope, message_id="<x@y>", **ADDRS))
    assert given.message_id == "<x@y>"


def test_chunked_report_travels_as_one_mail_per_chunk(
    envelope: bytes, signing_key: SigningKey, encryption_key: EncryptionKey
) -> None:
    mails = [build_message(c, now=NOW, **ADDRS) for c in split(envelope, 600)]
    assert len(mails) > 1
    parsed = [parse_message(m) for m in reversed(mails)]
    assert sorted(p.chunk_index for p in parsed) == list(range(1, len(mails) + 1))
    assert {p.chunk_count for p in parsed} == {len(mails)}
    assert b"(part 2 of" in mails[1]
    joined = join(p.envelope for p in parsed)
    report = open_envelope(joined, verify_key=signing_key.public, encryption_key=encryption_key)
    assert len(report.devices) == 5


def test_oversize_mail_is_refused_before_parsing(envelope: bytes) -> None:
    with pytest.raises(TooLarge, match="over the limit of 10"):
        parse_message(b"x" * 11, max_bytes=10)


def test_an_ordinary_mail_is_not_fsm_mail() -> None:
    raw = b"From: a@b\r\nTo: c@d\r\nSubject: lunch?\r\n\r\nAt noon.\r\n"
    with pytest.raises(NotFsmMail):
        parse_message(raw)


def test_fsm_headers_without_an_attachment_are_a_mime_error(envelope: bytes) -> None:
    raw = build_message(envelope, **ADDRS)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    msg.set_payload(msg.get_payload()[:1])  # what an attachment-stripping filter leaves
    with pytest.raises(MimeError, match="no envelope attachment"):
        parse_message(msg.as_bytes())


def test_damaged_base64_is_a_mime_error(envelope: bytes) -> None:
    raw = build_message(envelope, **ADDRS)
    assert b"\r\niUZTT" in raw  # the magic, base64-encoded, starts the attachment
    with pytest.raises(MimeError, match="base64"):
        parse_message(raw.replace(b"\r\niUZTT", b"\r\n!!ZTT"))


def test_headers_that_disagree_with_the_envelope_are_a_mime_error(envelope: bytes) -> None:
    raw = build_message(envelope, **ADDRS).replace(b"X-Fsm-Seq: 42", b"X-Fsm-Seq: 43")
    with pytest.raises(MimeError, match="X-Fsm-Seq: '43'"):
        parse_message(raw)


def test_an_attachment_named_fsm_that_is_no_envelope_is_malformed(envelope: bytes) -> None:
    msg = email.message.EmailMessage()
    msg["Subject"] = "looks like fsm"
    msg.set_content("hello")
    msg.add_attachment(
        b"PK\x03\x04 a zip file",
        maintype="application",
        subtype="octet-stream",
        filename="acme-hq-1-1of1.fsm",
    )
    with pytest.raises(MalformedEnvelope, match="not an fsm envelope"):
        parse_message(msg.as_bytes())


def test_build_refuses_bytes_that_are_no_envelope(envelope: bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        build_message(envelope[:-10], **ADDRS)
