"""The server's Mailbox reads the dealer's folder on the real Dovecot: verified TLS, IDLE with a
poll fallback, batched BODY.PEEK[] fetches that leave mail unseen, UID MOVE, and MailboxError
with a hint for everything that goes wrong."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import uuid
from collections.abc import AsyncIterator

import aioimaplib
import aiosmtplib
import pytest

from fsm_common.configfile import Secret
from fsm_devtools.peers.mailstack import MailStack
from fsm_protocol.errors import ConfigError
from fsm_server.config import MailboxSection
from fsm_server.errors import MailboxError
from fsm_server.ingest.imap import Mailbox, translate_error

pytestmark = pytest.mark.mail


def _mailbox(stack: MailStack, **options: object) -> Mailbox:
    dealer = stack.users["dealer"]
    settings: dict[str, object] = {
        "user": dealer.address,
        "password": Secret(dealer.password),
        "security": "tls",
        "ca_file": stack.ca_file,
        "timeout": 10,
    }
    settings.update(options)
    port = stack.imaps_port if settings["security"] == "tls" else stack.imap_port
    return Mailbox(stack.host, int(settings.pop("port", port)), **settings)  # type: ignore[arg-type]


def _mail(n: int, *, tag: str = "m", size: int = 0) -> bytes:
    body = f"report {tag}{n}\r\n".encode() + b"x" * size
    head = (
        "From: client@fsm.test\r\nTo: dealer@fsm.test\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
        f"Message-ID: <{tag}{n}.{uuid.uuid4().hex}@fsm.test>\r\nSubject: {tag}{n}\r\n\r\n"
    )
    return head.encode() + body


async def _send(stack: MailStack, mails: list[bytes]) -> None:
    async with aiosmtplib.SMTP(hostname=stack.host, port=stack.smtp_port, start_tls=False) as smtp:
        for mail in mails:
            await smtp.sendmail("client@fsm.test", ["dealer@fsm.test"], mail)


async def _delivered(stack: MailStack, count: int) -> None:
    await asyncio.to_thread(stack.wait_for_messages, count)


@pytest.fixture
async def inbox(empty_dealer_mailbox: MailStack) -> AsyncIterator[Mailbox]:
    """A connected Mailbox on the dealer's empty INBOX (IMAPS, CA verified)."""
    mailbox = _mailbox(empty_dealer_mailbox)
    await mailbox.connect()
    yield mailbox
    await mailbox.aclose()


# --------------------------------------------------------------------------------------- connect
@pytest.mark.parametrize("security", ["tls", "starttls", "none"])
async def test_connects_over_imaps_starttls_or_plain_when_configured(
    empty_dealer_mailbox: MailStack, security: str
) -> None:
    stack = empty_dealer_mailbox
    mail = _mail(1)
    await _send(stack, [mail])
    await _delivered(stack, 1)
    async with _mailbox(stack, security=security) as mailbox:
        assert {"IDLE", "MOVE", "UIDPLUS"} <= mailbox.capabilities
        assert mailbox.uidvalidity
        [(_, raw)] = [item async for item in mailbox.fetch_new()]
    assert raw.endswith(mail)  # byte-exact below the Return-Path/Delivered-To/Received lines


@pytest.mark.parametrize("security", ["tls", "starttls"])
async def test_tls_is_verified_by_default_and_the_hint_names_ca_file(
    mail_stack: MailStack, security: str
) -> None:
    mailbox = _mailbox(mail_stack, security=security, ca_file=None)
    with pytest.raises(MailboxError) as unverified:
        await mailbox.connect()
    await mailbox.aclose()
    assert "failed verification against the system's CAs" in unverified.value.message
    assert "`ca_file`" in unverified.value.hint


async def test_a_wrong_password_is_refused_with_a_hint(mail_stack: MailStack) -> None:
    mailbox = _mailbox(mail_stack, password=Secret("wrong"))
    with pytest.raises(MailboxError) as refused:
        await mailbox.connect()
    await mailbox.aclose()
    assert "refused the login of 'dealer@fsm.test'" in refused.value.message
    assert "AUTHENTICATIONFAILED" in refused.value.message and "wrong" not in refused.value.message
    assert "password" in refused.value.hint


