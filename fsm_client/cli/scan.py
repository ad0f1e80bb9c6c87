"""`fsm-client scan TARGET...`: read printers now and print what was read."""

from __future__ import annotations

import asyncio

import click
import msgspec
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table
from fsm_common.configfile import Secret
from fsm_protocol.schema import Device

from ..config import Credential
from ..context import ClientContext
from ..reader import device_json
from ..scan import default_pool, scan
from ..store import Store


def _supplies_text(device: Device) -> str:
    parts = []
    for s in device.supplies:
        if s.kind not in ("toner", "toner_cartridge", "ink", "ink_cartridge", "ink_ribbon"):
            continue
        level = f"{s.percent:g}%" if s.percent is not None else s.state.replace("_", " ")
        parts.append(f"{s.color or s.description or s.index}: {level}")
    return ", ".join(parts)


def render_table(devices: list[Device]) -> Table:
    table = Table("ip", "state", "manufacturer", "model", "serial", "total", "toner / ink", "status")
    for d in devices:
        status = ", ".join(d.status.conditions) or (d.status.printer or d.status.device or "")
        table.add_row(
            cell(d.ip),
            d.reachability,
            cell(d.manufacturer),
            cell(d.model),
            cell(d.serial),
            str(d.counters.get("total", "")),
            cell(_supplies_text(d), 80),
            cell(status, 80),
        )
    return table


@click.command("scan")
@click.argument("targets", nargs=-1, required=True)
@click.option("--community", "-c", help="SNMP v2c community to use instead of the configured credentials.")
@click.option("--timeout", type=float, help="Seconds to wait for each answer (default: config snmp.timeout).")
@click.option("--retries", type=int, help="Retries per request (default: config snmp.retries).")
@click.option(
    "--exclude",
    "-x",
    multiple=True,
    metavar="RANGE",
    help="Addresses never probed nor read (CIDR, a.b.c.d-e, address); repeatable.",
)
@click.option("--no-store", is_flag=True, help="Do not write the readings to the local store.")
@json_option
@pass_obj
def scan_command(
    ctx: ClientContext,
    targets: tuple[str, ...],
    community: str | None,
    timeout: float | None,
    retries: int | None,
    exclude: tuple[str, ...],
    no_store: bool,
    as_json: bool,
) -> None:
    """Read TARGET... (host, host:port, CIDR or a.b.c.d-e) by SNMP and print the readings.

    Each reading is kept in the local store (to go out with the next report) unless
    --no-store is given.
    """
    config = ctx.config
    if timeout is not None:
        config = msgspec.structs.replace(config, snmp=msgspec.structs.replace(config.snmp, timeout=timeout))
    if retries is not None:
        config = msgspec.structs.replace(config, snmp=msgspec.structs.replace(config.snmp, retries=retries))
    credentials = (
        [Credential(name="--community", version="2c", community=Secret(community))] if community else None
    )
    pool = default_pool(ctx.data_dir, ctx.config.pmd.local_dir)
    devices = asyncio.run(
        scan(list(targets), config=config, pool=pool, credentials=credentials, exclude=list(exclude))
    )
    if not no_store:
        with Store.in_data_dir(ctx.data_dir) as store, store.atomic():
            for device in devices:
                store.add_reading(device, kind="scan")
    if as_json:
        print_json([device_json(d) for d in devices])
    else:
        print_table(render_table(devices))


__all__ = ["render_table", "scan_command"]
