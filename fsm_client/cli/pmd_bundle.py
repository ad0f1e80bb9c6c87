"""`fsm-client pmd update | rollback | status | bundle | keygen`: signed PMD bundles.

The commands join the PMD engineer's `pmd` group (fsm_client/cli/pmd.py) and are thin
over fsm_client.pmd.{bundle,sets,active,update}.
"""

from __future__ import annotations

import os
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from fsm_common.cli import json_option, pass_obj, print_json, writing_output
from fsm_protocol.errors import KeyFileError
from fsm_protocol.files import write_atomic

from ..context import ClientContext
from ..pmd.distribution.active import status
from ..pmd.distribution.dirs import shipped_dir
from ..pmd.distribution.sets import PmdSets
from ..pmd.distribution.update import Updater, install_from
from .pmd import pmd_group

PUBLISHER_KEY_FILE = "publisher.key"
PUBLISHER_PUB_FILE = "publisher.pub"


def _now() -> datetime:
    return datetime.now(UTC)


@click.command("update")
@click.argument("source", required=False)
@json_option
@pass_obj
def update_command(ctx: ClientContext, source: str | None, as_json: bool) -> None:
    """Install the signed PMD bundle at SOURCE: a .zip file, an https:// URL, or a directory
    of bundles (the newest is taken). Without SOURCE, check [pmd.update] url or directory now.

    The bundle must be signed by a key in [pmd.update] publisher_keys and be newer than every
    bundle installed before; otherwise it is refused and the active set stays as it was.
    """
    if source is None:
        result = Updater(ctx.config, ctx.data_dir).update_now(_now())
        if result.outcome == "not_configured":
            raise click.UsageError("give SOURCE, or set [pmd.update] url or directory in the config")
        if as_json:
            print_json(result.to_dict())
        else:
            click.echo(f"{result.outcome.replace('_', ' ')}: {result.message}")
        if result.outcome == "failed":
            raise click.exceptions.Exit(1)
        return
    result = install_from(source, config=ctx.config, data_dir=ctx.data_dir, now=_now())
    if as_json:
        print_json(result.to_dict())
    else:
        click.echo(result.message)


@click.command("rollback")
@json_option
@pass_obj
def rollback_command(ctx: ClientContext, as_json: bool) -> None:
    """Make the PMD set that was active before the current one active again.

    The version rolled away from is not installed again by the daily update: only a newer
    bundle from the publisher replaces the restored set.
    """
    old, new = PmdSets.in_data_dir(ctx.data_dir).rollback(now=_now())
    to = f"version {new.version}" if new else "the PMD set shipped with this release"
    if as_json:
        print_json(
            {
                "from": old.version,
                "to": new.version if new else None,
                "to_set": new.name if new else "shipped",
            }
        )
    else:
        click.echo(f"rolled back from PMD bundle version {old.version} to {to}")


def _fmt(value: Any) -> str:
    return "-" if value in (None, "") else str(value)


@click.command("status")
@json_option
@pass_obj
def status_command(ctx: ClientContext, as_json: bool) -> None:
    """Show the active PMD set (version, source, when), the update schedule, local overrides,
    and the devices in the local store whose PMD changed with the last update or rollback."""
    st = status(ctx.config, ctx.data_dir)
    if as_json:
        print_json(st)
        return
    a = st["active"]
    if a["set"] == "shipped":
        click.echo(f"active:     the PMD set shipped with this release ({a['path']})")
    else:
        click.echo(
            f"active:     bundle version {a['version']} ({a['files']} files), created {a['created_at']}"
        )
        click.echo(f"            installed {a['installed_at']} from {a['source']}")
        click.echo(f"            signed by {a['signer']}")
    p = st["previous"]
    click.echo(
        f"previous:   {('version ' + str(p['version'])) if p else 'the shipped set'}"
        if a["set"] != "shipped"
        else "previous:   -"
    )
    click.echo(f"highest:    {st['highest_version'] or '-'} (a bundle must be newer to install)")
    ch = st["last_change"]
    if ch:
        click.echo(f"last:       {ch['action']} at {ch['at']}")
    click.echo(f"overrides:  {', '.join(st['local_overrides']) or 'none'} (in {_fmt(st['local_dir'])})")
    u = st["update"]
    click.echo(
        f"update:     {_fmt(u['source'])}; next check {_fmt(u['next_check'])}; "
        f"last {_fmt(u['last_outcome'])} at {_fmt(u['last_attempt'])}"
    )
    if u["last_message"]:
        click.echo(f"            {u['last_message']}")
    changed = st["devices_changed"]
    if isinstance(changed, str):
        click.echo(f"devices:    {changed}")
    elif not changed:
        click.echo("devices:    no device in the local store changed PMD")
    else:
        action = ch["action"] if ch else "change"
        click.echo(f"devices:    {len(changed)} changed PMD with the last {action}:")
        for d in changed:
            click.echo(f"  {d['ip']:<16} {_fmt(d['model']):<24} {d['before']} -> {d['after']} ({d['why']})")


