"""The project's private Postfix + Dovecot stack does what the client and server rely on.

These tests speak to the stack with the libraries directly (aiosmtplib, aioimaplib, imaplib):
they check the peer, not fsm's transports.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import aioimaplib
import aiosmtplib
import pytest

from fsm_devtools.peers import procs
from fsm_devtools.peers.mailstack import MailStack, MailStackError, offset_from_env

pytestmark = pytest.mark.mail


def _mail(subject: str, *, sender: str = "client@fsm.test", to: str = "dealer@fsm.test") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(f"body of {subject}\n")
    return msg


async def _imaps(stack: MailStack, user: str = "dealer") -> aioimaplib.IMAP4_SSL:
    account = stack.users[user]
    imap = aioimaplib.IMAP4_SSL(stack.host, stack.imaps_port, ssl_context=stack.ssl_context(), timeout=10)
    await imap.wait_hello_from_server()
    response = await imap.login(account.address, account.password)
    assert response.result == "OK", response
    return imap


def _subjects(messages: list[tuple[int, bytes]]) -> list[str]:
    return sorted(m.group(1).decode() for _, raw in messages if (m := re.search(rb"Subject: (.*)\r\n", raw)))


async def test_mail_sent_over_smtp_and_submission_is_seen_over_verified_imaps(
    empty_dealer_mailbox: MailStack,
) -> None:
    stack = empty_dealer_mailbox
    async with aiosmtplib.SMTP(hostname=stack.host, port=stack.smtp_port, start_tls=False) as smtp:
        for i in range(3):
            await smtp.send_message(_mail(f"smtp {i}"))
    client = stack.users["client"]
    async with aiosmtplib.SMTP(
        hostname=stack.host,
        port=stack.submission_port,
        start_tls=True,
        tls_context=stack.ssl_context(),
        username=client.address,
        password=client.password,
    ) as smtp:
        for i in range(3):
            await smtp.send_message(_mail(f"submission {i}"))

    found = await asyncio.to_thread(stack.wait_for_messages, 6)
    assert _subjects(found) == [f"smtp {i}" for i in range(3)] + [f"submission {i}" for i in range(3)]
    imap = await _imaps(stack)  # certificate verified against the stack's CA
    try:
        await imap.select("INBOX")
        response = await imap.uid_search("ALL")
        assert len(response.lines[0].split()) == 6
    finally:
        await imap.logout()


async def test_imaps_refuses_a_client_that_does_not_trust_the_test_ca(mail_stack: MailStack) -> None:
    context = ssl.create_default_context()  # system CAs only
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.to_thread(
            lambda: context.wrap_socket(
                socket.create_connection((mail_stack.host, mail_stack.imaps_port), timeout=5),
                server_hostname=mail_stack.host,
            )
        )


async def test_idle_announces_new_mail_within_a_second(empty_dealer_mailbox: MailStack) -> None:
    stack = empty_dealer_mailbox
    imap = await _imaps(stack)
    try:
        await imap.select("INBOX")
        idle = await imap.idle_start(timeout=30)
        async with aiosmtplib.SMTP(hostname=stack.host, port=stack.smtp_port, start_tls=False) as smtp:
            sent = time.monotonic()
            for i in range(3):
                await smtp.send_message(_mail(f"idle {i}"))
        # Dovecot delays change notifications by 0.5 s and coalesces them: EXISTS means "something
        # changed", and the UID SEARCH after it tells what.
        exists: list[bytes] = []
        while not exists:
            push = await imap.wait_server_push(timeout=5)
            lines = push if isinstance(push, list) else [push]
            exists = [line for line in lines if isinstance(line, bytes) and line.endswith(b"EXISTS")]
        announced_after = time.monotonic() - sent
        imap.idle_done()
        await asyncio.wait_for(idle, 5)
        deadline = time.monotonic() + 5
        while True:
            uids = (await imap.uid_search("ALL")).lines[0].split()
            if len(uids) == 3 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert len(uids) == 3
        assert announced_after < 3.0
    finally:
        await imap.logout()


async def test_uid_move_puts_the_mail_in_fsm_processed(empty_dealer_mailbox: MailStack) -> None:
    stack = empty_dealer_mailbox
    async with aiosmtplib.SMTP(hostname=stack.host, port=stack.smtp_port, start_tls=False) as smtp:
        await smtp.send_message(_mail("to be moved"))
    [(uid, _)] = await asyncio.to_thread(stack.wait_for_messages, 1)
    imap = await _imaps(stack)
    try:
        await imap.select("INBOX")
        response = await imap.uid("move", str(uid), "FSM/Processed")
        assert response.result == "OK"
        assert any(b"COPYUID" in line for line in response.lines if isinstance(line, bytes))
    finally:
        await imap.logout()
    assert stack.messages() == []
    assert _subjects(stack.messages(folder="FSM/Processed")) == ["to be moved"]


def test_body_peek_leaves_the_mail_unseen(empty_dealer_mailbox: MailStack) -> None:
    stack = empty_dealer_mailbox
    asyncio.run(_send_plain(stack, _mail("peeked")))
    stack.wait_for_messages(1)  # fetched with BODY.PEEK[]
    with stack.imap() as conn:
        conn.select("INBOX", readonly=True)
        typ, data = conn.uid("SEARCH", "UNSEEN")
        assert typ == "OK" and len(data[0].split()) == 1


def test_fsm_folders_exist_and_are_subscribed_for_every_user(mail_stack: MailStack) -> None:
    for user in mail_stack.users:
        with mail_stack.imap(user) as conn:
            typ, data = conn.lsub()
            assert typ == "OK"
            subscribed = {line.decode().rsplit(" ", 1)[-1].strip('"') for line in data if line}
            assert {"FSM/Processed", "FSM/Quarantine"} <= subscribed


def test_server_offers_idle_move_and_uidplus(mail_stack: MailStack) -> None:
    with mail_stack.imap() as conn:
        _typ, data = conn.capability()
        capabilities = set(data[0].decode().upper().split())
    assert {"IDLE", "MOVE", "UIDPLUS"} <= capabilities


async def test_submission_refuses_mail_without_auth(mail_stack: MailStack) -> None:
    async with aiosmtplib.SMTP(
        hostname=mail_stack.host,
        port=mail_stack.submission_port,
        start_tls=True,
        tls_context=mail_stack.ssl_context(),
    ) as smtp:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await smtp.send_message(_mail("no auth"))
    [error] = refused.value.recipients
    assert error.code == 554 and "Access denied" in error.message


async def test_submission_refuses_a_bad_password(mail_stack: MailStack) -> None:
    smtp = aiosmtplib.SMTP(
        hostname=mail_stack.host,
        port=mail_stack.submission_port,
        start_tls=True,
        tls_context=mail_stack.ssl_context(),
    )
    await smtp.connect()
    try:
        with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
            await smtp.auth_plain("client@fsm.test", "wrong")
    finally:
        smtp.close()
    assert refused.value.code == 535


async def test_unknown_recipient_and_foreign_domain_are_refused(mail_stack: MailStack) -> None:
    async with aiosmtplib.SMTP(hostname=mail_stack.host, port=mail_stack.smtp_port, start_tls=False) as smtp:
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as unknown:
            await smtp.send_message(_mail("x", to="nobody@fsm.test"))
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as foreign:
            await smtp.send_message(_mail("x", to="someone@example.com"))
    assert unknown.value.recipients[0].code == 550
    assert "User unknown" in unknown.value.recipients[0].message
    assert foreign.value.recipients[0].code == 554
    assert "Relay access denied" in foreign.value.recipients[0].message


async def test_wait_until_delivered_returns_when_postfix_has_handed_everything_to_dovecot(
    empty_dealer_mailbox: MailStack,
) -> None:
    stack = empty_dealer_mailbox
    async with aiosmtplib.SMTP(hostname=stack.host, port=stack.smtp_port, start_tls=False) as smtp:
        for i in range(30):
            await smtp.send_message(_mail(f"queued {i}"))
    assert await asyncio.to_thread(stack.wait_until_delivered, 10)
    assert len(stack.messages()) == 30  # no polling needed once the queue is empty


def test_start_is_idempotent(mail_stack: MailStack) -> None:
    before = mail_stack.status()
    began = time.monotonic()
    MailStack(port_offset=mail_stack.port_offset).start()
    after = mail_stack.status()
    assert (after.postfix_pid, after.dovecot_pid) == (before.postfix_pid, before.dovecot_pid)
    assert time.monotonic() - began < 2


async def _send_plain(stack: MailStack, msg: EmailMessage) -> None:
    async with aiosmtplib.SMTP(hostname=stack.host, port=stack.smtp_port, start_tls=False) as smtp:
        await smtp.send_message(msg)


@pytest.fixture
def second_stack(mail_stack: MailStack) -> Iterator[MailStack]:
    """A throw-away stack 50 ports above the session's, for start/stop tests that must not disturb it."""
    stack = MailStack(port_offset=offset_from_env() + 50)
    stack.wipe()
    yield stack
    stack.wipe()


