"""`fsm-server backup [--to DIR]`, `backup status`, `backup verify FILE` and `restore FILE`."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.table import Table

from fsm_common.cli import json_option, pass_obj, print_json, print_table

from .. import wiring
from ..backup import keywrap
from ..backup.restore import RestoreResult, read_key, restore, verify, write_key
from ..backup.schedule import run_backup, status
from ..context import ServerContext
from ..db import open_database
from ..db.connect import database_url_from_env, redact

PASSPHRASE_ENV = "FSM_BACKUP_PASSPHRASE"

passphrase_option = click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help=f"File whose first line is the key's passphrase [default: [backup] passphrase_file, "
    f"${PASSPHRASE_ENV}, else asked].",
)


def _passphrase(ctx: ServerContext, given: Path | None, *, confirm: bool) -> str:
    path = given or ctx.config.backup.passphrase_file
    if path is not None:
        return keywrap.read_passphrase_file(path)
    if os.environ.get(PASSPHRASE_ENV):
        return keywrap.check_passphrase(os.environ[PASSPHRASE_ENV])
    asked = click.prompt(
        "Passphrase of the server key in the backup", hide_input=True, confirmation_prompt=confirm, err=True
    )
    return keywrap.check_passphrase(asked)


@click.group("backup", invoke_without_command=True)
@click.option(
    "--to",
    "to",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write to [default: [backup] dir, else <data-dir>/backups]; not rotated.",
)
@click.option("--with-keys", is_flag=True, help="Add the server key, encrypted under a passphrase.")
@passphrase_option
@json_option
@click.pass_context
def backup_group(
    click_ctx: click.Context, to: Path | None, with_keys: bool, passphrase_file: Path | None, as_json: bool
) -> None:
    """Back up the database while ingest goes on (a file with a manifest, written whole or not at all)."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx: ServerContext = click_ctx.obj
    plan = wiring.backup_plan(ctx)
    keys = with_keys or ctx.config.backup.with_keys
    passphrase = _passphrase(ctx, passphrase_file, confirm=True) if keys else None
    with wiring.open_db(ctx, only_reads=True) as db:
        result = run_backup(db, plan, to=to, with_keys=keys, passphrase=passphrase)
    m = result.manifest
    if as_json:
        print_json(
            {
                "path": str(result.path),
                "size": result.size,
                "sha256": result.sha256,
                "rows": m.total_rows,
                "tables": {t.name: t.rows for t in m.tables},
                "schema": m.schema,
                "keys": m.keys is not None,
                "seconds": m.seconds,
            }
        )
        return
    click.echo(f"backup written: {result.path}")
    click.echo(
        f"  {m.total_rows} rows in {len(m.tables)} tables, {result.size} bytes, {m.seconds:.1f} s; "
        f"sha256 {result.sha256}"
    )
    click.echo(
        "  server key: "
        + (
            "included, encrypted under the passphrase"
            if m.keys
            else "not included (keep it apart: without it reports in the mailbox cannot be opened)"
        )
    )


@backup_group.command("status")
@json_option
@pass_obj
def status_command(ctx: ServerContext, as_json: bool) -> None:
    """The last backups, whether one failed or is overdue, and the files kept."""
    with wiring.open_db(ctx, only_reads=True):
        s = status(wiring.backup_plan(ctx))
    if as_json:
        print_json(s)
        return
    table = Table(show_header=False, box=None)
    table.add_row("directory", s.directory)
    table.add_row("schedule", f"daily at {s.hour:02d}:00 by `fsm-server ingest`" if s.scheduled else "off")
    table.add_row(
        "last backup",
        f"{s.last_ok_at:%Y-%m-%d %H:%M} UTC  {s.last_ok_path} ({s.last_ok_size} bytes)"
        if s.last_ok_at
        else "none yet",
    )
    if s.last_status == "failed" and s.last_attempt_at:
        table.add_row("last attempt", f"FAILED {s.last_attempt_at:%Y-%m-%d %H:%M} UTC: {s.last_error}")
    if s.due_by:
        table.add_row("next due by", f"{s.due_by:%Y-%m-%d %H:%M} UTC" + ("  MISSED" if s.missed else ""))
    table.add_row("files kept", f"{s.files}" + (f", newest {s.newest_file}" if s.newest_file else ""))
    print_table(table)


def _render_restore(r: RestoreResult, as_json: bool, what: str) -> None:
    m = r.manifest
    if as_json:
        print_json(
            {
                "created_at": m.created_at,
                "source": m.source,
                "target": r.target,
                "rows": r.rows,
                "migrated": r.migrated,
                "replaced": r.replaced,
                "seconds": round(r.seconds, 3),
                "keys": m.keys is not None,
            }
        )
        return
    click.echo(
        f"{what}: backup of {m.created_at:%Y-%m-%d %H:%M} UTC ({m.source}, fsm {m.fsm_version}) "
        f"into {r.target}: {sum(r.rows.get(t.name, 0) for t in m.tables)} rows in {len(m.tables)} "
        f"tables, counts and checksums match, {r.seconds:.1f} s"
    )
    if r.migrated:
        click.echo(f"  migrated from the backup's schema: {', '.join(r.migrated)}")


@backup_group.command("verify")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
@pass_obj
def verify_command(ctx: ServerContext, file: Path, as_json: bool) -> None:
    """Check FILE and restore it into a scratch database; the live one is not touched."""
    _render_restore(verify(file), as_json, "verified")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that holds data (and a different key).")
@click.option("--with-keys", is_flag=True, help="Also write the server key kept in the backup.")
@passphrase_option
@json_option
@pass_obj
def restore_command(
    ctx: ServerContext, file: Path, force: bool, with_keys: bool, passphrase_file: Path | None, as_json: bool
) -> None:
    """Restore FILE into the configured database (SQLite or PostgreSQL, from either), checked first."""
    url = database_url_from_env(ctx.config.database.url)
    key = None
    if with_keys:  # a wrong passphrase is found before anything changes
        key = read_key(file, _passphrase(ctx, passphrase_file, confirm=False))
    with open_database(url, data_dir=ctx.data_dir, migrate=False) as db:
        result = restore(file, db, force=force)
    _render_restore(result, as_json, f"restored into {redact(db.url)}")
    if key is not None:
        dest = write_key(key, wiring.encryption_key_path(ctx), force=force)
        if not as_json:
            click.echo(f"  server key written to {dest}")


__all__ = ["backup_group", "restore_command"]
