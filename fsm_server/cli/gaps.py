"""`fsm-server gaps`: sequence numbers that never arrived, per client (what to `resend`)."""

from __future__ import annotations

import click
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table

from .. import listings, wiring
from ..context import ServerContext


@click.command("gaps")
@click.option("--client", help="Only this client.")
@json_option
@pass_obj
def gaps_command(ctx: ServerContext, client: str | None, as_json: bool) -> None:
    """Missing report numbers per client; ask the customer for `fsm-client resend --from N --to M`."""
    with wiring.open_db(ctx, only_reads=True):
        rows = listings.gaps(client=client)
    if as_json:
        print_json(
            [
                {"client": g.client, "first": g.first, "last": g.last, "count": g.count, "kind": g.kind}
                for g in rows
            ]
        )
        return
    if not rows:
        click.echo("no gaps")
        return
    table = Table("client", "from", "to", "missing", "kind", "ask for")
    for g in rows:
        table.add_row(
            cell(g.client),
            str(g.first),
            str(g.last),
            str(g.count),
            g.kind,
            f"fsm-client resend --from {g.first} --to {g.last}",
        )
    print_table(table)


__all__ = ["gaps_command"]
