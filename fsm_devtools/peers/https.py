"""A real HTTPS server on loopback (Python's ``http.server`` with TLS), serving the certificate
of a test CA (``ca.TestCa``, re-exported here).

Serves byte strings from ``routes`` (changeable while running); a ``Truncated`` route sends
a Content-Length larger than its body and closes the connection, as a download that broke.

>>> ca = TestCa.create(tmp_path)   # doctest: +SKIP
>>> with HttpsServer(ca, {"/bundle.zip": data}) as server:   # doctest: +SKIP
...     server.url("/bundle.zip")
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .ca import TestCa


class HttpsServerError(RuntimeError):
    """The server did not complete a TLS handshake within ``ready_timeout``."""


@dataclass(frozen=True)
class Truncated:
    """A response that declares ``declared`` bytes, sends ``body`` and closes."""

    body: bytes
    declared: int


@dataclass(frozen=True)
class Redirect:
    """A 302 answer pointing to ``location``."""

    location: str


class HttpsServer:
    """``ThreadingHTTPServer`` over TLS on 127.0.0.1; ``requests`` lists the paths asked for."""

    def __init__(
        self,
        ca: TestCa,
        routes: dict[str, bytes | Truncated | Redirect] | None = None,
        *,
        ready_timeout: float = 10.0,
    ) -> None:
        self.ca = ca
        self.routes: dict[str, bytes | Truncated | Redirect] = dict(routes or {})
        self.requests: list[str] = []
        self.ready_timeout = ready_timeout
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the server first"
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def start(self) -> HttpsServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                body = owner.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                if isinstance(body, Redirect):
                    self.send_response(302)
                    self.send_header("Location", body.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                if isinstance(body, Truncated):
                    self.send_header("Content-Length", str(body.declared))
                    self.end_headers()
                    self.wfile.write(body.body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca.cert_file, self.ca.key_file)
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="https-peer", daemon=True)
        self._thread.start()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Return once a TLS handshake with the server succeeds (its greeting)."""
        client = ssl.create_default_context(cafile=str(self.ca.ca_file))
        client.check_hostname = False  # a readiness probe; tests may serve a certificate for another name
        deadline = time.monotonic() + self.ready_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as raw,
                    client.wrap_socket(raw, server_hostname="127.0.0.1"),
                ):
                    return
            except OSError as exc:
                last = exc
                time.sleep(0.02)
        self.stop()
        raise HttpsServerError(
            f"the HTTPS server on 127.0.0.1 did not complete a TLS handshake within "
            f"ready_timeout={self.ready_timeout}s: {last}"
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HttpsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["HttpsServer", "HttpsServerError", "Redirect", "TestCa", "Truncated"]
