"""`fsm-server receive`: serve the HTTPS envelope endpoint (fsm_server.ingest.https) with uvicorn.

TLS is not optional: without [receive] cert_file and key_file the command refuses to start. A
reverse proxy in front would make every post come from its address, so the rate limit per address
would throttle all clients together: expose the endpoint directly, or raise address_rate.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import uvicorn

from fsm_common.serve import serve_announced
from fsm_protocol.errors import ConfigError

from . import wiring
from .config import ReceiveSection
from .context import ServerContext
from .ingest.https import EnvelopeEndpoint, create_receive_app

log = logging.getLogger("fsm_server.receive")


def tls_files(section: ReceiveSection) -> tuple[Path, Path]:
    """The certificate and key files, checked to load together (ConfigError naming the key if not)."""
    if section.cert_file is None or section.key_file is None:
        raise ConfigError(
            "[receive] cert_file and key_file are not both set: the endpoint serves HTTPS only",
            hint="set [receive] cert_file (PEM chain) and key_file (PEM key) of the server's certificate",
        )
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            section.cert_file, section.key_file
        )
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"[receive] cert_file {str(section.cert_file)!r} and key_file {str(section.key_file)!r} "
            f"cannot be loaded: {exc}",
            hint="both must be PEM files readable by this user, the key matching the certificate",
        ) from None
    return section.cert_file, section.key_file


def serve(ctx: ServerContext, *, host: str | None = None, port: int | None = None) -> None:
    """Serve until SIGINT/SIGTERM; print ``listening on https://HOST:PORT`` once accepting."""
    section = ctx.config.receive
    cert_file, key_file = tls_files(section)
    with wiring.open_db(ctx) as db:
        endpoint = EnvelopeEndpoint(wiring.pipeline(ctx, db), section)
        config = uvicorn.Config(
            create_receive_app(endpoint),
            host=host or section.host,
            port=section.port if port is None else port,
            ssl_certfile=str(cert_file),
            ssl_keyfile=str(key_file),
            limit_concurrency=section.max_connections,
            # the address a post comes from is the peer's: never taken from X-Forwarded-For
            proxy_headers=False,
            server_header=False,
            log_level="warning",
            lifespan="on",
            timeout_keep_alive=30,
            h11_max_incomplete_event_size=16 * 1024,
        )
        asyncio.run(serve_announced(uvicorn.Server(config), "https"))


__all__ = ["serve", "tls_files"]
