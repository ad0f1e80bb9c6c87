"""`fsm-server devices`: every device reports have mentioned, with its latest address and total."""

from __future__ import annotations

import click
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table

from .. import listings, wiring
from ..context import ServerContext


@click.command("devices")
@click.option("--client", help="Only this client's devices.")
@json_option
@pass_obj
def devices_command(ctx: ServerContext, client: str | None, as_json: bool) -> None:
    """Devices, most recently seen first."""
    with wiring.open_db(ctx, only_reads=True):
        rows = listings.devices(client=client)
    if as_json:
        print_json(rows)
        return
    table = Table(
        "id", "customer", "client", "site", "manufacturer", "model", "serial", "ip", "total", "last seen"
    )
    for d in rows:
        total = "" if d.total is None else str(d.total)
        table.add_row(
            str(d.id),
            cell(d.customer),
            cell(d.client),
            cell(d.site),
            cell(d.manufacturer),
            cell(d.model),
            cell(d.serial),
            cell(d.ip),
            total,
            f"{d.last_seen:%Y-%m-%d %H:%M}",
        )
    print_table(table)


__all__ = ["devices_command"]
