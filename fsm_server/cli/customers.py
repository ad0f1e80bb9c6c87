"""`fsm-server dealers add|list` and `fsm-server customers add|list|assign-dealer`: who serves whom."""

from __future__ import annotations

import click
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table

from .. import customers, wiring
from ..context import ServerContext


@click.group("dealers")
def dealers_group() -> None:
    """The dealers whose portal users see the customers they serve."""


@dealers_group.command("add")
@click.argument("name")
@json_option
@pass_obj
def dealers_add(ctx: ServerContext, name: str, as_json: bool) -> None:
    """Add dealer NAME (then `customers assign-dealer CUSTOMER NAME`)."""
    with wiring.open_db(ctx):
        info = customers.add_dealer(name)
    if as_json:
        print_json(info)
    else:
        click.echo(f"dealer {info.name!r}: {info.customers} customer(s)")


@dealers_group.command("list")
@json_option
@pass_obj
def dealers_list(ctx: ServerContext, as_json: bool) -> None:
    """Every dealer with how many customers it serves."""
    with wiring.open_db(ctx, only_reads=True):
        rows = customers.list_dealers()
    if as_json:
        print_json(rows)
        return
    table = Table("dealer", "customers")
    for r in rows:
        table.add_row(cell(r.name), str(r.customers))
    print_table(table)


@click.group("customers")
def customers_group() -> None:
    """Customers, their sites and the dealer that serves each."""


def _show(info: customers.CustomerInfo, as_json: bool) -> None:
    if as_json:
        print_json(info)
    else:
        dealer = "no dealer (administrators only)" if info.dealer is None else f"dealer {info.dealer!r}"
        click.echo(
            f"customer {info.name!r}: {dealer}, {len(info.sites)} site(s), {info.clients} client(s), "
            f"{info.devices} device(s)"
        )


@customers_group.command("add")
@click.argument("name")
@click.option("--dealer", default=None, help="The dealer that serves it (added with `dealers add`).")
@click.option("--site", "sites", multiple=True, help="A site of the customer (repeatable).")
@json_option
@pass_obj
def customers_add(
    ctx: ServerContext, name: str, dealer: str | None, sites: tuple[str, ...], as_json: bool
) -> None:
    """Add customer NAME (an existing one gets the dealer and sites given)."""
    with wiring.open_db(ctx):
        _show(customers.add_customer(name, dealer=dealer, sites=sites), as_json)


@customers_group.command("assign-dealer")
@click.argument("name")
@click.argument("dealer", required=False)
@click.option("--none", "no_dealer", is_flag=True, help="Serve it by no dealer (administrators only).")
@json_option
@pass_obj
def customers_assign(
    ctx: ServerContext, name: str, dealer: str | None, no_dealer: bool, as_json: bool
) -> None:
    """Serve customer NAME by DEALER from now on; its devices and history go with it."""
    if (dealer is None) == (not no_dealer):
        raise click.UsageError("give a DEALER or --none")
    with wiring.open_db(ctx):
        _show(customers.assign_dealer(name, dealer), as_json)


@customers_group.command("list")
@click.option("--dealer", default=None, help="Only the customers of this dealer.")
@json_option
@pass_obj
def customers_list(ctx: ServerContext, dealer: str | None, as_json: bool) -> None:
    """Every customer with its dealer, sites, clients and devices."""
    with wiring.open_db(ctx, only_reads=True):
        rows = customers.list_customers(dealer=dealer)
    if as_json:
        print_json(rows)
        return
    table = Table("customer", "dealer", "sites", "clients", "devices")
    for r in rows:
        table.add_row(
            cell(r.name) or '""',
            "-" if r.dealer is None else cell(r.dealer),
            cell(", ".join(r.sites)),
            str(r.clients),
            str(r.devices),
        )
    print_table(table)


__all__ = ["customers_group", "dealers_group"]