def test_stop_stops_only_its_own_daemons_and_restart_keeps_the_mail(
    mail_stack: MailStack, second_stack: MailStack
) -> None:
    session_before = mail_stack.status()
    second_stack.start()
    status = second_stack.status()
    assert status.running and status.postfix_pid != session_before.postfix_pid
    asyncio.run(_send_plain(second_stack, _mail("kept")))
    [(uid, _)] = second_stack.wait_for_messages(1)
    with second_stack.imap() as conn:
        uidvalidity = conn.status("INBOX", "(UIDVALIDITY)")[1][0]

    began = time.monotonic()
    second_stack.stop()
    stop_seconds = time.monotonic() - began
    stopped = second_stack.status()
    assert stopped.postfix_pid is None and stopped.dovecot_pid is None
    for pid in (status.postfix_pid, status.dovecot_pid):
        assert not _running(pid)
    assert mail_stack.status() == session_before  # the session's stack kept running
    assert stop_seconds < 5

    second_stack.start()
    [(uid_again, raw)] = second_stack.wait_for_messages(1)
    with second_stack.imap() as conn:
        assert conn.status("INBOX", "(UIDVALIDITY)")[1][0] == uidvalidity
    assert uid_again == uid and b"Subject: kept" in raw


def test_start_refuses_ports_taken_by_another_process(second_stack: MailStack) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", second_stack.imap_port))
        squatter.listen()
        with pytest.raises(MailStackError, match=str(second_stack.imap_port)) as error:
            second_stack.start()
    assert "FSM_MAIL_PORT_OFFSET" in error.value.hint
    assert not second_stack.status().running


