"""`fsm-server`: a thin command layer over the server's core API."""

from __future__ import annotations

import click

from fsm_common.cli import program

from ..config import CONFIG_ENV, CONFIG_SEARCH
from ..context import ServerContext
from .api_tokens import api_tokens_group
from .audit import audit_group
from .backup import backup_group, restore_command
from .billing import billing_group
from .clients import clients_group
from .customers import customers_group, dealers_group
from .db import db_group
from .devices import devices_command
from .gaps import gaps_command
from .importcmd import import_command
from .ingest import ingest_command
from .keys import keys_group
from .notify import notify_command
from .orders import orders_group
from .quarantine import quarantine_group
from .receive import receive_command
from .report import report_command
from .users import users_group
from .web import web_command

#: Every command of `fsm-server`, registered with the group (`--help` lists them by name).
COMMANDS: tuple[click.Command, ...] = (
    keys_group,
    clients_group,
    customers_group,
    dealers_group,
    db_group,
    devices_command,
    gaps_command,
    import_command,
    ingest_command,
    quarantine_group,
    receive_command,
    backup_group,
    restore_command,
    notify_command,
    report_command,
    audit_group,
    api_tokens_group,
    billing_group,
    orders_group,
    users_group,
    web_command,
)


main = program(
    "Ingest sealed fleet reports from IMAP and serve meter reads, supplies and alerts.",
    commands=COMMANDS,
    what="Server",
    config_env=CONFIG_ENV,
    search=CONFIG_SEARCH,
    data_dir_env="FSM_SERVER_DATA_DIR",
    data_dir_help="Where the database, keys and quarantine live.",
    make=ServerContext.from_choice,
)


__all__ = ["COMMANDS", "main"]
