"""`fsm-server db`: maintenance of the server database (state kept at ingest)."""

from __future__ import annotations

import time

import click

from fsm_common.cli import pass_obj

from .. import wiring
from ..context import ServerContext
from ..db import retention, state
from ..db.connect import translated


@click.group("db")
def db_group() -> None:
    """Maintain the server database."""


@db_group.command("rebuild-state")
@pass_obj
def rebuild_state_command(ctx: ServerContext) -> None:
    """Compute the latest readings and supply forecasts kept at ingest again from the readings.

    Ingest keeps them up to date by itself; run this after restoring readings from elsewhere or
    to check them (the result is the same as what ingest keeps).
    """
    with wiring.open_db(ctx, only_reads=True) as db:
        started = time.monotonic()
        with translated("cannot rebuild the state"), db.atomic():
            done = state.rebuild(db)
    click.echo(f"state of {done} devices rebuilt in {time.monotonic() - started:.1f} s", err=True)


@db_group.command("retention")
@click.option("--progress", is_flag=True, help="Print a line after each transaction.")
@pass_obj
def retention_command(ctx: ServerContext, progress: bool) -> None:
    """Downsample readings older than [retention] raw_days, remove those older than keep_days.

    Safe to run while ingest goes on, and to stop at any moment: the next run finishes the work.
    Run it daily (cron or a systemd timer).
    """
    cfg = ctx.config.retention
    with wiring.open_db(ctx, only_reads=True) as db:
        result = retention.apply_retention(
            db,
            raw_days=cfg.raw_days,
            keep_days=cfg.keep_days,
            batch=cfg.batch,
            on_batch=(lambda n: click.echo(f"removed {n} readings", err=True)) if progress else None,
        )
    click.echo(
        f"{result.readings_removed} readings removed in {result.batches} transactions; readings "
        f"before {result.downsampled_before:%Y-%m-%d} are one per device and day, none before "
        f"{result.removed_before:%Y-%m-%d}",
        err=True,
    )


__all__ = ["db_group", "rebuild_state_command", "retention_command"]
