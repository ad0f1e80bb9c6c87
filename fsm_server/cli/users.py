"""`fsm-server users add|list|disable|enable|reset|set-role`: portal accounts from the shell.

The shell's user acts as the server's operator: it manages every account. Each change is in
the audit log under ``cli:<login>``.
"""

from __future__ import annotations

import click
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table

from .. import wiring
from ..accounts import ROLES, users
from ..accounts.users import UserInfo
from ..context import ServerContext
from ..web.app import public_url

_role = click.option(
    "--role",
    type=click.Choice(ROLES),
    required=True,
    help="admin: everything; dealer: the customers of one dealer; customer: its own customers.",
)
_customer = click.option(
    "--customer", "customers", multiple=True, help="A customer a customer user sees (repeat for several)."
)
_dealer = click.option("--dealer", default=None, help="The dealer a dealer user works for.")


@click.group("users")
def users_group() -> None:
    """Portal accounts: add one (it gets a one-time setup link), list, disable, enable, reset."""


def _show_link(info: UserInfo, link: str, as_json: bool, what: str) -> None:
    if as_json:
        print_json({"user": info, "setup_link": link})
        return
    click.echo(
        f"{what} {info.name} ({info.role}). One-time setup link (give it to {info.name} over a "
        f"channel you trust; it expires and works once):"
    )
    click.echo(link)


@users_group.command("add")
@click.argument("name")
@_role
@_customer
@_dealer
@json_option
@pass_obj
def add_command(
    ctx: ServerContext, name: str, role: str, customers: tuple[str, ...], dealer: str | None, as_json: bool
) -> None:
    """Add user NAME and print its setup link: the user sets a password there (and, for admin and
    dealer, enrols an authenticator app) before the first login."""
    with wiring.open_db(ctx):
        info, link = users.add_user(
            name,
            role,
            customers=customers,
            dealer=dealer,
            by=None,
            settings=ctx.config.web,
            base_url=public_url(ctx),
        )
    _show_link(info, link, as_json, "added")


@users_group.command("list")
@json_option
@pass_obj
def list_command(ctx: ServerContext, as_json: bool) -> None:
    """Every portal user with role, scope and state."""
    with wiring.open_db(ctx, only_reads=True):
        rows = users.list_users(None)
    if as_json:
        print_json(rows)
        return
    table = Table("name", "role", "scope", "state", "2fa", "created", "by")
    for u in rows:
        scope = u.dealer or ", ".join(u.customers) or "all"
        state = "disabled" if not u.enabled else ("active" if u.password_set else "setup pending")
        table.add_row(
            cell(u.name),
            u.role,
            cell(scope),
            state,
            "yes" if u.totp else "no",
            f"{u.created_at:%Y-%m-%d %H:%M}",
            cell(u.created_by),
        )
    print_table(table)


@users_group.command("disable")
@click.argument("name")
@pass_obj
def disable_command(ctx: ServerContext, name: str) -> None:
    """Disable NAME: every session ends now and no login works until `users enable`."""
    with wiring.open_db(ctx):
        info = users.set_enabled(name, False, by=None)
    click.echo(f"disabled {info.name}; its sessions have ended")


@users_group.command("enable")
@click.argument("name")
@pass_obj
def enable_command(ctx: ServerContext, name: str) -> None:
    """Enable NAME again."""
    with wiring.open_db(ctx):
        info = users.set_enabled(name, True, by=None)
    click.echo(f"enabled {info.name}")


@users_group.command("reset")
@click.argument("name")
@json_option
@pass_obj
def reset_command(ctx: ServerContext, name: str, as_json: bool) -> None:
    """Forget NAME's password and authenticator, end its sessions, print a new setup link."""
    with wiring.open_db(ctx):
        info, link = users.reset(name, by=None, settings=ctx.config.web, base_url=public_url(ctx))
    _show_link(info, link, as_json, "reset")


@users_group.command("set-role")
@click.argument("name")
@_role
@_customer
@_dealer
@pass_obj
def set_role_command(
    ctx: ServerContext, name: str, role: str, customers: tuple[str, ...], dealer: str | None
) -> None:
    """Give NAME another role or scope; its sessions end (a new admin or dealer without an
    authenticator gets a setup link)."""
    with wiring.open_db(ctx):
        info, link = users.set_role(
            name,
            role,
            dealer=dealer,
            customers=customers,
            by=None,
            settings=ctx.config.web,
            base_url=public_url(ctx),
        )
    scope = info.dealer or ", ".join(info.customers) or "all"
    click.echo(f"{info.name} is now {info.role} ({scope}); its sessions have ended")
    if link:
        click.echo(f"it needs an authenticator: setup link {link}")


__all__ = ["users_group"]
