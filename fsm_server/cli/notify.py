"""`fsm-server notify [--once]`: evaluate the [[rules]] and send notification mails.

`fsm-server ingest` is where notifications normally run (beside the IMAP daemon); this command
serves cron, archive imports and checks of the rules: `--once` evaluates every rule, sends what
is due and exits; without it, it keeps evaluating every `[notify] evaluate_seconds`.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import click

from fsm_common.cli import json_option, pass_obj, print_json

from .. import wiring
from ..context import ServerContext
from ..events import EventService, Notification


@click.command("notify")
@click.option("--once", is_flag=True, help="Evaluate every rule once, send what is due, exit.")
@json_option
@pass_obj
def notify_command(ctx: ServerContext, once: bool, as_json: bool) -> None:
    """Evaluate the notification rules and send their mails through [notify]."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with wiring.open_db(ctx) as db:
        events = EventService(db, ctx.config)

        async def run() -> None:
            if once:
                try:
                    await events.run_once()
                finally:
                    await events.aclose()
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            try:
                await events.run(stop)
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

        asyncio.run(run())
        pending = Notification.select().where(Notification.sent_at.is_null()).count()
    result = {"sent": events.sent, "failed": events.failed, "pending": pending}
    if as_json:
        print_json(result)
    else:
        click.echo(f"{events.sent} notifications sent, {events.failed} failed, {pending} waiting")


__all__ = ["notify_command"]
