"""`fsm-server keys init|show`: the server's X25519 encryption key, and what to give each client;
its Ed25519 signing key, what billing exports are signed with."""

from __future__ import annotations

from pathlib import Path

import click

from fsm_common.cli import json_option, key_dir_option, pass_obj, print_json
from fsm_protocol.keys import (
    SERVER_KEY_FILE,
    SERVER_SIGN_KEY_FILE,
    SigningKey,
    generate_server_keys,
    generate_server_signing_keys,
    load_encryption_key,
    load_signing_key,
)

from ..context import ServerContext


def _key_path(ctx: ServerContext, directory: Path | None) -> Path:
    if directory is not None:
        return directory / SERVER_KEY_FILE
    return ctx.config.keys.encryption_key or ctx.data_dir / "keys" / SERVER_KEY_FILE


def keys_dir(ctx: ServerContext) -> Path:
    """Where the server's keys live: beside ``[keys] encryption_key``, else ``<data_dir>/keys``."""
    configured = ctx.config.keys.encryption_key
    return configured.parent if configured is not None else ctx.data_dir / "keys"


def server_signing_key(ctx: ServerContext, directory: Path | None = None) -> SigningKey:
    """The server's Ed25519 signing key (``server-sign.key``)."""
    return load_signing_key(
        (directory or keys_dir(ctx)) / SERVER_SIGN_KEY_FILE,
        init_command="fsm-server keys init --signing-only",
    )


@click.group("keys")
def keys_group() -> None:
    """Create and show this server's encryption key."""


@keys_group.command("init")
@key_dir_option
@click.option(
    "--force", is_flag=True, help="Replace existing keys (every client must then get the new server.pub)."
)
@click.option(
    "--signing-only",
    is_flag=True,
    help="Create only the signing key (a server whose server.key came before billing exports).",
)
@pass_obj
def init_command(ctx: ServerContext, directory: Path | None, force: bool, signing_only: bool) -> None:
    """Create server.key (X25519, mode 0600) and server.pub, and server-sign.key (Ed25519, mode
    0600) and server-sign.pub, the key billing exports are signed with."""
    where = directory or ctx.data_dir / "keys"
    if not signing_only:
        private, public = generate_server_keys(where, force=force)
        key = load_encryption_key(private)
        click.echo(f"wrote {private} (private, mode 0600) and {public}")
        click.echo(f"public key:  {key.public.to_text()}")
        click.echo(f"key id:      {key.key_id}")
        click.echo(f"fingerprint: {key.fingerprint}")
    sign_private, sign_public = generate_server_signing_keys(where, force=force)
    signer = load_signing_key(sign_private)
    click.echo(f"wrote {sign_private} (private, mode 0600) and {sign_public}")
    click.echo(f"signing key: {signer.public.to_text()} ({signer.fingerprint})")
    if not signing_only:
        click.echo(
            f"next: give {public} to every client ([keys] server_public_key in its config); "
            f"{sign_public} to whoever checks billing exports"
        )


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


__all__ = ["init_command", "keys_dir", "keys_group", "server_signing_key", "show_command"]
