"""`fsm-client pmd list | show ID | match TARGET | test WALK`: the PMD author's tools."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import click
import msgspec
from rich.table import Table

from fsm_common.cli import cell, json_option, pass_obj, print_json, print_table

from ..context import ClientContext
from ..pmd.authoring.expectations import compare, load_expected
from ..pmd.authoring.explain import match_target
from ..pmd.authoring.loader import load_files
from ..pmd.authoring.walktest import read_walk
from ..reader import device_json
from ..scan import default_pool


class _ListRow(TypedDict):
    id: str
    name: str
    extends: str | None
    priority: int
    sys_object_id: list[str]
    sys_descr: list[str]
    file: str


@click.group("pmd")
def pmd_group() -> None:
    """List, inspect, match and test PMD files (per-model read instructions)."""


@pmd_group.command("list")
@json_option
@pass_obj
def list_command(ctx: ClientContext, as_json: bool) -> None:
    """List the PMDs of the pool with what they extend and match."""
    pool = default_pool(ctx.data_dir, ctx.config.pmd.local_dir)
    rows: list[_ListRow] = [
        {
            "id": p.id,
            "name": p.name,
            "extends": p.chain[1] if len(p.chain) > 1 else None,
            "priority": p.match.priority,
            "sys_object_id": p.match.sys_object_id,
            "sys_descr": p.match.sys_descr,
            "file": str(pool.files.get(p.id, "")),
        }
        for p in pool
    ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "extends", "priority", "sysObjectID", "sysDescr", "name")
    for r in rows:
        table.add_row(
            r["id"],
            r["extends"] or "",
            str(r["priority"]),
            " ".join(r["sys_object_id"]),
            " ".join(r["sys_descr"]),
            r["name"],
        )
    print_table(table)


@pmd_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@json_option
@pass_obj
def check_command(ctx: ClientContext, paths: tuple[str, ...], as_json: bool) -> None:
    """Check the pool, or PATH... (PMD files or directories) on top of it, without using them.

    Exits 3 naming the file, key and value of the first error."""
    pool = default_pool(ctx.data_dir, ctx.config.pmd.local_dir)
    mine: list[Path] = []
    if paths:
        files = {p.stem: p for p in pool.files.values()}
        for path in map(Path, paths):
            mine += sorted(path.glob("*.toml")) if path.is_dir() else [path]
        files.update((f.stem, f) for f in mine)
        pool = load_files(list(files.values()))
    if as_json:
        print_json({"pmds": len(pool), "checked": [str(f) for f in mine]})
    else:
        click.echo(
            f"{len(pool)} PMDs load without error"
            + (f", {len(mine)} of them from {', '.join(paths)}" if paths else "")
        )


@pmd_group.command("show")
@click.argument("pmd_id")
@pass_obj
def show_command(ctx: ClientContext, pmd_id: str) -> None:
    """Print PMD_ID as loaded: merged with what it extends, every default filled in (JSON)."""
    print_json(msgspec.to_builtins(default_pool(ctx.data_dir, ctx.config.pmd.local_dir).get(pmd_id)))


@pmd_group.command("match")
@click.argument("target")
@click.option("--community", "-c", help="SNMP v2c community (default: the configured credentials).")
@json_option
@pass_obj
def match_command(ctx: ClientContext, target: str, community: str | None, as_json: bool) -> None:
    """Show which PMD TARGET (a host[:port] or a .snmprec file) gets, and the other candidates."""
    result = match_target(target, default_pool(ctx.data_dir, ctx.config.pmd.local_dir), ctx.config, community)
    if as_json:
        print_json(result)
        return
    click.echo(f"sysObjectID {result.sys_object_id!s}\nsysDescr    {result.sys_descr}")
    click.echo(f"PMD         {result.pmd} ({' -> '.join(result.chain)})")
    for c in result.candidates:
        click.echo(
            f"  candidate {c.id}: priority {c.priority}, sysDescr matched {c.sys_descr_matched}, "
            f"sysObjectID prefix arcs {c.oid_prefix_arcs}"
        )


@pmd_group.command("test")
@click.argument("walk", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--expected",
    type=click.Path(exists=True, dir_okay=False),
    help="expected.json to diff against (exit 1 when a value differs).",
)
@click.option("--pmd", "pmd_id", help="Read with this PMD instead of the one the matcher picks.")
@click.option(
    "--direct", is_flag=True, help="Read the recording from the file instead of serving it with snmpsim."
)
@json_option
@pass_obj
def test_command(
    ctx: ClientContext, walk: str, expected: str | None, pmd_id: str | None, direct: bool, as_json: bool
) -> None:
    """Read the recording WALK (.snmprec) with the pool and print the reading or the diff.

    The walk is served by a private snmpsim on a loopback port and read over SNMP, as a
    scan reads a device (--direct, or no snmpsim installed: read from the file)."""
    pool = default_pool(ctx.data_dir, ctx.config.pmd.local_dir)
    result = read_walk(
        walk,
        pool,
        pmd_id=pmd_id,
        serve=not direct,
        timeout=ctx.config.snmp.timeout,
        retries=ctx.config.snmp.retries,
    )
    if result.note:
        click.echo(f"note: {result.note}", err=True)
    reading = device_json(result.device)
    if expected is None:
        print_json(reading)
        return
    checks = compare(load_expected(Path(expected)), reading)
    bad = [c for c in checks if not c.ok]
    if as_json:
        print_json(
            {
                "pmd": reading["pmd"],
                "read_via": result.via,
                "checks": [msgspec.to_builtins(c.__dict__) for c in checks],
                "passed": len(checks) - len(bad),
                "total": len(checks),
            }
        )
    else:
        table = Table("field", "ok", "expected", "got")
        for c in checks:
            table.add_row(c.field, "yes" if c.ok else "NO", cell(repr(c.expected), 80), cell(repr(c.got), 80))
        print_table(table)
        click.echo(
            f"{reading['pmd']} (read via {result.via}): {len(checks) - len(bad)}/{len(checks)} "
            "values as expected"
        )
    if bad:
        raise click.exceptions.Exit(1)


__all__ = ["pmd_group"]