async def test_a_missing_folder_is_named(mail_stack: MailStack) -> None:
    mailbox = _mailbox(mail_stack, folder="Reports/None")
    with pytest.raises(MailboxError, match="cannot open folder 'Reports/None'") as missing:
        await mailbox.connect()
    await mailbox.aclose()
    assert "folder" in missing.value.hint


async def test_server_down_is_a_mailbox_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mailbox = Mailbox("127.0.0.1", port, user="dealer", password=Secret("x"), security="none", timeout=5)
    with pytest.raises(MailboxError, match="connection refused") as down:
        await mailbox.connect()
    await mailbox.aclose()
    assert "reconnects with backoff" in down.value.hint


async def test_a_silent_server_times_out(mail_stack: MailStack) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        mailbox = Mailbox(
            "127.0.0.1", silent.getsockname()[1], user="u", password=Secret("p"), security="none", timeout=0.5
        )
        with pytest.raises(MailboxError, match=r"did not answer within 0\.5 s"):
            await mailbox.connect()
        await mailbox.aclose()


def test_bad_settings_fail_at_construction(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="'ssl'"):
        Mailbox("h", 993, user="u", password=Secret("p"), security="ssl")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ca_file"):
        Mailbox("h", 993, user="u", password=Secret("p"), ca_file=tmp_path / "missing.pem")


def test_from_config_takes_a_mailboxes_section(mail_stack: MailStack) -> None:
    section = MailboxSection(
        host=mail_stack.host,
        port=mail_stack.imaps_port,
        user="dealer@fsm.test",
        password=Secret("dealer-pass"),
        ca_file=mail_stack.ca_file,
        folder="INBOX",
    )
    mailbox = Mailbox.from_config(section, max_message_bytes=1000)
    assert (mailbox.host, mailbox.port, mailbox.security, mailbox.ca_file) == (
        mail_stack.host,
        mail_stack.imaps_port,
        "tls",
        mail_stack.ca_file,
    )
    assert mailbox.max_message_bytes == 1000
    assert "dealer-pass" not in repr(mailbox) and "dealer-pass" not in repr(vars(mailbox))


# ----------------------------------------------------------------------------------------- fetch
async def test_fetch_new_yields_every_mail_in_batches_and_leaves_them_unseen(
    inbox: Mailbox, empty_dealer_mailbox: MailStack
) -> None:
    stack = empty_dealer_mailbox
    mails = [_mail(i) for i in range(25)]
    await _send(stack, mails)
    await _delivered(stack, 25)
    fetched = [item async for item in inbox.fetch_new(batch=10)]
    assert [uid for uid, _ in fetched] == sorted(uid for uid, _ in fetched)
    assert sorted(raw.split(b"\r\n\r\n", 1)[1] for _, raw in fetched) == sorted(
        m.split(b"\r\n\r\n", 1)[1] for m in mails
    )
    with stack.imap() as conn:
        conn.select("INBOX", readonly=True)
        assert len(conn.uid("SEARCH", "UNSEEN")[1][0].split()) == 25
    # Nothing moved: the same mails come again (the daemon moves only what it committed).
    assert [uid for uid, _ in [item async for item in inbox.fetch_new(batch=10)]] == [u for u, _ in fetched]


async def test_a_mail_over_the_size_limit_is_fetched_only_past_the_limit(
    empty_dealer_mailbox: MailStack,
) -> None:
    stack = empty_dealer_mailbox
    small_mail = _mail(2)
    await _send(stack, [_mail(1, size=300_000), small_mail])
    await _delivered(stack, 2)
    async with _mailbox(stack, max_message_bytes=100_000) as mailbox:
        small, big = sorted([raw async for _, raw in mailbox.fetch_new()], key=len)
    assert len(big) == 100_001  # the pipeline sees "too large" without the whole mail in memory
    assert small.endswith(small_mail)


# ------------------------------------------------------------------------------------------ move
async def test_move_puts_mail_in_fsm_processed_and_quarantine(
    inbox: Mailbox, empty_dealer_mailbox: MailStack
) -> None:
    stack = empty_dealer_mailbox
    await _send(stack, [_mail(i) for i in range(4)])
    await _delivered(stack, 4)
    uids = [uid async for uid, _ in inbox.fetch_new()]
    await inbox.move(uids[:3], "FSM/Processed")
    await inbox.move(uids[3:], "FSM/Quarantine")
    assert [u async for u, _ in inbox.fetch_new()] == []
    assert len(stack.messages(folder="FSM/Processed")) == 3
    assert len(stack.messages(folder="FSM/Quarantine")) == 1


