"""`fsm-client`: a thin command layer over the client's core API."""

from __future__ import annotations

import click

from fsm_common.cli import program

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
COMMANDS: tuple[click.Command, ...] = (
    scan_command,
    discover_command,
    pmd_group,
    run_command,
    send_command,
    outbox_group,
    resend_command,
    status_command,
    keys_group,
    ui_group,
)


main = program(
    "Read printers by SNMP and mail sealed reports to the dealer's server.",
    commands=COMMANDS,
    what="Client",
    config_env=CONFIG_ENV,
    search=CONFIG_SEARCH,
    data_dir_env="FSM_CLIENT_DATA_DIR",
    data_dir_help="Where the local store, keys and outbox live.",
    make=ClientContext.from_choice,
)


from . import pmd_bundle  # noqa: E402, F401 - adds update, rollback, status, bundle, keygen to `pmd`

__all__ = ["COMMANDS", "main"]
