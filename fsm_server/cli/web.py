"""`fsm-server web`: serve the browser portal over HTTPS (docs/portal.md)."""

from __future__ import annotations

import asyncio

import click

from fsm_common.cli import pass_obj

from ..context import ServerContext
from ..web import serve
from ..web.app import public_url


@click.command("web")
@click.option("--host", default=None, help="Listen address [default: [web] host, 127.0.0.1].")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="HTTPS port [default: [web] port, 8443]."
)
@click.option(
    "--self-signed",
    is_flag=True,
    help="Make (or reuse) a self-signed certificate in <data_dir>/web for a first try; browsers warn.",
)
@pass_obj
def web_command(ctx: ServerContext, host: str | None, port: int | None, self_signed: bool) -> None:
    """Serve the portal over HTTPS (TLS 1.2+) until SIGINT/SIGTERM."""
    host = host or ctx.config.web.host
    port = port or ctx.config.web.port
    files = serve.tls_files(ctx, host, self_signed=self_signed)
    if files.self_signed:
        click.echo(
            f"using a SELF-SIGNED certificate ({files.cert}): browsers will warn, and users "
            f"cannot tell this server from an impostor; set [web] cert_file and key_file for "
            f"real use",
            err=True,
        )
    main, redirect = serve.servers(ctx, host=host, port=port, files=files)
    redirecting = f" (http on port {ctx.config.web.redirect_port} redirects there)" if redirect else ""
    click.echo(f"portal on {public_url(ctx, host, port)}{redirecting}", err=True)
    asyncio.run(serve.serve(main, redirect))


__all__ = ["web_command"]
