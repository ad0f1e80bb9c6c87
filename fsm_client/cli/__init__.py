"""`fsm-client`: a thin command layer over the client's core API."""

from __future__ import annotations

import click

from fsm_protocol.cli import FsmGroup, choose_config, given_by
from fsm_protocol.errors import FsmError

from ..config import CONFIG_ENV, CONFIG_SEARCH
from ..context import ClientContext


@click.group(cls=FsmGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar=CONFIG_ENV,
              help=f"Client config file (TOML) [default: ${CONFIG_ENV}, else the first of "
                   f"{', '.join(CONFIG_SEARCH)} that exists].")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="FSM_CLIENT_DATA_DIR",
              help="Where the local store, keys and outbox live.")
@click.version_option(package_name="fsm")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, data_dir: str | None) -> None:
    """Read printers by SNMP and mail sealed reports to the dealer's server."""
    try:
        choice = choose_config(ctx, config_path, env_var=CONFIG_ENV, search=CONFIG_SEARCH)
        data_dir_by = given_by(ctx, "data_dir", "--data-dir", "FSM_CLIENT_DATA_DIR")
        ctx.obj = ClientContext.from_choice(choice, data_dir, data_dir_by)
    except FsmError as exc:
        click.secho(f"error: {exc.message}", fg="red", err=True)
        if exc.hint:
            click.echo(f"hint: {exc.hint}", err=True)
        ctx.exit(exc.exit_code)


from .discover import discover_command  # noqa: E402
from .keys import keys_group  # noqa: E402
from .outbox import outbox_group, resend_command  # noqa: E402
from .pmd import pmd_group  # noqa: E402 - commands register after the group exists
from .run import run_command, send_command  # noqa: E402
from .scan import scan_command  # noqa: E402
from .status import status_command  # noqa: E402
from .ui import ui_group  # noqa: E402

main.add_command(scan_command)
main.add_command(discover_command)
main.add_command(pmd_group)
main.add_command(run_command)
main.add_command(send_command)
main.add_command(outbox_group)
main.add_command(resend_command)
main.add_command(status_command)
main.add_command(keys_group)
main.add_command(ui_group)

from . import pmd_bundle  # noqa: E402, F401 - adds update, rollback, status, bundle, keygen to `pmd`

__all__ = ["main"]
