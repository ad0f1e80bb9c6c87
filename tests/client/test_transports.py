"""Transports hand sealed report mails to the real Postfix relay, or drop them into a folder.

SMTP tests run against the project's Postfix + Dovecot stack; the relay's refusals reach the
operator as TransportError (permanent) or TransientTransportError (retry) in plain words.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
import pytest

from fsm_client.errors import TransientTransportError, TransportError
from fsm_client.transports import FileDropTransport, SmtpTransport, Transport
from fsm_client.transports.filedrop import FINAL_NAME_RE, TEMP_PREFIX, TEMP_SUFFIX
from fsm_common.configfile import Secret
from fsm_common.smtp import translate_error
from fsm_devtools.peers.mailstack import MailStack
from fsm_protocol.envelope import seal
from fsm_protocol.errors import ConfigError
from fsm_protocol.keys import (
    generate_client_keys,
    generate_server_keys,
    load_server_public_key,
    load_signing_key,
)
from fsm_protocol.mime import build_message, parse_message
from fsm_protocol.schema import Report

DEALER = "dealer@fsm.test"
SENDER = "client@fsm.test"


@pytest.fixture(scope="module")
def report_mail(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A function seq -> a real report mail (sealed envelope as attachment), as the client sends it."""
    keys = tmp_path_factory.mktemp("keys")
    signing_key = load_signing_key(generate_client_keys(keys)[0])
    server_key = load_server_public_key(generate_server_keys(keys)[1])

    def make(seq: int) -> bytes:
        report = Report(client_id="acme-hq", seq=seq, kind="periodic", created_at=datetime.now(UTC))
        envelope = seal(report, signing_key=signing_key, server_key=server_key)
        return build_message(envelope, from_addr=SENDER, to_addr=DEALER)

    return make


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _submission(stack: MailStack, **overrides: object) -> SmtpTransport:
    client = stack.users["client"]
    options: dict[str, object] = {
        "security": "starttls",
        "username": client.address,
        "password": Secret(client.password),
        "ca_file": stack.ca_file,
        "timeout": 10,
    }
    options.update(overrides)
    return SmtpTransport(stack.host, stack.submission_port, **options)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ SMTP
@pytest.mark.mail
async def test_three_report_mails_over_smtp_arrive_byte_exact(empty_dealer_mailbox: MailStack, report_mail):  # type: ignore[no-untyped-def]
    stack = empty_dealer_mailbox
    mails = [report_mail(seq) for seq in (1, 2, 3)]
    async with SmtpTransport(stack.host, stack.smtp_port, security="none") as transport:
        answers = [await transport.send(m, mail_from=SENDER, rcpt_to=[DEALER]) for m in mails]
    assert all(a.startswith("250 2.0.0 Ok: queued as ") for a in answers)
    arrived = await asyncio.to_thread(stack.wait_for_messages, 3)
    by_seq = {parse_message(raw).seq: raw for _, raw in arrived}
    assert sorted(by_seq) == [1, 2, 3]
    for seq, sent in zip((1, 2, 3), mails, strict=True):
        # Postfix adds Return-Path, Delivered-To and Received on top; the mail itself is unchanged.
        assert by_seq[seq].endswith(sent)


@pytest.mark.mail
async def test_submission_with_starttls_and_auth_verifies_the_relay_and_delivers(
    empty_dealer_mailbox: MailStack, report_mail
) -> None:  # type: ignore[no-untyped-def]
    stack = empty_dealer_mailbox
    async with _submission(stack) as transport:
        for seq in (4, 5, 6):
            await transport.send(report_mail(seq), mail_from=SENDER, rcpt_to=[DEALER])
    arrived = await asyncio.to_thread(stack.wait_for_messages, 3)
    assert sorted(parse_message(raw).seq for _, raw in arrived) == [4, 5, 6]
    assert all(b"ESMTPSA" in raw for _, raw in arrived)  # Received: says TLS + authenticated


@pytest.mark.mail
async def test_implicit_tls_with_auth_delivers(empty_dealer_mailbox: MailStack, report_mail) -> None:  # type: ignore[no-untyped-def]
    stack = empty_dealer_mailbox
    client = stack.users["client"]
    transport = SmtpTransport(
        stack.host,
        stack.smtps_port,
        security="tls",
        username=client.address,
        password=Secret(client.password),
        ca_file=stack.ca_file,
    )
    async with transport:
        await transport.send(report_mail(7), mail_from=SENDER, rcpt_to=[DEALER])
    [(_, raw)] = await asyncio.to_thread(stack.wait_for_messages, 1)
    assert parse_message(raw).seq == 7


