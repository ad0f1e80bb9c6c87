"""`fsm-server audit verify|list`: the portal's hash-chained audit log."""

from __future__ import annotations

import click
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table

from .. import audit, wiring
from ..context import ServerContext
from ..errors import AuditError


@click.group("audit")
def audit_group() -> None:
    """Check and read the audit log (logins, user and role changes, session and quarantine actions)."""


@audit_group.command("verify")
@json_option
@pass_obj
def verify_command(ctx: ServerContext, as_json: bool) -> None:
    """Recompute the hash chain from the first entry; exit 1 naming the first entry that breaks it."""
    with wiring.open_db(ctx, only_reads=True):
        verdict = audit.verify()
    if as_json:
        print_json(verdict)
    if not verdict.ok:
        raise AuditError(
            f"the audit log is broken at entry {verdict.first_bad}: {verdict.problem} "
            f"({verdict.entries} entries before it are intact)",
            hint="restore the log from a backup, and find out who could write to the database",
        )
    if not as_json:
        click.echo(f"audit log intact: {verdict.entries} entries, newest hash {verdict.newest_hash}")


@audit_group.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@json_option
@pass_obj
def list_command(ctx: ServerContext, limit: int, as_json: bool) -> None:
    """The newest entries first."""
    with wiring.open_db(ctx, only_reads=True):
        rows = audit.entries(limit=limit)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "time (UTC)", "who", "action", "about", "address", "detail")
    for e in rows:
        detail = "; ".join(f"{k}: {v}" for k, v in e.detail.items())
        table.add_row(
            str(e.id),
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            cell(e.actor),
            e.action,
            cell(e.target),
            e.address,
            cell(detail),
        )
    print_table(table)


__all__ = ["audit_group"]
