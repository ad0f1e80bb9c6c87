"""``POST /api/v1/envelopes``: sealed envelopes posted over HTTPS go through the same pipeline as mail.

The body is one sealed envelope or chunk (the bytes a mail would carry as its attachment). In order,
each step refusing before the next costs anything::

    address over its rate? 429 -> declared length over [receive] max_body_bytes? 413 (nothing read)
    -> read at most max_body_bytes (more: 413; slower than body_timeout: 408)
    -> client the header names over its rate? 429 -> Pipeline.process -> 202 {client, seq, status}

``status`` is the pipeline's outcome (``loaded``, ``duplicate``, ``chunk_stored``, ``quarantined``):
an unauthenticated, tampered or replayed body gets exactly the verdict a mail with the same
envelope gets, because it is the same call. The answer carries nothing else: no configuration, no
commands; nothing flows back to a client but this receipt. A database failure answers 503 (the
client keeps the envelope queued and retries), never a receipt.

The routes are built by :func:`envelope_routes` so the web portal can mount them beside its pages;
:func:`create_receive_app` is the small application `fsm-server receive` serves on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from fsm_protocol import envelope
from fsm_protocol.errors import FsmError
from fsm_protocol.header import MAGIC

from ..config import ReceiveSection
from ..errors import DatabaseError
from .pipeline import Pipeline, Verdict
from .throttle import Throttle

log = logging.getLogger("fsm_server.receive")

#: Where clients post envelopes.
ENVELOPES_PATH = "/api/v1/envelopes"


class _TooLarge(Exception):
    pass


class EnvelopeEndpoint:
    """The endpoint with its rate limits and the one thread the pipeline runs in.

    The pipeline (peewee, synchronous) runs in a single worker thread, so the event loop keeps
    refusing floods while a report is loaded, and loads never race each other.
    """

    def __init__(self, pipeline: Pipeline, limits: ReceiveSection | None = None) -> None:
        self.pipeline = pipeline
        self.limits = limits or ReceiveSection()
        lim = self.limits
        self.by_address = Throttle(rate=lim.address_rate, burst=lim.address_burst, max_keys=lim.max_tracked)
        self.by_client = Throttle(rate=lim.client_rate, burst=lim.client_burst, max_keys=lim.max_tracked)
        self.counts: Counter[str] = Counter()  # answers given, by outcome or refusal
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsm-receive-pipeline")

    def routes(self) -> list[BaseRoute]:
        return [Route(ENVELOPES_PATH, self.post, methods=["POST"])]

    async def post(self, request: Request) -> Response:
        address = request.client.host if request.client else "unknown"
        wait = self.by_address.take(address)
        if wait:
            return self._refuse(429, "too many posts from this address", retry_after=wait)
        try:
            body = await self._read_body(request)
        except _TooLarge:
            return self._refuse(413, f"the body is over the limit of {self.limits.max_body_bytes} bytes")
        except TimeoutError:
            return self._refuse(408, f"the body did not arrive within {self.limits.body_timeout} s")
        except ValueError as exc:
            return self._refuse(400, str(exc))
        client = _claimed_client(body)
        if client is not None:
            # a forged claim can only delay that client's posts (429: it retries), never lose them
            wait = self.by_client.take(client)
            if wait:
                return self._refuse(429, "too many posts for this client", retry_after=wait)
        loop = asyncio.get_running_loop()
        try:
            verdict: Verdict = await loop.run_in_executor(
                self._worker, lambda: self.pipeline.process(body, source=f"https:{address}")
            )
        except DatabaseError as exc:
            log.error("cannot store a post from %s: %s", address, exc.message)
            return self._refuse(503, "the server cannot store reports now", retry_after=30.0)
        self.counts[verdict.outcome] += 1
        if verdict.outcome == "quarantined":
            log.info("post from %s quarantined (%s): %s", address, verdict.reason, verdict.detail)
        return JSONResponse(
            {"client": verdict.client, "seq": verdict.seq, "status": verdict.outcome}, status_code=202
        )

    async def _read_body(self, request: Request) -> bytes:
        cap = self.limits.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ValueError(f"Content-Length {declared[:40]!r} is not a number")
            if int(declared) > cap:
                raise _TooLarge
        body = bytearray()
        async with asyncio.timeout(self.limits.body_timeout):
            async for part in request.stream():
                body += part
                if len(body) > cap:
                    raise _TooLarge
        return bytes(body)

    def _refuse(self, status: int, text: str, *, retry_after: float | None = None) -> Response:
        self.counts[str(status)] += 1
        headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after else None
        # the connection is closed: a client that is refused has no reason to keep it
        return PlainTextResponse(
            text + "\n", status_code=status, headers={**(headers or {}), "Connection": "close"}
        )

    def close(self) -> None:
        """Close the worker thread's database connection and stop the thread."""
        with contextlib.suppress(Exception):
            self._worker.submit(self.pipeline.db.close).result(timeout=10)
        self._worker.shutdown(wait=True)


def _claimed_client(body: bytes) -> str | None:
    """The client id an envelope's cleartext header names (unverified), or None."""
    if not body.startswith(MAGIC):
        return None
    try:
        return envelope.peek(body, max_bytes=len(body)).client_id
    except FsmError:
        return None


def envelope_routes(endpoint: EnvelopeEndpoint) -> list[BaseRoute]:
    """The routes to mount in another application (the web portal)."""
    return endpoint.routes()


def create_receive_app(endpoint: EnvelopeEndpoint) -> Starlette:
    """The application `fsm-server receive` serves: the envelope endpoint and nothing else."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        endpoint.close()

    return Starlette(routes=envelope_routes(endpoint), lifespan=lifespan)


__all__ = ["ENVELOPES_PATH", "EnvelopeEndpoint", "create_receive_app", "envelope_routes"]
