"""`fsm-client discover RANGE...`: which addresses answer SNMP, with which credential."""

from __future__ import annotations

import asyncio

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table
from fsm_common.configfile import Secret

from ..config import Credential
from ..context import ClientContext
from ..snmp.discovery import Found, SweepProgress, sweep


def render_table(found: list[Found]) -> Table:
    table = Table("ip", "credential", "version", "sysObjectID", "sysDescr")
    for f in found:
        table.add_row(f.ip, cell(f.credential), f.version, cell(f.sys_object_id), cell(f.sys_descr, 80))
    return table


@click.command("discover")
@click.argument("ranges", nargs=-1, required=True)
@click.option("--exclude", "-x", multiple=True, help="Address or range to leave out (repeatable).")
@click.option(
    "--community",
    "-c",
    multiple=True,
    help="SNMP v2c community to try instead of the configured credentials (repeatable, in order).",
)
@click.option("--port", type=int, help="UDP port (default: config snmp.port).")
@click.option("--timeout", type=float, help="Seconds to wait for an answer (default: config snmp.timeout).")
@click.option("--retries", type=int, help="Probes after the first (default: config snmp.retries).")
@click.option("--rate", type=int, help="Probes per second at most (default: config snmp.discovery_rate).")
@json_option
@pass_obj
def discover_command(
    ctx: ClientContext,
    ranges: tuple[str, ...],
    exclude: tuple[str, ...],
    community: tuple[str, ...],
    port: int | None,
    timeout: float | None,
    retries: int | None,
    rate: int | None,
    as_json: bool,
) -> None:
    """Sweep RANGE... (CIDR, a.b.c.d-e, a.b.c.d-a.b.c.e, address or host name) for SNMP agents.

    Sends unicast SNMP GETs of sysObjectID and sysDescr, never to network, broadcast or
    multicast addresses; credentials are tried in order on the addresses that have not
    answered yet. Prints every address that answered; read them with `fsm-client scan`.
    """
    snmp = ctx.config.snmp
    credentials = (
        [
            Credential(name=f"--community #{i}", version="2c", community=Secret(c))
            for i, c in enumerate(community, 1)
        ]
        if community
        else list(ctx.config.credentials)
    )
    kwargs = dict(
        credentials=credentials,
        port=port or snmp.port,
        timeout=timeout if timeout is not None else snmp.timeout,
        retries=retries if retries is not None else snmp.retries,
        rate=rate if rate is not None else snmp.discovery_rate,
        exclude=exclude,
    )
    err = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("found {task.fields[found]}"),
        TimeElapsedColumn(),
        console=err,
        transient=as_json,
        disable=not err.is_terminal,
    ) as bar:
        task = bar.add_task("sweeping", total=None, found=0)

        def progress(p: SweepProgress) -> None:
            bar.update(
                task,
                description=f"{p.credential} ({p.phase}/{p.phases})",
                completed=p.done,
                total=p.total,
                found=p.found,
            )

        found = asyncio.run(sweep(list(ranges), progress=progress, **kwargs))  # type: ignore[arg-type]
    if as_json:
        print_json(found)
    else:
        print_table(render_table(found))
        Console(stderr=True).print(f"{len(found)} SNMP agent(s) found")


__all__ = ["discover_command", "render_table"]
