"""Helpers of the ingest tests against the real mail stack: send mails, count folders, run daemons."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import aiosmtplib

from fsm_devtools.corpus import FROM_ADDR, TO_ADDR, ServerKit
from fsm_devtools.peers.mailstack import MailStack
from fsm_server.config import MailboxSection


def mailbox_config(stack: MailStack, user_name: str = "dealer") -> MailboxSection:
    """A user's INBOX over IMAPS, the certificate verified against the stack's CA."""
    user = stack.users[user_name]
    from fsm_common.configfile import Secret

    return MailboxSection(
        name=user_name,
        host=stack.host,
        port=stack.imaps_port,
        security="tls",
        user=user.address,
        password=Secret(user.password),
        ca_file=stack.ca_file,
    )


async def send_all(
    stack: MailStack, mails: Iterable[bytes], *, rate: float | None = None, to: str = TO_ADDR
) -> int:
    """Submit mails to Postfix over one SMTP connection (at most ``rate`` per second)."""
    n = 0
    async with aiosmtplib.SMTP(hostname=stack.host, port=stack.smtp_port, start_tls=False) as smtp:
        for mail in mails:
            await smtp.sendmail(FROM_ADDR, [to], mail)
            n += 1
            if rate:
                await asyncio.sleep(1 / rate)
    return n


def folder_count(stack: MailStack, folder: str, user: str = "dealer") -> int:
    with stack.imap(user) as conn:
        typ, data = conn.status(f'"{folder}"', "(MESSAGES)")
        assert typ == "OK", data
        return int(data[0].split(b"MESSAGES")[1].strip(b" ()"))


def write_server_config(path: Path, stack: MailStack, server: ServerKit, *, poll_seconds: int = 2) -> Path:
    mb = mailbox_config(stack)
    path.write_text(f"""
[keys]
encryption_key = "{server.key_path}"

[ingest]
poll_seconds = {poll_seconds}
batch = 20
shutdown_timeout = 5.0

[[mailboxes]]
name = "dealer"
host = "{mb.host}"
port = {mb.port}
security = "tls"
user = "{mb.user}"
password = "{mb.password.reveal()}"
ca_file = "{mb.ca_file}"
""")
    return path


def start_daemon(
    config: Path, data_dir: Path, database_url: str, *args: str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`fsm-server ingest` as a separate process (the one kill -9 hits)."""
    env = {**os.environ, "FSM_DATABASE_URL": database_url}
    with (log or Path(os.devnull)).open("ab") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from fsm_server.cli import main; main()",
                "--config",
                str(config),
                "--data-dir",
                str(data_dir),
                "ingest",
                "--json",
                *args,
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
        )
