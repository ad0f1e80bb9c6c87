"""A real HTTP CONNECT proxy on loopback (asyncio, in its own thread), optionally asking for basic auth.

It answers only CONNECT (as the outbound proxies of customers' networks do for HTTPS), then pipes
bytes both ways. ``tunnels`` lists the ``host:port`` of every tunnel opened, ``refused`` those it
refused (407 without the right login).

>>> with ConnectProxy(user="fsm", password="s3cret") as proxy:   # doctest: +SKIP
...     proxy.url   # 'http://fsm:s3cret@127.0.0.1:PORT'
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading


class ConnectProxy:
    """CONNECT-only proxy on 127.0.0.1 (see the module docstring)."""

    def __init__(self, *, user: str | None = None, password: str | None = None) -> None:
        self.user, self.password = user, password
        self.tunnels: list[str] = []
        self.refused: list[str] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        login = f"{self.user}:{self.password}@" if self.user else ""
        return f"http://{login}127.0.0.1:{self.port}"

    def start(self) -> ConnectProxy:
        self._thread = threading.Thread(target=self._run, name="connect-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the CONNECT proxy did not start within 10 s")
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        with contextlib.suppress(asyncio.CancelledError):
            self._loop.run_until_complete(self._server.serve_forever())
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = [*lines[0].split(" "), "", ""][:3]
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:] if h)}
            if method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            if self.user is not None:
                token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
                if headers.get("proxy-authorization") != f"Basic {token}":
                    self.refused.append(target)
                    writer.write(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b'Proxy-Authenticate: Basic realm="fsm"\r\nContent-Length: 0\r\n\r\n'
                    )
                    return
            host, _, port = target.rpartition(":")
            try:
                up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            except (OSError, ValueError):
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(target)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.close()

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
            for task in asyncio.all_tasks(self._loop):
                self._loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ConnectProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


__all__ = ["ConnectProxy"]
