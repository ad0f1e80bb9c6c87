"""`fsm-server keys init|show`: the server's X25519 encryption key, and what to give each client."""

from __future__ import annotations

from pathlib import Path

import click

from fsm_protocol.cli import json_option, key_dir_option, pass_obj, print_json
from fsm_protocol.keys import SERVER_KEY_FILE, generate_server_keys, load_encryption_key

from ..context import ServerContext


def _key_path(ctx: ServerContext, directory: Path | None) -> Path:
    if directory is not None:
        return directory / SERVER_KEY_FILE
    return ctx.config.keys.encryption_key or ctx.data_dir / "keys" / SERVER_KEY_FILE


@click.group("keys")
def keys_group() -> None:
    """Create and show this server's encryption key."""


@keys_group.command("init")
@key_dir_option
@click.option("--force", is_flag=True,
              help="Replace existing keys (every client must then get the new server.pub).")
@pass_obj
def init_command(ctx: ServerContext, directory: Path | None, force: bool) -> None:
    """Create server.key (X25519, mode 0600) and server.pub."""
    private, public = generate_server_keys(directory or ctx.data_dir / "keys", force=force)
    key = load_encryption_key(private)
    click.echo(f"wrote {private} (private, mode 0600) and {public}")
    click.echo(f"public key:  {key.public.to_text()}")
    click.echo(f"key id:      {key.key_id}")
    click.echo(f"fingerprint: {key.fingerprint}")
    click.echo(f"next: give {public} to every client ([keys] server_public_key in its config)")


@keys_group.command("show")
@key_dir_option
@json_option
@pass_obj
def show_command(ctx: ServerContext, directory: Path | None, as_json: bool) -> None:
    """Print this server's public key, key id and fingerprint (what clients seal to)."""
    path = _key_path(ctx, directory)
    key = load_encryption_key(path)
    info = {
        "encryption_key": str(path),
        "public_key": key.public.to_text(),
        "key_id": key.key_id,
        "fingerprint": key.fingerprint,
    }
    if as_json:
        print_json(info)
        return
    for name, value in info.items():
        click.echo(f"{name + ':':<16}{value}")


__all__ = ["init_command", "keys_group", "show_command"]
