"""`fsm-server billing plan|collect|periods|show|validate|correct|exclude|exclude-to-settle|approve|
export|verify`: a thin layer over fsm_server.billing (docs/billing.md)."""

from __future__ import annotations

import getpass
from pathlib import Path

import click
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table
from fsm_protocol.keys import SERVER_SIGN_PUB_FILE, load_verify_key

from .. import reports, wiring
from ..billing import export, workflow
from ..billing.periods import CADENCES, Plan
from ..context import ServerContext
from .keys import keys_dir, server_signing_key
from .report import write_atomically

_by = click.option(
    "--by", default=getpass.getuser, show_default="the login name", help="Who does this (recorded with it)."
)
_note = click.option(
    "--note", required=True, help="Why (stored with the meter, shown in the export's manifest)."
)


@click.group("billing")
def billing_group() -> None:
    """Billing periods: collect meters, settle flags, approve and export with a signed manifest."""


@billing_group.command("plan")
@click.argument("customer")
@click.option("--cadence", type=click.Choice(CADENCES), default="monthly", show_default=True)
@click.option(
    "--day", "anchor_day", type=int, default=1, show_default=True, help="Day of the month periods start."
)
@click.option(
    "--quarter-month",
    "anchor_month",
    type=int,
    default=1,
    show_default=True,
    help="Quarterly: the month (1-3) of the first quarter's start.",
)
@pass_obj
def plan_command(ctx: ServerContext, customer: str, cadence: str, anchor_day: int, anchor_month: int) -> None:
    """Set how CUSTOMER is billed (monthly from the 1st unless set)."""
    plan = Plan(
        cadence="quarterly" if cadence == "quarterly" else "monthly",
        anchor_day=anchor_day,
        anchor_month=anchor_month,
    )
    with wiring.open_db(ctx):
        workflow.set_plan(customer, plan)
    click.echo(f"{customer}: {plan.cadence} from day {plan.anchor_day}")


@billing_group.command("collect")
@click.argument("customer")
@click.option(
    "--from", "start", metavar="DATE", help="Period start (default: the plan's last complete period)."
)
@click.option("--to", "end", metavar="DATE", help="Period end, inclusive for a date.")
@json_option
@pass_obj
def collect_command(
    ctx: ServerContext, customer: str, start: str | None, end: str | None, as_json: bool
) -> None:
    """Collect CUSTOMER's meters for a period (its start and end meters, flags, provenance)."""
    with wiring.open_db(ctx) as db:
        view = workflow.collect_period(
            db,
            customer,
            start=reports.parse_when(start) if start else None,
            end=reports.parse_when(end, end=True) if end else None,
            settings=ctx.config.reports,
        )
    if as_json:
        print_json(view)
        return
    _print_summary(view)
    if view.tally is not None and view.tally.to_settle:
        click.echo(
            f"approval waits for {view.tally.to_settle} flagged meter(s): "
            f"`fsm-server billing show {view.id} --to-settle` lists them"
        )


@billing_group.command("periods")
@click.option("--customer")
@json_option
@pass_obj
def periods_command(ctx: ServerContext, customer: str | None, as_json: bool) -> None:
    """Every billing period, newest first."""
    with wiring.open_db(ctx, only_reads=True):
        rows = workflow.periods(customer)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "customer", "start", "end", "state", "approved by")
    for p in rows:
        table.add_row(
            str(p.id),
            cell(p.customer),
            f"{p.start:%Y-%m-%d}",
            f"{p.end:%Y-%m-%d}",
            p.state,
            cell(p.approved_by or ""),
        )
    print_table(table)


@billing_group.command("show")
@click.argument("period", type=int)
@click.option("--to-settle", is_flag=True, help="Only the flagged meters neither corrected nor excluded.")
@json_option
@pass_obj
def show_command(ctx: ServerContext, period: int, to_settle: bool, as_json: bool) -> None:
    """A period's meters: start, end, usage, flags, corrections and the envelopes they came from."""
    with wiring.open_db(ctx, only_reads=True):
        view = workflow.show(period, to_settle_only=to_settle)
    _print_period(view, as_json)


@billing_group.command("validate")
@click.argument("period", type=int)
@_by
@pass_obj
def validate_command(ctx: ServerContext, period: int, by: str) -> None:
    """Record the customer's validation of PERIOD (optional before approval)."""
    with wiring.open_db(ctx):
        view = workflow.validate(period, by)
    click.echo(f"period {view.id}: {view.state}")


