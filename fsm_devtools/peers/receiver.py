"""`fsm-server receive` as a separate process on loopback, with a test CA's certificate.

>>> with Receiver(tmp_path, ca, server_kit.key_path, "sqlite:///...") as receiver:   # doctest: +SKIP
...     receiver.url   # 'https://127.0.0.1:PORT'
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from .ca import TestCa


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """The HTTPS envelope endpoint of the server, as its own process (see the module docstring).

    ``port`` is chosen once, so a receiver stopped and started again answers at the same URL.
    ``receive`` overrides [receive] settings (rate limits, body cap ...).
    """

    def __init__(
        self,
        directory: Path,
        ca: TestCa,
        encryption_key: Path,
        database_url: str,
        *,
        receive: Mapping[str, object] | None = None,
        port: int | None = None,
    ) -> None:
        self.directory = directory
        self.ca = ca
        self.database_url = database_url
        self.port = port or free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.log = directory / "receive.log"
        self.config = directory / "receive.toml"
        directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f'[keys]\nencryption_key = "{encryption_key}"\n',
            "[receive]",
            f'cert_file = "{ca.cert_file}"',
            f'key_file = "{ca.key_file}"',
        ]
        for key, value in (receive or {}).items():
            lines.append(f"{key} = {value!r}" if not isinstance(value, str) else f'{key} = "{value}"')
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> Receiver:
        env = {**os.environ, "FSM_DATABASE_URL": self.database_url}
        with self.log.open("ab") as err:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from fsm_server.cli import main; main()",
                    "--config",
                    str(self.config),
                    "--data-dir",
                    str(self.directory),
                    "receive",
                    "--port",
                    str(self.port),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.process.stdout], [], [], 0.2)
            if ready:
                line = self.process.stdout.readline()
                if line.startswith(b"listening on https://"):
                    return self
            if self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError(
            f"fsm-server receive did not start (said {line!r}): {self.log.read_text()[-2000:]}"
        )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_kib(self) -> int:
        """The process's resident memory (VmRSS) in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["Receiver", "free_port"]