def test_state_directory_must_be_short_enough_for_unix_sockets(tmp_path: Path) -> None:
    with pytest.raises(MailStackError, match="longer than 60") as error:
        MailStack(tmp_path / ("x" * 60))
    assert "107 bytes" in error.value.hint


def test_private_keys_are_not_readable_by_others(mail_stack: MailStack) -> None:
    for name in ("server.key", "ca.key"):
        assert (mail_stack.tls_dir / name).stat().st_mode & 0o077 == 0


def _running(pid: int | None) -> bool:
    if pid is None or not os.path.exists(f"/proc/{pid}/stat"):
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_stack_left_running_in_another_network_namespace_is_replaced() -> None:
    """A suite killed while it ran under `unshare --net` leaves its daemons in a namespace nobody
    can reach; the next start on that offset stops them and starts a stack it can use."""
    offset = offset_from_env() + 70
    starter = f"from fsm_devtools.peers.mailstack import MailStack; MailStack(port_offset={offset}).start()"
    subprocess.run(
        ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" -c "$1"', sys.executable, starter],
        check=True,
        timeout=120,
    )
    stack = MailStack(port_offset=offset)
    left = stack.status()
    try:
        assert left.postfix_pid is not None and procs.foreign(left.postfix_pid)
        assert left.dovecot_pid is not None and procs.foreign(left.dovecot_pid)
        assert not procs.port_open("127.0.0.1", stack.smtp_port)  # it listens in the other namespace
        stack.start()
        now = stack.status()
        assert now.postfix_pid is not None and not procs.foreign(now.postfix_pid)
        assert now.dovecot_pid is not None and not procs.foreign(now.dovecot_pid)
        assert not procs.alive(left.postfix_pid) and not procs.alive(left.dovecot_pid)
        with socket.create_connection(("127.0.0.1", stack.smtp_port), timeout=5) as s:
            assert s.recv(100).startswith(b"220")
    finally:
        stack.stop()
        for pid in (left.postfix_pid, left.dovecot_pid):
            if pid is not None and procs.alive(pid):
                os.kill(pid, signal.SIGKILL)