@billing_group.command("correct")
@click.argument("meter", type=int)
@click.option("--start", "start_value", type=click.IntRange(min=0))
@click.option("--end", "end_value", type=click.IntRange(min=0))
@click.option("--usage", type=click.IntRange(min=0), help="Pages to bill (default: end - start).")
@_note
@_by
@pass_obj
def correct_command(
    ctx: ServerContext,
    meter: int,
    start_value: int | None,
    end_value: int | None,
    usage: int | None,
    note: str,
    by: str,
) -> None:
    """Correct METER: stored beside the collected numbers, which stay."""
    with wiring.open_db(ctx):
        m = workflow.correct(meter, by, note, start_value=start_value, end_value=end_value, usage=usage)
    click.echo(
        f"meter {m.id}: bills {m.start_value} -> {m.end_value}, usage {m.usage} "
        f"(collected {m.collected_start} -> {m.collected_end}, usage {m.collected_usage})"
    )


@billing_group.command("exclude")
@click.argument("meter", type=int)
@_note
@_by
@pass_obj
def exclude_command(ctx: ServerContext, meter: int, note: str, by: str) -> None:
    """Leave METER out of the export (kept, with the note)."""
    with wiring.open_db(ctx):
        m = workflow.exclude(meter, by, note)
    click.echo(f"meter {m.id}: excluded")


@billing_group.command("exclude-to-settle")
@click.argument("period", type=int)
@click.option(
    "--flag",
    "flags",
    multiple=True,
    metavar="FLAG",
    help="Only meters with this flag (repeat for several; default: every meter to settle).",
)
@_note
@_by
@pass_obj
def exclude_to_settle_command(
    ctx: ServerContext, period: int, flags: tuple[str, ...], note: str, by: str
) -> None:
    """Leave every flagged meter of PERIOD not yet corrected or excluded out of the export, each
    with the note (say what was checked: the manifest carries it)."""
    with wiring.open_db(ctx):
        count = workflow.exclude_to_settle(period, by, note, flags=flags)
        view = workflow.summary(period)
    click.echo(f"period {period}: {count} meter(s) excluded")
    _print_summary(view)


@billing_group.command("approve")
@click.argument("period", type=int)
@_by
@pass_obj
def approve_command(ctx: ServerContext, period: int, by: str) -> None:
    """Approve PERIOD for export (refused while a flagged meter is neither corrected nor excluded)."""
    with wiring.open_db(ctx):
        view = workflow.approve(period, by)
    click.echo(f"period {view.id}: approved by {view.approved_by}")


@billing_group.command("export")
@click.argument("period", type=int)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help=f"The CSV to write; the signed manifest goes beside it as OUT{export.MANIFEST_SUFFIX}.",
)
@pass_obj
def export_command(ctx: ServerContext, period: int, out: Path) -> None:
    """Write an approved PERIOD's meters CSV and its signed manifest."""
    signer = server_signing_key(ctx)
    with wiring.open_db(ctx):
        text, manifest = export.build(period, signer, ctx.config.reports)
    write_atomically(out, text)
    mpath = export.manifest_path(out)
    mpath.write_bytes(manifest)
    click.echo(f"wrote {out} and {mpath} (signed by {signer.fingerprint})")


@billing_group.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"The server's public signing key [default: {SERVER_SIGN_PUB_FILE} in the server's key directory].",
)
@pass_obj
def verify_command(ctx: ServerContext, file: Path, key_path: Path | None) -> None:
    """Check an export (FILE: the CSV or its manifest) against the server's signing key."""
    key = load_verify_key(key_path or keys_dir(ctx) / SERVER_SIGN_PUB_FILE)
    m = export.verify(file, key)
    click.echo(
        f"ok: {len(m.rows)} row(s) of {m.customer} {m.start:%Y-%m-%d} - {m.end:%Y-%m-%d}, "
        f"approved by {m.approved_by}, signed by {key.fingerprint}"
    )


def _print_summary(view: workflow.PeriodView) -> None:
    click.echo(f"period {view.id}: {view.customer} {view.start:%Y-%m-%d} - {view.end:%Y-%m-%d}, {view.state}")
    if view.tally is not None:
        t = view.tally
        click.echo(
            f"{t.meters} meters of {t.devices} devices; flagged {t.flagged}, corrected {t.corrected}, "
            f"excluded {t.excluded}, to settle: {t.to_settle}"
        )


def _print_period(view: workflow.PeriodView, as_json: bool) -> None:
    if as_json:
        print_json(view)
        return
    _print_summary(view)
    table = Table(
        "meter", "device", "counter", "start", "end", "usage", "flags", "state", "from (client/seq)"
    )
    for m in view.meters:
        state = (
            "excluded" if m.excluded else "corrected" if m.corrections else "to settle" if m.blocking else ""
        )
        table.add_row(
            str(m.id),
            str(m.device_id),
            cell(m.counter),
            str(m.start_value),
            str(m.end_value),
            str(m.usage),
            " ".join(m.flags),
            state,
            f"{m.start_source[0]}/{m.start_source[1]} .. {m.end_source[0]}/{m.end_source[1]}",
        )
    print_table(table)


__all__ = ["billing_group"]
