"""`fsm-server receive`: take sealed envelopes posted over HTTPS (POST /api/v1/envelopes)."""

from __future__ import annotations

import logging

import click

from fsm_common.cli import pass_obj

from ..context import ServerContext


@click.command("receive")
@click.option("--host", default=None, help="Address to listen on [default: [receive] host].")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port to listen on; 0 picks a free one [default: [receive] port].",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every quarantined post.")
@pass_obj
def receive_command(ctx: ServerContext, host: str | None, port: int | None, verbose: bool) -> None:
    """Serve the HTTPS endpoint clients post envelopes to; each goes through the ingest pipeline."""
    from ..receive import serve

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    serve(ctx, host=host, port=port)


__all__ = ["receive_command"]