async def test_move_without_the_move_extension_copies_deletes_and_expunges(
    inbox: Mailbox, empty_dealer_mailbox: MailStack
) -> None:
    stack = empty_dealer_mailbox
    await _send(stack, [_mail(i) for i in range(3)])
    await _delivered(stack, 3)
    uids = [uid async for uid, _ in inbox.fetch_new()]
    inbox.capabilities = inbox.capabilities - {"MOVE"}  # as on a server that lacks RFC 6851
    await inbox.move(uids, "FSM/Processed")
    assert stack.messages() == []
    assert len(stack.messages(folder="FSM/Processed")) == 3


async def test_two_sessions_moving_the_same_mail_neither_fail_nor_copy_it_twice(
    inbox: Mailbox, empty_dealer_mailbox: MailStack
) -> None:
    stack = empty_dealer_mailbox
    await _send(stack, [_mail(i) for i in range(20)])
    await _delivered(stack, 20)
    async with _mailbox(stack) as other:  # e.g. a second daemon on the same mailbox
        uids = [uid async for uid, _ in inbox.fetch_new()]
        assert [uid async for uid, _ in other.fetch_new()] == uids
        await inbox.move(uids[:15], "FSM/Processed")
        await other.move(uids, "FSM/Processed")  # 15 of them are gone already
    assert stack.messages() == []
    assert len(stack.messages(folder="FSM/Processed")) == 20


async def test_mail_moved_away_by_another_session_during_a_fetch_is_skipped(
    inbox: Mailbox, empty_dealer_mailbox: MailStack
) -> None:
    stack = empty_dealer_mailbox
    await _send(stack, [_mail(i) for i in range(9)])
    await _delivered(stack, 9)
    async with _mailbox(stack) as other:
        fetching = inbox.fetch_new(batch=3)
        await anext(fetching)  # the first batch of three is in hand
        await other.move([uid async for uid, _ in other.fetch_new()], "FSM/Processed")
        rest = [uid async for uid, _ in fetching]
    assert len(rest) == 2  # the rest of the first batch; the six moved meanwhile are skipped, no error
    assert len(stack.messages(folder="FSM/Processed")) == 9


async def test_move_creates_a_missing_folder(inbox: Mailbox, empty_dealer_mailbox: MailStack) -> None:
    stack = empty_dealer_mailbox
    folder = f"FSM/Test-{uuid.uuid4().hex[:8]}"
    await _send(stack, [_mail(1)])
    await _delivered(stack, 1)
    [uid] = [uid async for uid, _ in inbox.fetch_new()]
    try:
        await inbox.move([uid], folder)
        assert len(stack.messages(folder=folder)) == 1
    finally:
        with stack.imap() as conn:
            conn.delete(f'"{folder}"')


# ------------------------------------------------------------------------------------------ wait
async def test_idle_announces_mail_that_arrives_while_waiting(
    inbox: Mailbox, empty_dealer_mailbox: MailStack
) -> None:
    stack = empty_dealer_mailbox
    asyncio.get_running_loop().call_later(
        0.3, lambda: asyncio.ensure_future(_send(stack, [_mail(i) for i in range(3)]))
    )
    began = time.monotonic()
    assert await inbox.wait_for_new(10) is True
    waited = time.monotonic() - began
    assert 0.3 < waited < 5  # Dovecot pushes ~0.5 s after delivery
    await _delivered(stack, 3)
    assert len([u async for u, _ in inbox.fetch_new()]) == 3


async def test_wait_returns_false_after_the_timeout_when_nothing_arrives(inbox: Mailbox) -> None:
    began = time.monotonic()
    assert await inbox.wait_for_new(0.7) is False
    assert 0.6 < time.monotonic() - began < 3
    assert await inbox.wait_for_new(0.3) is False  # a second IDLE on the same connection


