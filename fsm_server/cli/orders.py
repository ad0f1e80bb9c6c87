"""`fsm-server orders list|show|settings|approve|ordered|delivered|ignore|scan|export`: a thin
layer over fsm_server.orders (docs/orders.md). The commands act with an administrator's scope."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table

from .. import wiring
from ..context import ServerContext
from ..orders import proposals, workflow
from ..scoping import Scoped
from .report import write_atomically

ADMIN = Scoped("admin", None)

_by = click.option(
    "--by", default=getpass.getuser, show_default="the login name", help="Who does this (recorded with it)."
)


@click.group("orders")
def orders_group() -> None:
    """Supply orders: proposals from the forecast, approval, the ERP export, delivery."""


@orders_group.command("list")
@click.option("--customer", help="Only this customer's orders.")
@click.option(
    "--state",
    type=click.Choice(workflow.STATE_FILTERS),
    default="open",
    show_default=True,
    help="Which orders.",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@json_option
@pass_obj
def list_command(ctx: ServerContext, customer: str | None, state: str, limit: int, as_json: bool) -> None:
    """Supply orders, newest first."""
    with wiring.open_db(ctx, only_reads=True):
        rows = workflow.list_orders(ADMIN, state=state, customer=customer, limit=limit)
    if as_json:
        print_json(rows)
        return
    now = datetime.now(UTC)
    table = Table("id", "customer", "device", "serial", "supply", "part", "level", "days left", "state")
    for o in rows:
        left = o.days_left(now)
        table.add_row(
            str(o.id),
            cell(o.customer),
            cell(o.device),
            cell(o.serial or ""),
            cell(o.description),
            cell(o.part_number or ""),
            "" if o.percent is None else f"{o.percent:.0f}%",
            "" if left is None else f"{left:.1f}",
            o.state,
        )
    print_table(table)


@orders_group.command("show")
@click.argument("order", type=int)
@json_option
@pass_obj
def show_command(ctx: ServerContext, order: int, as_json: bool) -> None:
    """One order with its whole history (who approved, ordered, delivered; the replacement seen)."""
    with wiring.open_db(ctx, only_reads=True):
        o = workflow.get_order(ADMIN, order)
    if as_json:
        print_json(o)
        return
    for name, value in (
        ("order", o.id),
        ("customer", o.customer),
        ("device", f"{o.device} {o.serial or ''} ({o.ip})"),
        ("supply", o.description),
        ("part number", o.part_number or ""),
        ("state", o.state),
        (
            "proposed",
            f"{o.proposed_at:%Y-%m-%d %H:%M} ({o.reason}, lead {o.lead_days} + margin {o.margin_days} days)",
        ),
        ("level", "" if o.percent is None else f"{o.percent:.0f}% at {o.observed_at:%Y-%m-%d %H:%M}"),
        ("empty by", "" if o.empty_at is None else f"{o.empty_at:%Y-%m-%d}"),
        ("approved", _when(o.approved_at, o.approved_by)),
        ("ordered", _when(o.ordered_at, o.ordered_by) + (f" ref {o.order_ref}" if o.order_ref else "")),
        (
            "delivered",
            _when(o.delivered_at, o.delivered_by or ("replacement seen" if o.delivered_at else None)),
        ),
        ("ignored", _when(o.ignored_at, o.ignored_by) + (f": {o.ignore_reason}" if o.ignore_reason else "")),
        ("replaced", "" if o.replaced_at is None else f"{o.replaced_at:%Y-%m-%d %H:%M}"),
        ("early by (days)", "" if o.early_days is None else f"{o.early_days:.1f}"),
        ("after approval (days)", "" if o.after_approval_days is None else f"{o.after_approval_days:.1f}"),
    ):
        if value != "":
            click.echo(f"{name}: {cell(str(value), 200)}")


def _when(at: datetime | None, by: str | None) -> str:
    return "" if at is None else f"{at:%Y-%m-%d %H:%M} by {by or '-'}"


@orders_group.command("settings")
@click.argument("customer")
@click.option("--lead-days", type=click.IntRange(0, 365), help="Days from ordering to arrival.")
@click.option("--margin-days", type=click.IntRange(0, 365), help="Days of supply kept beyond the lead time.")
@click.option("--reset", is_flag=True, help="Drop the customer's own values: the [orders] defaults apply.")
@_by
@pass_obj
def settings_command(
    ctx: ServerContext, customer: str, lead_days: int | None, margin_days: int | None, reset: bool, by: str
) -> None:
    """Show or set CUSTOMER's lead time and margin (a change is applied to its supplies at once)."""
    defaults = ctx.config.orders
    with wiring.open_db(ctx) as db:
        changed = reset or lead_days is not None or margin_days is not None
        if reset:
            s = workflow.reset_lead(ADMIN, customer, defaults)
        elif changed:
            now = workflow.lead_settings(ADMIN, customer, defaults)
            s = workflow.set_lead(
                ADMIN,
                customer,
                lead_days=now.lead_days if lead_days is None else lead_days,
                margin_days=now.margin_days if margin_days is None else margin_days,
                by=by,
            )
        else:
            s = workflow.lead_settings(ADMIN, customer, defaults)
        applied = workflow.rescan(ADMIN, db, customer, defaults) if changed else None
    source = f"set by {s.updated_by}" if s.own else "the [orders] defaults"
    click.echo(f"{customer}: lead {s.lead_days} days, margin {s.margin_days} days ({source})")
    if applied is not None:
        click.echo(_scanned(*applied))


