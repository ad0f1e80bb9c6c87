"""`fsm-client outbox list|show|rechunk|renumber` and `fsm-client resend --from N [--to M]`."""

from __future__ import annotations

import click
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table

from ..context import ClientContext
from ..outbox import outbox_rows
from ..report import Sealer, rechunk, redacted, renumber
from ..store import Store


@click.group("outbox")
def outbox_group() -> None:
    """What was sealed and sent, and what still waits to be sent."""


@outbox_group.command("list")
@click.option("--limit", type=int, default=50, show_default=True, help="Show the newest N reports.")
@json_option
@pass_obj
def list_command(obj: ClientContext, limit: int, as_json: bool) -> None:
    """List reports in the outbox, oldest first: number, kind, state, attempts, last error."""
    with Store.open_readonly(obj.existing_store()) as store:  # works on a read-only data dir
        rows = outbox_rows(store, limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table("seq", "kind", "state", "created", "sent", "chunks", "attempts", "last error")
    for r in rows:
        table.add_row(
            str(r.seq),
            r.kind,
            r.state,
            r.created_at.isoformat(timespec="seconds"),
            r.sent_at.isoformat(timespec="seconds") if r.sent_at else "-",
            f"{r.chunks_sent}/{r.chunks}" + ("" if r.retained else " (purged)"),
            str(r.attempts),
            cell(r.last_error, 80),
        )
    print_table(table)


@outbox_group.command("show")
@click.argument("seq", type=int)
@click.option(
    "--redact/--no-redact",
    default=None,
    help="Hide device IPs and locations (default: [outbox] redact_ips / redact_locations).",
)
@pass_obj
def show_command(obj: ClientContext, seq: int, redact: bool | None) -> None:
    """Print the exact plaintext of report SEQ as it was sealed: what left the network."""
    o = obj.config.outbox
    ips = o.redact_ips if redact is None else redact
    locations = o.redact_locations if redact is None else redact
    with Store.open_readonly(obj.existing_store()) as store:  # works on a read-only data dir
        plaintext = store.plaintext(seq)
    print_json(redacted(plaintext, ips=ips, locations=locations))


@outbox_group.command("rechunk")
@click.argument("seq", type=int)
@click.option("--chunk-bytes", type=int, default=None, help="Largest chunk (default: [outbox] chunk_bytes).")
@pass_obj
def rechunk_command(obj: ClientContext, seq: int, chunk_bytes: int | None) -> None:
    """Split unsent report SEQ again into smaller mails, e.g. after the relay refused it as too large.

    Lower [outbox] chunk_bytes first, so later reports are split that way from the start.
    """
    size = chunk_bytes or obj.config.outbox.chunk_bytes
    with Store.in_data_dir(obj.data_dir) as store:
        n = rechunk(store, seq, size)
    click.echo(f"report {seq} is now {n} mail(s) of at most {size} bytes each")


@outbox_group.command("renumber")
@click.option(
    "--after",
    type=int,
    required=True,
    help="The highest number the server has loaded (its seq_conflict quarantine names it).",
)
@json_option
@pass_obj
def renumber_command(obj: ClientContext, after: int, as_json: bool) -> None:
    """Seal the kept reports numbered AFTER or lower again under new numbers above AFTER.

    For a client whose data directory was reset or restored while it kept its key: it counts
    from an earlier number again, and the server quarantines those reports as seq_conflict.
    The running daemon (or the next `fsm-client run --once` / `send`) delivers them.
    """
    with Store.in_data_dir(obj.data_dir) as store:
        done = renumber(store, Sealer.from_config(obj.config, obj.data_dir), after=after)
    if as_json:
        print_json(
            {
                "moved": [{"from": a, "to": b} for a, b in done.moved],
                "purged": list(done.purged),
                "next_seq": done.next_seq,
            }
        )
        return
    if done.moved:
        pairs = ", ".join(f"{a}->{b}" for a, b in done.moved)
        click.echo(f"sealed {len(done.moved)} report(s) again under new numbers: {pairs}")
    if done.purged:
        click.echo(
            f"could not seal {len(done.purged)} report(s) again, their plaintext is past retention: "
            + ", ".join(map(str, done.purged))
        )
    click.echo(f"the next report is number {done.next_seq}")


@click.command("resend")
@click.option("--from", "first", type=int, required=True, help="First report number to send again.")
@click.option("--to", "last", type=int, default=None, help="Last report number (default: the newest).")
@pass_obj
def resend_command(obj: ClientContext, first: int, last: int | None) -> None:
    """Queue retained reports FROM..TO to be sent again under their own numbers.

    The server ignores numbers it already has, so resending is always safe. The running
    daemon (or the next `fsm-client run --once` / `send`) delivers them.
    """
    with Store.in_data_dir(obj.data_dir) as store:
        seqs = store.requeue(first, last)
    click.echo(
        f"queued {len(seqs)} report(s) for resending: {seqs[0]}..{seqs[-1]}" if seqs else "nothing to resend"
    )


__all__ = ["outbox_group", "resend_command"]