async def test_wait_returns_at_once_for_mail_that_came_since_the_last_fetch(
    inbox: Mailbox, empty_dealer_mailbox: MailStack
) -> None:
    stack = empty_dealer_mailbox
    await _send(stack, [_mail(1)])
    await _delivered(stack, 1)
    began = time.monotonic()
    assert await inbox.wait_for_new(10) is True
    assert time.monotonic() - began < 0.5
    assert len([u async for u, _ in inbox.fetch_new()]) == 1
    assert await inbox.wait_for_new(0.3) is False  # what was fetched is not "new" again


async def test_without_idle_a_noop_poll_finds_new_mail(empty_dealer_mailbox: MailStack) -> None:
    stack = empty_dealer_mailbox
    async with _mailbox(stack, use_idle=False, poll_interval=0.2) as mailbox:
        asyncio.get_running_loop().call_later(0.3, lambda: asyncio.ensure_future(_send(stack, [_mail(1)])))
        began = time.monotonic()
        assert await mailbox.wait_for_new(10) is True
        assert time.monotonic() - began < 3
        await _delivered(stack, 1)
        assert len([u async for u, _ in mailbox.fetch_new()]) == 1
        assert await mailbox.wait_for_new(0.5) is False  # polled, found nothing newer


async def test_a_server_side_disconnect_during_idle_is_a_mailbox_error(
    inbox: Mailbox, empty_dealer_mailbox: MailStack
) -> None:
    stack = empty_dealer_mailbox
    asyncio.get_running_loop().call_later(0.3, stack.kick, "dealer")
    began = time.monotonic()
    with pytest.raises(MailboxError, match=r"connection .* was lost") as lost:
        await inbox.wait_for_new(10)
    assert time.monotonic() - began < 5
    assert "reconnects" in lost.value.hint
    with pytest.raises(MailboxError, match="was lost"):
        [u async for u, _ in inbox.fetch_new()]
    await inbox.connect()  # what the daemon does next
    assert await inbox.wait_for_new(0.2) is False


async def test_cancelling_a_wait_leaves_the_connection_usable(
    inbox: Mailbox, empty_dealer_mailbox: MailStack
) -> None:
    stack = empty_dealer_mailbox
    waiting = asyncio.ensure_future(inbox.wait_for_new(30))
    await asyncio.sleep(0.3)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await _send(stack, [_mail(1)])
    await _delivered(stack, 1)
    assert len([u async for u, _ in inbox.fetch_new()]) == 1


# ---------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "make",
    [
        lambda: aioimaplib.Abort("command IDLE illegal in state LOGOUT"),
        lambda: aioimaplib.AioImapException("odd"),
        lambda: aioimaplib.CommandTimeout(aioimaplib.Command("NOOP", "A1")),
        lambda: aioimaplib.Error("server not IMAP4 compliant"),
        lambda: aioimaplib.IncompleteRead(aioimaplib.Command("FETCH", "A2")),
        lambda: ConnectionRefusedError(111, "Connection refused"),
        lambda: ConnectionResetError(104, "Connection reset by peer"),
        lambda: TimeoutError(),
        lambda: ssl.SSLCertVerificationError(1, "certificate verify failed"),
        lambda: ssl.SSLError(1, "wrong version number"),
    ],
    ids=[
        "Abort", "AioImapException", "CommandTimeout", "Error", "IncompleteRead", "ConnectionRefusedError",
        "ConnectionResetError", "TimeoutError", "SSLCertVerificationError", "SSLError",
    ],
)  # fmt: skip
async def test_every_library_error_becomes_a_mailbox_error_with_a_hint(make) -> None:  # type: ignore[no-untyped-def]
    mailbox = Mailbox("imap.example", 993, user="u", password=Secret("p"))
    error = translate_error(make(), mailbox, "fetching mail")  # aioimaplib's Command needs a running loop
    assert isinstance(error, MailboxError) and error.message and error.hint
    assert "imap.example" in error.message


def test_every_aioimaplib_error_class_is_covered() -> None:
    classes = {
        name
        for name, value in vars(aioimaplib).items()
        if isinstance(value, type) and issubclass(value, aioimaplib.AioImapException)
    }
    assert classes == {"Abort", "AioImapException", "CommandTimeout", "Error", "IncompleteRead"}
