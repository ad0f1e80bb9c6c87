"""`fsm-server`: a thin command layer over the server's core API."""

from __future__ import annotations

import click

from fsm_protocol.cli import FsmGroup, choose_config, given_by
from fsm_protocol.errors import FsmError

from ..config import CONFIG_ENV, CONFIG_SEARCH
from ..context import ServerContext


@click.group(cls=FsmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar=CONFIG_ENV,
              help=f"Server config file (TOML) [default: ${CONFIG_ENV}, else the first of "
                   f"{', '.join(CONFIG_SEARCH)} that exists].")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="FSM_SERVER_DATA_DIR",
              help="Where the database, keys and quarantine live.")
@click.version_option(package_name="fsm")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, data_dir: str | None) -> None:
    """Ingest sealed fleet reports from IMAP and serve meter reads, supplies and alerts."""
    try:
        choice = choose_config(ctx, config_path, env_var=CONFIG_ENV, search=CONFIG_SEARCH)
        data_dir_by = given_by(ctx, "data_dir", "--data-dir", "FSM_SERVER_DATA_DIR")
        ctx.obj = ServerContext.from_choice(choice, data_dir, data_dir_by)
    except FsmError as exc:
        click.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        ctx.exit(exc.exit_code)


from .keys import keys_group  # noqa: E402 - commands register after the group exists

main.add_command(keys_group)

from .clients import clients_group  # noqa: E402
from .customers import customers_group, dealers_group  # noqa: E402
from .db import db_group  # noqa: E402
from .devices import devices_command  # noqa: E402
from .gaps import gaps_command  # noqa: E402
from .importcmd import import_command  # noqa: E402
from .ingest import ingest_command  # noqa: E402
from .quarantine import quarantine_group  # noqa: E402
from .receive import receive_command  # noqa: E402

for _command in (clients_group, customers_group, db_group, dealers_group, devices_command, gaps_command,
                 import_command, ingest_command, quarantine_group, receive_command):
    main.add_command(_command)

from .backup import backup_group, restore_command  # noqa: E402
from .notify import notify_command  # noqa: E402
from .report import report_command  # noqa: E402

main.add_command(backup_group)
main.add_command(restore_command)
main.add_command(notify_command)
main.add_command(report_command)

from .audit import audit_group  # noqa: E402
from .billing import billing_group  # noqa: E402
from .users import users_group  # noqa: E402
from .web import web_command  # noqa: E402

for _command in (audit_group, billing_group, users_group, web_command):
    main.add_command(_command)

__all__ = ["main"]
