"""`fsm-client keys init|show`: the client's Ed25519 signing key, and what to give the dealer."""

from __future__ import annotations

from pathlib import Path

import click

from fsm_common.cli import json_option, key_dir_option, pass_obj, print_json
from fsm_protocol.keys import CLIENT_KEY_FILE, generate_client_keys, load_server_public_key, load_signing_key

from ..context import ClientContext


def _key_path(ctx: ClientContext, directory: Path | None) -> Path:
    if directory is not None:
        return directory / CLIENT_KEY_FILE
    return ctx.config.keys.signing_key or ctx.data_dir / "keys" / CLIENT_KEY_FILE


@click.group("keys")
def keys_group() -> None:
    """Create and show this client's signing key."""


@keys_group.command("init")
@key_dir_option
@click.option("--force", is_flag=True, help="Replace existing keys (the dealer must register the new one).")
@pass_obj
def init_command(ctx: ClientContext, directory: Path | None, force: bool) -> None:
    """Create client.key (Ed25519, mode 0600) and client.pub."""
    private, public = generate_client_keys(directory or ctx.data_dir / "keys", force=force)
    key = load_signing_key(private)
    click.echo(f"wrote {private} (private, mode 0600) and {public}")
    click.echo(f"public key:  {key.public.to_text()}")
    click.echo(f"fingerprint: {key.fingerprint}")
    click.echo(f"next: give {public} to the dealer, who runs `fsm-server clients add NAME --key client.pub`")


@keys_group.command("show")
@key_dir_option
@json_option
@pass_obj
def show_command(ctx: ClientContext, directory: Path | None, as_json: bool) -> None:
    """Print this client's public key and fingerprint (for enrolment), and the server key it seals to."""
    path = _key_path(ctx, directory)
    key = load_signing_key(path)
    info: dict[str, str | None] = {
        "signing_key": str(path),
        "public_key": key.public.to_text(),
        "fingerprint": key.fingerprint,
        "server_public_key": None,
        "server_key_id": None,
    }
    if ctx.config.keys.server_public_key is not None:
        server = load_server_public_key(ctx.config.keys.server_public_key)
        info["server_public_key"] = server.to_text()
        info["server_key_id"] = server.key_id
    if as_json:
        print_json(info)
        return
    unset = "(not configured: [keys] server_public_key)"
    for name, value in info.items():
        click.echo(f"{name + ':':<19}{value if value is not None else unset}")


__all__ = ["init_command", "keys_group", "show_command"]
