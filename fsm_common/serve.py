"""Run a web server (uvicorn) the way both programs do: say where it listens once it does."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uvicorn


async def serve_announced(server: uvicorn.Server, scheme: str) -> None:
    """Run ``server``; once it listens, print ``listening on SCHEME://HOST:PORT`` on stdout for each
    socket (with port 0 that is how a supervisor, a test or the user learns the port)."""
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if server.started:
        for listener in server.servers:
            for sock in listener.sockets:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                print(f"listening on {scheme}://{shown}:{port}", flush=True)
    await task


__all__ = ["serve_announced"]
