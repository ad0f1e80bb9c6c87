"""`fsm-client`: a thin command layer over the client's core API."""

from __future__ import annotations

import click

from fsm_common.cli import FsmGroup, open_context

from ..config import CONFIG_ENV, CONFIG_SEARCH
from ..context import ClientContext
from .discover import discover_command
from .keys import keys_group
from .outbox import outbox_group, resend_command
from .pmd import pmd_group
from .run import run_command, send_command
from .scan import scan_command
from .status import status_command
from .ui import ui_group

#: Every command of `fsm-client`, registered with the group (`--help` lists them by name).
COMMANDS: tuple[click.Command, ...] = (scan_command, discover_command, pmd_group, run_command, send_command,
                                       outbox_group, resend_command, status_command, keys_group,
                                       ui_group)


@click.group(cls=FsmGroup, commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar=CONFIG_ENV,
              help=f"Client config file (TOML) [default: ${CONFIG_ENV}, else the first of "
                   f"{', '.join(CONFIG_SEARCH)} that exists].")
@click.option("--data-dir", type=click.Path(file_okay=False), envvar="FSM_CLIENT_DATA_DIR",
              help="Where the local store, keys and outbox live.")
@click.version_option(package_name="fsm")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, data_dir: str | None) -> None:
    """Read printers by SNMP and mail sealed reports to the dealer's server."""
    open_context(ctx, config_path, data_dir, config_env=CONFIG_ENV, search=CONFIG_SEARCH,
                 data_dir_env="FSM_CLIENT_DATA_DIR", make=ClientContext.from_choice)


from . import pmd_bundle  # noqa: E402, F401 - adds update, rollback, status, bundle, keygen to `pmd`

__all__ = ["COMMANDS", "main"]
