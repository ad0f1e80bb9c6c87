"""`fsm-client ui [--host H] [--port P]` and `fsm-client ui set-password`: the local web page."""

from __future__ import annotations

import asyncio
import sys

import click

from fsm_common.cli import pass_obj
from fsm_common.serve import serve_announced

from ..context import ClientContext


@click.group("ui", invoke_without_command=True)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Loopback address to listen on (127.0.0.1 or ::1); any other is refused.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to listen on; 0 picks a free one.",
)
@click.pass_context
def ui_group(click_ctx: click.Context, host: str, port: int) -> None:
    """Serve the local page: status, devices, outbox, what left the network, configuration."""
    if click_ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from ..ui.app import create_app
    from ..ui.auth import check_host

    ctx: ClientContext = click_ctx.obj
    bind = check_host(host)
    app = create_app(ctx)
    config = uvicorn.Config(
        app,
        host=bind,
        port=port,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)

    asyncio.run(serve_announced(server, "http"))


@ui_group.command("set-password")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from the first line of stdin.")
@pass_obj
def set_password_command(ctx: ClientContext, from_stdin: bool) -> None:
    """Set the local page's password (stored as an argon2id hash in the data dir)."""
    from ..ui.auth import set_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    path = set_password(ctx.data_dir, password)
    click.echo(f"password set ({path})")


__all__ = ["ui_group"]