@orders_group.command("approve")
@click.argument("order", type=int)
@_by
@pass_obj
def approve_command(ctx: ServerContext, order: int, by: str) -> None:
    """Approve a proposed ORDER (it is in the ERP export from now on)."""
    with wiring.open_db(ctx):
        o = workflow.approve(ADMIN, order, by=by)
    click.echo(f"order {o.id}: {o.state} by {o.approved_by}")


@orders_group.command("ordered")
@click.argument("order", type=int)
@click.option("--ref", default="", help="The ERP's order number.")
@_by
@pass_obj
def ordered_command(ctx: ServerContext, order: int, ref: str, by: str) -> None:
    """Mark an approved ORDER as ordered."""
    with wiring.open_db(ctx):
        o = workflow.mark_ordered(ADMIN, order, by=by, ref=ref)
    click.echo(f"order {o.id}: {o.state}" + (f" ({o.order_ref})" if o.order_ref else ""))


@orders_group.command("delivered")
@click.argument("order", type=int)
@_by
@pass_obj
def delivered_command(ctx: ServerContext, order: int, by: str) -> None:
    """Mark ORDER delivered by hand (ingest does it when it sees the replacement)."""
    with wiring.open_db(ctx):
        o = workflow.mark_delivered(ADMIN, order, by=by)
    click.echo(f"order {o.id}: {o.state}")


@orders_group.command("ignore")
@click.argument("order", type=int)
@click.option("--reason", required=True, help="Why it is not shipped (kept with the order).")
@_by
@pass_obj
def ignore_command(ctx: ServerContext, order: int, reason: str, by: str) -> None:
    """Ignore ORDER: not shipped, and its supply not proposed again until it is replaced."""
    with wiring.open_db(ctx):
        o = workflow.ignore(ADMIN, order, by=by, reason=reason)
    click.echo(f"order {o.id}: {o.state}")


@orders_group.command("scan")
@pass_obj
def scan_command(ctx: ServerContext) -> None:
    """Apply the proposal rules to every supply now (ingest does it as readings arrive, and every
    [orders] scan_every beside the daemon)."""
    with wiring.open_db(ctx) as db:
        proposed, closed = proposals.scan(db, ctx.config.orders, now=datetime.now(UTC))
    click.echo(_scanned(proposed, closed))


def _scanned(proposed: int, closed: int) -> str:
    return f"{proposed} order(s) proposed, {closed} closed by a replacement"


@orders_group.command("export")
@click.option("--customer", help="Only this customer's orders.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The CSV to write (default: standard output).",
)
@pass_obj
def export_command(ctx: ServerContext, customer: str | None, out: Path | None) -> None:
    """The approved orders as CSV for the ERP."""
    with wiring.open_db(ctx, only_reads=True):
        text = "".join(workflow.approved_csv(ADMIN, customer=customer))
    if out is None:
        click.echo(text, nl=False)
        return
    write_atomically(out, text)
    click.echo(f"wrote {out} ({text.count(chr(10)) - 1} order(s))")


__all__ = ["orders_group"]