@pytest.mark.mail
async def test_submission_without_login_is_refused_in_plain_words(mail_stack: MailStack, report_mail) -> None:  # type: ignore[no-untyped-def]
    async with _submission(mail_stack, username=None, password=None) as transport:
        with pytest.raises(TransportError) as refused:
            await transport.send(report_mail(8), mail_from=SENDER, rcpt_to=[DEALER])
    assert not isinstance(refused.value, TransientTransportError)
    assert "refused every recipient" in refused.value.message and "554" in refused.value.message
    assert "set [smtp] username and password" in refused.value.hint


@pytest.mark.mail
async def test_bad_password_is_refused_in_plain_words(mail_stack: MailStack, report_mail) -> None:  # type: ignore[no-untyped-def]
    async with _submission(mail_stack, password=Secret("wrong")) as transport:
        with pytest.raises(TransportError) as refused:
            await transport.send(report_mail(9), mail_from=SENDER, rcpt_to=[DEALER])
    error = refused.value
    assert not isinstance(error, TransientTransportError)
    assert "refused the login of 'client@fsm.test'" in error.message and "535" in error.message
    assert "wrong" not in error.message
    assert error.hint == "check [smtp] username and password"


@pytest.mark.mail
async def test_unknown_recipient_is_a_permanent_error_quoting_the_relay(
    mail_stack: MailStack, report_mail
) -> None:  # type: ignore[no-untyped-def]
    async with SmtpTransport(mail_stack.host, mail_stack.smtp_port, security="none") as transport:
        with pytest.raises(TransportError) as refused:
            await transport.send(report_mail(10), mail_from=SENDER, rcpt_to=["nobody@fsm.test"])
    assert not isinstance(refused.value, TransientTransportError)
    assert "550 5.1.1 <nobody@fsm.test>: Recipient address rejected" in refused.value.message
    assert "[smtp] to" in refused.value.hint


@pytest.mark.mail
async def test_a_mail_some_recipients_accept_is_sent_and_names_the_others(
    empty_dealer_mailbox: MailStack, report_mail
) -> None:  # type: ignore[no-untyped-def]
    stack = empty_dealer_mailbox
    async with SmtpTransport(stack.host, stack.smtp_port, security="none") as transport:
        answer = await transport.send(report_mail(11), mail_from=SENDER, rcpt_to=[DEALER, "nobody@fsm.test"])
    assert "refused: nobody@fsm.test: 550" in answer
    await asyncio.to_thread(stack.wait_for_messages, 1)


async def test_relay_down_is_transient(report_mail) -> None:  # type: ignore[no-untyped-def]
    async with SmtpTransport("127.0.0.1", _free_port(), security="none", timeout=5) as transport:
        with pytest.raises(TransientTransportError) as down:
            await transport.send(report_mail(12), mail_from=SENDER, rcpt_to=[DEALER])
    assert "connection refused" in down.value.message
    assert "retried" in down.value.hint


async def test_a_relay_that_never_greets_times_out_as_transient(report_mail) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        async with SmtpTransport("127.0.0.1", port, security="none", timeout=0.5) as transport:
            with pytest.raises(TransientTransportError) as slow:
                await transport.send(report_mail(13), mail_from=SENDER, rcpt_to=[DEALER])
    assert "timeout=0.5 s" in slow.value.message


@pytest.mark.mail
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_tls_is_verified_by_default_and_the_hint_names_ca_file(
    mail_stack: MailStack, report_mail, security: str
) -> None:  # type: ignore[no-untyped-def]
    port = mail_stack.submission_port if security == "starttls" else mail_stack.smtps_port
    client = mail_stack.users["client"]
    transport = SmtpTransport(
        mail_stack.host, port, security=security, username=client.address, password=Secret(client.password)
    )  # type: ignore[arg-type]
    async with transport:
        with pytest.raises(TransportError) as unverified:
            await transport.send(report_mail(14), mail_from=SENDER, rcpt_to=[DEALER])
    assert "failed verification against the system's CAs" in unverified.value.message
    assert "`ca_file`" in unverified.value.hint


