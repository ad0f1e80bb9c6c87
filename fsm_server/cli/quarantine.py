"""`fsm-server quarantine list|show|retry|dismiss`: messages that could not be loaded, and why."""

from __future__ import annotations

import sys

import click
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table
from fsm_protocol.display import display_text

from .. import listings, wiring
from ..context import ServerContext
from ..db.loader import Loader


@click.group("quarantine")
def quarantine_group() -> None:
    """List, inspect and retry quarantined messages."""


@quarantine_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also entries released by a retry or dismissed.")
@click.option("--reason", help="Only this reason code (e.g. bad_signature).")
@json_option
@pass_obj
def list_command(ctx: ServerContext, show_all: bool, reason: str | None, as_json: bool) -> None:
    """Quarantined messages, newest first."""
    with wiring.open_db(ctx, only_reads=True):
        rows = listings.quarantine(status=None if show_all else "held", reason=reason)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "reason", "client", "seq", "size", "quarantined", "source")
    for r in rows:
        table.add_row(
            str(r.id),
            r.reason,
            cell(r.client),
            "" if r.seq is None else str(r.seq),
            str(r.size),
            f"{r.quarantined_at:%Y-%m-%d %H:%M}",
            cell(r.source),
        )
    print_table(table)


@quarantine_group.command("show")
@click.argument("entry_id", type=int)
@click.option("--raw", is_flag=True, help="Write the kept message bytes to stdout.")
@json_option
@pass_obj
def show_command(ctx: ServerContext, entry_id: int, raw: bool, as_json: bool) -> None:
    """One entry: reason, detail, what to do; --raw for the message itself."""
    with wiring.open_db(ctx, only_reads=True):
        row, data = listings.quarantine_entry(entry_id)
    if raw:
        sys.stdout.buffer.write(data)
        return
    if as_json:
        print_json(row)
        return
    for key in (
        "id",
        "reason",
        "detail",
        "hint",
        "client",
        "seq",
        "source",
        "message_id",
        "size",
        "received_at",
        "quarantined_at",
        "status",
    ):
        click.echo(f"{key + ':':<16}{display_text(getattr(row, key))}")


@quarantine_group.command("retry")
@click.argument("entry_ids", type=int, nargs=-1, required=True)
@json_option
@pass_obj
def retry_command(ctx: ServerContext, entry_ids: tuple[int, ...], as_json: bool) -> None:
    """Put entries through the pipeline again (after registering a key, fixing a clock, ...)."""
    with wiring.open_db(ctx) as db:
        pipeline = wiring.pipeline(ctx, db)
        verdicts = [pipeline.retry(i) for i in entry_ids]
    if as_json:
        print_json(verdicts)
        return
    for i, v in zip(entry_ids, verdicts, strict=True):
        click.echo(f"{i}: {v.outcome}" + (f" ({v.reason}: {v.detail})" if v.reason else ""))


@quarantine_group.command("dismiss")
@click.argument("entry_ids", type=int, nargs=-1, required=True)
@json_option
@pass_obj
def dismiss_command(ctx: ServerContext, entry_ids: tuple[int, ...], as_json: bool) -> None:
    """Set held entries aside once dealt with (spam, reports sealed again by `outbox renumber`).

    Their bytes stay in the database: `list --all` shows them and `retry` still works.
    """
    with wiring.open_db(ctx) as db:
        done = Loader(db).dismiss(entry_ids)
    not_held = sorted(set(entry_ids) - set(done))
    if as_json:
        print_json({"dismissed": done, "not_held": not_held})
        return
    click.echo(f"dismissed {len(done)} of {len(set(entry_ids))}")
    if not_held:
        click.echo("not held (unknown, released or dismissed already): " + ", ".join(map(str, not_held)))


__all__ = ["quarantine_group"]
