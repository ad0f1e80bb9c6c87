"""`fsm-server db`: maintenance of the server database (state kept at ingest)."""

from __future__ import annotations

import time

import click

from fsm_protocol.cli import pass_obj

from .. import wiring
from ..context import ServerContext
from ..db import state
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


__all__ = ["db_group", "rebuild_state_command"]
