"""Controller for a private Net-SNMP ``snmpd`` on a loopback port: v1/v2c community and
SNMPv3 users (authPriv with SHA-2/AES), reading no system configuration (``-C``).

>>> user = V3User("fsmuser", "SHA-256", "authpass123", "AES", "privpass123")
>>> with Snmpd(users=[user]) as agent:  # doctest: +SKIP
...     agent.port, agent.community
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fsm_client.snmp.snmpsim import free_udp_port, log_tail, snmp_get, terminate

SYS_LOCATION_OID = "1.3.6.1.2.1.1.6.0"


class SnmpdError(RuntimeError):
    """snmpd could not be started (the message names the log and the timeout)."""


@dataclass(frozen=True)
class V3User:
    name: str
    auth_protocol: str = "SHA-256"  # Net-SNMP spelling: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512
    auth_key: str = "authpass123"
    priv_protocol: str = "AES"  # DES, AES (128), AES-192, AES-256
    priv_key: str = "privpass123"
    level: str = "priv"  # rouser minimum level: noauth, auth, priv


class Snmpd:
    """A private snmpd; ``start()`` returns once it answers a v2c GET of sysLocation."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        community: str = "public",
        users: list[V3User] | tuple[V3User, ...] = (),
        location: str = "Lab",
        extra_conf: str = "",
        ready_timeout: float = 20.0,
        binary: str = "/usr/sbin/snmpd",
    ) -> None:
        self.host = host
        self.port = port or free_udp_port(host)
        self.community = community
        self.users = list(users)
        self.location = location
        self.extra_conf = extra_conf
        self.ready_timeout = ready_timeout
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None

    def config_text(self) -> str:
        lines = [
            f"rocommunity {self.community} {self.host}",
            f"sysLocation {self.location}",
            "sysContact fsm tests",
            "sysName fsm-snmpd",
        ]
        for u in self.users:
            auth = f' {u.auth_protocol} "{u.auth_key}"' if u.auth_protocol else ""
            priv = f' {u.priv_protocol} "{u.priv_key}"' if u.priv_protocol and u.auth_protocol else ""
            lines.append(f"createUser {u.name}{auth}{priv}")
            lines.append(f"rouser {u.name} {u.level}")
        return "\n".join(lines) + "\n" + self.extra_conf

    @property
    def log_path(self) -> Path:
        assert self._tmp is not None, "not started"
        return self._tmp / "snmpd.log"

    def start(self) -> Snmpd:
        if not Path(self.binary).exists():
            raise SnmpdError(f"{self.binary} not found; run scripts/setup (Debian package snmpd)")
        self._tmp = Path(tempfile.mkdtemp(prefix="fsm-snmpd-"))
        try:
            conf = self._tmp / "snmpd.conf"
            conf.write_text(self.config_text())
            conf.chmod(0o600)
            # persistent state (engine boots, localised users) stays in our temp dir
            env = dict(os.environ, SNMP_PERSISTENT_DIR=str(self._tmp / "persist"), MIBS="")
            args = [
                self.binary,
                "-f",
                "-Lf",
                str(self.log_path),
                "-C",
                "-c",
                str(conf),
                "-p",
                str(self._tmp / "snmpd.pid"),
                f"udp:{self.host}:{self.port}",
            ]
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise SnmpdError(f"snmpd exited with {self.proc.returncode}: {self._log_tail()}")
            if snmp_get(self.host, self.port, self.community, SYS_LOCATION_OID, timeout=0.2) is not None:
                return
            if time.monotonic() > deadline:
                raise SnmpdError(
                    f"snmpd did not answer a GET on {self.host}:{self.port} within "
                    f"ready_timeout={self.ready_timeout}s; log: {self._log_tail()}"
                )

    def _log_tail(self) -> str:
        return log_tail(self.log_path)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        terminate(proc)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> Snmpd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["Snmpd", "SnmpdError", "V3User"]
