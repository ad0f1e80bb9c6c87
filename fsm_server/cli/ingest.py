"""`fsm-server ingest [--once]`: the IMAP ingest daemon."""

from __future__ import annotations

import asyncio
import logging

import click

from fsm_common.cli import json_option, pass_obj, print_json

from .. import wiring
from ..backup.schedule import BackupService
from ..context import ServerContext
from ..daemon import DaemonResult, IngestDaemon
from ..events import EventService, run_beside
from ..orders.scanner import OrderScanner
from ..rulebook import check_config_names, stored_rules
from ..schedules import ReportScheduler
from .importcmd import render_tally


async def run_ingest(
    daemon: IngestDaemon,
    events: EventService | None,
    backups: BackupService | None,
    *,
    once: bool,
    reports: ReportScheduler | None = None,
    orders: OrderScanner | None = None,
) -> DaemonResult:
    """The daemon, with notifications (evaluated as reports are committed, and on a timer), the
    backup schedule, the scheduled reports and the periodic order scan beside it when configured
    (``once``: the reports due now are sent after the mailboxes are drained; no order scan)."""
    stop = asyncio.Event()
    scheduler = asyncio.create_task(backups.run(stop)) if backups is not None else None
    mailer = asyncio.create_task(reports.run(stop)) if reports is not None and not once else None
    scanner = asyncio.create_task(orders.run(stop)) if orders is not None and not once else None
    try:
        if events is not None:
            result = await run_beside(daemon, events, once=once, install_signals=True)
        else:
            result = await daemon.run(once=once, install_signals=True)
        if reports is not None and once:
            try:
                await reports.run_once()
            finally:
                await reports.aclose()
        return result  # type: ignore[no-any-return]
    finally:
        stop.set()
        for task in (scheduler, mailer, scanner):
            if task is not None:
                await task


@click.command("ingest")
@click.option("--once", is_flag=True, help="Process what is in the mailboxes now, then exit.")
@click.option("-v", "--verbose", is_flag=True, help="Log every message's verdict.")
@json_option
@pass_obj
def ingest_command(ctx: ServerContext, once: bool, verbose: bool, as_json: bool) -> None:
    """Load reports from the [[mailboxes]] (IDLE, or --once), moving each mail when it is committed."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("fsm_server.daemon").setLevel(logging.DEBUG if verbose else logging.INFO)
    cfg = ctx.config.ingest
    with wiring.open_db(ctx) as db:
        daemon = IngestDaemon(
            wiring.pipeline(ctx, db),
            ctx.config.mailboxes,
            batch=cfg.batch,
            poll_seconds=cfg.poll_seconds,
            shutdown_timeout=cfg.shutdown_timeout,
        )
        # the config's [[rules]] and the portal's (read at every evaluation, so edits need no restart)
        check_config_names(ctx.config)
        events = EventService(db, ctx.config, extra_rules=stored_rules) if ctx.config.notify.enabled else None
        # the daily backup runs beside the daemon (not with --once: cron runs `fsm-server backup`)
        scheduled = ctx.config.backup.enabled and not once
        backups = BackupService(db, wiring.backup_plan(ctx)) if scheduled else None
        mailer = ReportScheduler(db, ctx.config) if ctx.config.notify.enabled else None
        # changed lead times and silent devices between reports (with --once: cron runs `orders scan`)
        orders = ctx.config.orders
        scanner = OrderScanner(db, orders) if orders.enabled and orders.scan_every and not once else None
        result = asyncio.run(run_ingest(daemon, events, backups, once=once, reports=mailer, orders=scanner))
    if as_json:
        print_json({**result.tally.to_dict(), "moved": result.moved, "reconnects": result.reconnects})
    elif once:
        render_tally(result.tally, as_json=False)


__all__ = ["ingest_command", "run_ingest"]