@pytest.mark.mail
async def test_starttls_is_required_not_optional(mail_stack: MailStack, report_mail, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A plain listener that offers no STARTTLS must not get the mail in clear text.
    handlers: list[asyncio.Task[None]] = []

    async def no_starttls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        try:
            writer.write(b"220 plain ESMTP\r\n")
            while line := await reader.readline():
                if line.upper().startswith((b"EHLO", b"HELO")):
                    writer.write(b"250-plain\r\n250 8BITMIME\r\n")
                else:
                    writer.write(b"502 no\r\n")
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(no_starttls, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        transport = SmtpTransport("127.0.0.1", port, security="starttls", ca_file=mail_stack.ca_file)
        async with transport:
            with pytest.raises(TransportError) as refused:
                await transport.send(report_mail(15), mail_from=SENDER, rcpt_to=[DEALER])
        await asyncio.gather(*handlers)
    assert "STARTTLS" in refused.value.message and 'security = "tls"' in refused.value.hint


@pytest.mark.mail
async def test_implicit_tls_against_a_starttls_port_names_the_security_setting(
    mail_stack: MailStack, report_mail
) -> None:  # type: ignore[no-untyped-def]
    transport = SmtpTransport(
        mail_stack.host, mail_stack.submission_port, security="tls", ca_file=mail_stack.ca_file
    )
    async with transport:
        with pytest.raises(TransportError) as wrong:
            await transport.send(report_mail(16), mail_from=SENDER, rcpt_to=[DEALER])
    assert not isinstance(wrong.value, TransientTransportError)  # retrying cannot fix a setting
    assert "TLS with the relay" in wrong.value.message and "security" in wrong.value.hint


@pytest.mark.mail
async def test_starttls_against_an_implicit_tls_port_times_out_with_a_hint(
    mail_stack: MailStack, report_mail
) -> None:  # type: ignore[no-untyped-def]
    transport = SmtpTransport(mail_stack.host, mail_stack.smtps_port, ca_file=mail_stack.ca_file, timeout=0.5)
    async with transport:
        with pytest.raises(TransientTransportError) as silent:
            await transport.send(report_mail(17), mail_from=SENDER, rcpt_to=[DEALER])
    assert 'security = "tls"' in silent.value.hint


def test_configuration_mistakes_fail_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'ssl'"):
        SmtpTransport("relay", 25, security="ssl")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ca_file"):
        SmtpTransport("relay", 587, ca_file=tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(ConfigError, match="no usable PEM"):
        SmtpTransport("relay", 587, ca_file=tmp_path / "junk.pem")
    with pytest.raises(ConfigError, match="password"):
        SmtpTransport("relay", 587, username="fsm")


def test_the_password_never_shows_in_repr() -> None:
    transport = SmtpTransport("relay", 587, username="fsm", password=Secret("hunter2"))
    assert "hunter2" not in repr(transport) and "hunter2" not in repr(vars(transport))


@pytest.mark.parametrize(
    "exc",
    [
        aiosmtplib.SMTPAuthenticationError(535, "5.7.8 authentication failed"),
        aiosmtplib.SMTPConnectError("Error connecting"),
        aiosmtplib.SMTPConnectResponseError(554, "go away"),
        aiosmtplib.SMTPConnectTimeoutError("timed out"),
        aiosmtplib.SMTPDataError(552, "5.3.4 Message size exceeds fixed limit"),
        aiosmtplib.SMTPException("odd"),
        aiosmtplib.SMTPHeloError(501, "bad helo"),
        aiosmtplib.SMTPNotSupported("SMTP AUTH extension not supported by server."),
        aiosmtplib.SMTPReadTimeoutError("timed out"),
        aiosmtplib.SMTPRecipientRefused(550, "user unknown", "x@fsm.test"),
        aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(450, "try later", "x@fsm.test")]),
        aiosmtplib.SMTPResponseException(421, "shutting down"),
        aiosmtplib.SMTPSenderRefused(553, "bad sender", "c@fsm.test"),
        aiosmtplib.SMTPServerDisconnected("gone"),
        aiosmtplib.SMTPTimeoutError("timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_aiosmtplib_error_becomes_a_transport_error_with_a_hint(exc: Exception) -> None:
    error = translate_error(exc, SmtpTransport("relay.example", 587))
    assert isinstance(error, TransportError) and error.message and error.hint
    code = getattr(exc, "code", None) or min((r.code for r in getattr(exc, "recipients", [])), default=None)
    transient = (code is not None and 400 <= code < 500) or isinstance(
        exc, (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError)
    )
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        transient = False  # a 5xx greeting is a refusal, not an outage
    assert isinstance(error, TransientTransportError) == transient


def test_every_aiosmtplib_error_class_is_covered() -> None:
    covered = {
        "SMTPAuthenticationError", "SMTPConnectError", "SMTPConnectResponseError", "SMTPConnectTimeoutError",
        "SMTPDataError", "SMTPException", "SMTPHeloError", "SMTPNotSupported", "SMTPReadTimeoutError",
        "SMTPRecipientRefused", "SMTPRecipientsRefused", "SMTPResponseException", "SMTPSenderRefused",
        "SMTPServerDisconnected", "SMTPTimeoutError",
    }  # fmt: skip
    assert set(aiosmtplib.errors.__all__) == covered


def test_transports_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(SmtpTransport("relay", 587), Transport)
    assert isinstance(FileDropTransport(tmp_path), Transport)


# ------------------------------------------------------------------------------------- file drop
async def test_file_drop_writes_the_mail_under_its_report_name(tmp_path: Path, report_mail) -> None:  # type: ignore[no-untyped-def]
    mail = report_mail(42)
    async with FileDropTransport(tmp_path) as drop:
        written = await drop.send(mail, mail_from=SENDER, rcpt_to=[DEALER])
    assert written == str(tmp_path / "acme-hq-42-1of1.eml")
    assert Path(written).read_bytes() == mail
    assert os.listdir(tmp_path) == ["acme-hq-42-1of1.eml"]  # no temporary file left behind


async def test_file_drop_into_a_missing_folder_is_transient(tmp_path: Path, report_mail) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TransientTransportError) as missing:
        await FileDropTransport(tmp_path / "stick").send(report_mail(1))
    assert str(tmp_path / "stick") in missing.value.message
    assert "[filedrop] directory" in missing.value.hint


async def test_file_drop_refuses_a_mail_without_fsm_headers(tmp_path: Path) -> None:
    with pytest.raises(TransportError, match="X-Fsm headers"):
        await FileDropTransport(tmp_path).send(b"Subject: hello\r\nX-Fsm-Client: ../../etc\r\n\r\nhi\r\n")
    assert os.listdir(tmp_path) == []


def test_temporary_names_never_look_like_report_files() -> None:
    assert FINAL_NAME_RE.fullmatch("acme-hq-42-1of3.eml")
    for _ in range(200):
        temp = f"{TEMP_PREFIX}{os.urandom(8).hex()}{TEMP_SUFFIX}"
        assert not FINAL_NAME_RE.fullmatch(temp) and not temp.endswith(".eml")


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from fsm_client.transports.filedrop import FileDropTransport

    directory, size = Path(sys.argv[1]), int(sys.argv[2])
    drop = FileDropTransport(directory)
    seq = 0
    while True:
        seq += 1
        head = f"X-Fsm-Client: acme-hq\\r\\nX-Fsm-Seq: {seq}\\r\\nX-Fsm-Chunk: 1/1\\r\\n\\r\\n".encode()
        drop.write(f"acme-hq-{seq}-1of1.eml", head + bytes([seq % 251]) * size)
        print(seq, flush=True)
    """
)


@pytest.mark.slow
def test_file_drop_never_shows_a_partial_file_when_killed(tmp_path: Path) -> None:
    """kill -9 a writer of 2 MB files at random moments, 20 times; a watcher lists the folder all along."""
    size = 2 * 1024 * 1024

    def content(seq: int) -> bytes:
        head = f"X-Fsm-Client: acme-hq\r\nX-Fsm-Seq: {seq}\r\nX-Fsm-Chunk: 1/1\r\n\r\n".encode()
        return head + bytes([seq % 251]) * size

    whole_size = {seq: len(content(seq)) for seq in range(1, 1000)}
    rng = random.Random(1234)
    partial_seen: list[str] = []
    complete = 0
    for trial in range(20):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        stop = threading.Event()

        def watch(folder: Path = folder, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                for name in os.listdir(folder):
                    if FINAL_NAME_RE.fullmatch(name):
                        seq = int(name.split("-")[2])
                        try:
                            got = (folder / name).stat().st_size
                        except FileNotFoundError:
                            continue
                        if got != whole_size[seq]:
                            partial_seen.append(f"{name}: {got} bytes")

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(folder), str(size)],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parents[2],
        )
        assert writer.stdout is not None
        writer.stdout.readline()  # one file is done: now the writer is in full swing
        time.sleep(rng.uniform(0.0, 0.15))
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        writer.stdout.close()
        stop.set()
        watcher.join()
        for name in os.listdir(folder):
            if name.startswith(TEMP_PREFIX):
                assert not FINAL_NAME_RE.fullmatch(name)
                continue
            assert FINAL_NAME_RE.fullmatch(name), name
            seq = int(name.split("-")[2])
            assert (folder / name).read_bytes() == content(seq), name
            complete += 1
    assert partial_seen == []
    assert complete >= 20  # every trial got at least one whole file out before the kill