@click.command("bundle")
@click.option(
    "--key",
    "key_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The publisher's Ed25519 private key (0600; keep it outside the repository).",
)
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the bundle (.zip).",
)
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=1),
    help="Bundle version, an integer above every earlier one (default: UTC YYYYMMDDHHMMSS).",
)
@click.option(
    "--source",
    "source_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The PMD directory to publish (default: this release's pmd/).",
)
@json_option
def bundle_command(
    key_path: Path, out_path: Path, version: int | None, source_dir: Path | None, as_json: bool
) -> None:
    """Build and sign a PMD bundle (publisher tool). Every PMD is loaded first: a PMD that
    fails to load is not published."""
    from fsm_protocol.keys import load_signing_key

    from ..pmd.distribution.bundle import build_from_dir

    key = load_signing_key(key_path)
    data, manifest = build_from_dir(source_dir or shipped_dir(), signing_key=key, version=version, now=_now())
    out_path = out_path.resolve()
    with writing_output(out_path):
        write_atomic(out_path, data)
    if as_json:
        print_json(
            {
                "out": str(out_path),
                "version": manifest.version,
                "files": len(manifest.files),
                "bytes": len(data),
                "signer": key.fingerprint,
            }
        )
    else:
        click.echo(
            f"wrote {out_path}: PMD bundle version {manifest.version}, {len(manifest.files)} PMDs, "
            f"{len(data)} bytes, signed by {key.fingerprint}"
        )


@click.command("keygen")
@click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write publisher.key (0600) and publisher.pub; not inside the repository.",
)
@click.option("--force", is_flag=True, help="Replace an existing publisher key.")
def keygen_command(directory: Path, force: bool) -> None:
    """Create a publisher key pair for signing PMD bundles. Clients pin publisher.pub
    (its one line) in [pmd.update] publisher_keys."""
    from fsm_protocol.keys import generate_client_keys, load_verify_key

    key, pub = directory / PUBLISHER_KEY_FILE, directory / PUBLISHER_PUB_FILE
    if not force and (key.exists() or pub.exists()):
        raise KeyFileError(
            f"{key if key.exists() else pub} already exists; refusing to overwrite a key",
            hint="use --force (clients must then pin the new publisher.pub) or another --dir",
        )
    tmp = directory / f".keygen-{secrets.token_hex(4)}"
    try:
        made_key, made_pub = generate_client_keys(tmp)  # an Ed25519 pair, written 0600 from the start
        os.replace(made_key, key)
        os.replace(made_pub, pub)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    click.echo(f"wrote {key} (keep it secret, off the repository) and {pub}")
    public = load_verify_key(pub)
    click.echo(f"fingerprint: {public.fingerprint}")
    click.echo(f"clients pin: {public.to_text()}")


for _command in (update_command, rollback_command, status_command, bundle_command, keygen_command):
    pmd_group.add_command(_command)

__all__ = ["bundle_command", "keygen_command", "rollback_command", "status_command", "update_command"]
