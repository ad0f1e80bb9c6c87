"""`fsm-server ingest [--once]`: the IMAP ingest daemon."""

from __future__ import annotations

import asyncio
import logging

import click

from fsm_protocol.cli import json_option, pass_obj, print_json

from .. import wiring
from ..context import ServerContext
from ..daemon import IngestDaemon
from ..events import EventService, run_beside
from .importcmd import render_tally


@click.command("ingest")
@click.option("--once", is_flag=True, help="Process what is in the mailboxes now, then exit.")
@click.option("-v", "--verbose", is_flag=True, help="Log every message's verdict.")
@json_option
@pass_obj
def ingest_command(ctx: ServerContext, once: bool, verbose: bool, as_json: bool) -> None:
    """Load reports from the [[mailboxes]] (IDLE, or --once), moving each mail when it is committed."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("fsm_server.daemon").setLevel(logging.DEBUG if verbose else logging.INFO)
    cfg = ctx.config.ingest
    with wiring.open_db(ctx) as db:
        daemon = IngestDaemon(wiring.pipeline(ctx, db), ctx.config.mailboxes, batch=cfg.batch,
                              poll_seconds=cfg.poll_seconds, shutdown_timeout=cfg.shutdown_timeout)
        if ctx.config.rules and ctx.config.notify.enabled:
            # notification rules are evaluated as reports are committed, and on a timer
            events = EventService(db, ctx.config)
            result = asyncio.run(run_beside(daemon, events, once=once, install_signals=True))
        else:
            result = asyncio.run(daemon.run(once=once, install_signals=True))
    if as_json:
        print_json({**result.tally.to_dict(), "moved": result.moved, "reconnects": result.reconnects})
    elif once:
        render_tally(result.tally, as_json=False)


__all__ = ["ingest_command"]
