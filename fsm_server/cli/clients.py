"""`fsm-server clients add|list|show|revoke|rotate|set-customer`: who may send reports, for whom."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table

from .. import wiring
from ..context import ServerContext
from ..registry import ClientInfo

_key_option = click.option(
    "--key",
    "key",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The client's client.pub (made by `fsm-client keys init`).",
)


@click.group("clients")
def clients_group() -> None:
    """Register, list, revoke and re-key the clients whose reports are accepted."""


def _show(info: ClientInfo, as_json: bool) -> None:
    if as_json:
        print_json(info)
    else:
        customer = "not yet bound" if info.customer is None else repr(info.customer)
        click.echo(
            f"{info.name}: {info.status}, customer {customer}, key {info.fingerprint} "
            f"({info.keys} key(s) so far)"
        )


@clients_group.command("add")
@click.argument("name")
@_key_option
@click.option(
    "--customer",
    default=None,
    help="The customer whose printers it reads (default: the one its first report names).",
)
@click.option("--note", default="", help="Free text: contact, location, ...")
@json_option
@pass_obj
def add_command(
    ctx: ServerContext, name: str, key: Path, customer: str | None, note: str, as_json: bool
) -> None:
    """Register client NAME (its [client] id) with its public key, under a customer.

    Its reports only ever reach devices of that customer; a report naming another one is loaded
    under it all the same and flagged in the health report.
    """
    with wiring.open_db(ctx) as db:
        _show(wiring.registry(ctx, db).add(name, key, note=note, customer=customer), as_json)


@clients_group.command("set-customer")
@click.argument("name")
@click.argument("customer")
@json_option
@pass_obj
def set_customer_command(ctx: ServerContext, name: str, customer: str, as_json: bool) -> None:
    """Enrol NAME under CUSTOMER from now on (its devices so far stay with their customer)."""
    with wiring.open_db(ctx) as db:
        _show(wiring.registry(ctx, db).set_customer(name, customer), as_json)


@clients_group.command("list")
@json_option
@pass_obj
def list_command(ctx: ServerContext, as_json: bool) -> None:
    """Every registered client with its status and key fingerprint."""
    with wiring.open_db(ctx, only_reads=True) as db:
        clients = wiring.registry(ctx, db).list()
    if as_json:
        print_json(clients)
        return
    table = Table("name", "status", "customer", "fingerprint", "keys", "added", "note")
    for c in clients:
        customer = "-" if c.customer is None else cell(c.customer)
        table.add_row(
            cell(c.name),
            c.status,
            customer,
            c.fingerprint,
            str(c.keys),
            f"{c.added_at:%Y-%m-%d %H:%M}",
            cell(c.note),
        )
    print_table(table)


@clients_group.command("revoke")
@click.argument("name")
@json_option
@pass_obj
def revoke_command(ctx: ServerContext, name: str, as_json: bool) -> None:
    """Refuse every further report from NAME (they are quarantined as revoked_client)."""
    with wiring.open_db(ctx) as db:
        _show(wiring.registry(ctx, db).revoke(name), as_json)


@clients_group.command("rotate")
@click.argument("name")
@_key_option
@json_option
@pass_obj
def rotate_command(ctx: ServerContext, name: str, key: Path, as_json: bool) -> None:
    """Give NAME a new key; the old one is accepted for [ingest] rotation_grace_days more."""
    with wiring.open_db(ctx) as db:
        _show(wiring.registry(ctx, db).rotate(name, key), as_json)


__all__ = ["clients_group"]
