"""`fsm-client run` (the daemon) and `fsm-client send` (build and send a report now)."""

from __future__ import annotations

import asyncio
import logging

import click

from fsm_common.cli import pass_obj

from ..context import ClientContext
from ..daemon import Daemon
from ..errors import TransportError


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@click.command("run")
@click.option(
    "--once",
    is_flag=True,
    help="Run what is due (missed reports too), one status poll, drain the outbox, then exit.",
)
@click.option(
    "--shutdown-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds the current step may take to finish after SIGTERM/SIGINT.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@pass_obj
def run_command(obj: ClientContext, once: bool, shutdown_timeout: float, verbose: bool) -> None:
    """Run the client: scheduled reads and reports, status polls and alerts, the outbox worker.

    Stops cleanly on SIGTERM or SIGINT (a second one stops at once) and logs one summary line.
    """
    _logging(verbose)
    daemon = Daemon(obj.config, obj.data_dir, shutdown_timeout=shutdown_timeout)
    asyncio.run(daemon.run(once=once))
    if once:
        _fail_if_unsent(daemon)


def _fail_if_unsent(daemon: Daemon) -> None:
    pending = [e for e in daemon.store.outbox() if e.sent_at is None]
    if pending:
        raise TransportError(
            f"{len(pending)} report(s) are still in the outbox (oldest {pending[0].seq}): "
            f"{pending[0].last_error or 'not tried yet'}",
            hint="they stay queued and are retried by `fsm-client run`; `fsm-client status` shows the state",
        )


@click.command("send")
@click.option("--no-read", is_flag=True, help="Do not read the devices first; report what is stored.")
@pass_obj
def send_command(obj: ClientContext, no_read: bool) -> None:
    """Read every device, seal a periodic report now, and send everything in the outbox."""
    _logging(False)
    daemon = Daemon(obj.config, obj.data_dir)
    counts = asyncio.run(daemon.send_now(read=not no_read))
    queued = ", ".join(map(str, counts.queued))
    if daemon.deferred:
        click.echo(f"queued report {queued}; the running `fsm-client run` sends it")
        return
    click.echo(f"queued report {queued}; sent {counts.sent} envelope(s)")
    _fail_if_unsent(daemon)


__all__ = ["run_command", "send_command"]
