"""`fsm-server api-tokens add|list|revoke`: the read-only API's bearer tokens from the shell.

The shell's user acts as the server's operator: any dealer or customer. Each change is in the
audit log under ``cli:<login>``.
"""

from __future__ import annotations

import click
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table

from .. import wiring
from ..api import tokens
from ..context import ServerContext


@click.group("api-tokens")
def api_tokens_group() -> None:
    """Bearer tokens of the read-only API (docs/api.md): add one for a dealer or a customer, list, revoke."""


@api_tokens_group.command("add")
@click.argument("name")
@click.option("--dealer", default=None, help="The token reads what this dealer's users see.")
@click.option("--customer", default=None, help="The token reads this customer's devices only.")
@json_option
@pass_obj
def add_command(
    ctx: ServerContext, name: str, dealer: str | None, customer: str | None, as_json: bool
) -> None:
    """Make a token NAME (what it is for) scoped to --dealer D or --customer C and print it: it is
    shown only now (the server keeps its hash)."""
    with wiring.open_db(ctx):
        info, secret = tokens.create(name, dealer=dealer, customer=customer, by=None)
    if as_json:
        print_json({"token": info, "secret": secret})
        return
    click.echo(
        f"API token {info.id} {info.name!r} for {info.scope} {info.of!r}; copy it now, it is not shown again:"
    )
    click.echo(secret)


@api_tokens_group.command("list")
@json_option
@pass_obj
def list_command(ctx: ServerContext, as_json: bool) -> None:
    """Every token with its scope, maker and last use (never the token itself)."""
    with wiring.open_db(ctx, only_reads=True):
        rows = tokens.list_tokens(None)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "token", "reads as", "made", "by", "last used", "state")
    for t in rows:
        table.add_row(
            str(t.id),
            cell(t.name),
            f"{t.prefix}…",
            cell(f"{t.scope} {t.of}"),
            f"{t.created_at:%Y-%m-%d %H:%M}",
            cell(t.created_by),
            f"{t.last_used_at:%Y-%m-%d %H:%M} {t.last_used_address}" if t.last_used_at else "never",
            "active" if t.active else f"revoked {t.revoked_at:%Y-%m-%d %H:%M}",
        )
    print_table(table)


@api_tokens_group.command("revoke")
@click.argument("token_id", type=int)
@pass_obj
def revoke_command(ctx: ServerContext, token_id: int) -> None:
    """Revoke token TOKEN_ID (see `api-tokens list`): requests carrying it get 401 from now on."""
    with wiring.open_db(ctx):
        info = tokens.revoke(token_id, by=None)
    click.echo(f"revoked API token {info.id} {info.name!r}")


__all__ = ["api_tokens_group"]
