"""A private snmpsim serving ``.snmprec`` recordings on loopback: what ``fsm-client pmd test``
reads a walk through (a shipped feature), and the simulated devices of the tests and the demo.

The community selects the recording: ``<data>/hp-m452/device.snmprec`` answers to the
community ``hp-m452/device``. Every endpoint (one address per simulated device, all on one
UDP port) serves every recording.

>>> sim = Snmpsim(Path("../shared/snmp-walks"), endpoints=["127.0.0.2", "127.0.0.3"])  # doctest: +SKIP
>>> sim.start(); sim.community("brother-hl-5370dw"); sim.stop()  # doctest: +SKIP
'brother-hl-5370dw/device'
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import SnmpsimError
from . import ber

DEFAULT_VENV = "/opt/fsm-snmpsim"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port nothing is bound to right now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def loopback_range(first: str, count: int) -> list[str]:
    """``count`` consecutive addresses from ``first`` (e.g. 127.0.0.2 .. 127.0.0.201)."""
    start = int.from_bytes(socket.inet_aton(first), "big")
    out = [socket.inet_ntoa((start + i).to_bytes(4, "big")) for i in range(count)]
    if not all(a.startswith("127.") for a in out):
        raise ValueError(f"{first} + {count} leaves 127.0.0.0/8")
    return out


def snmp_get(
    host: str, port: int, community: str, oid: str, *, timeout: float = 0.5, version: int = 1
) -> ber.Message | None:
    """One raw GET; the decoded answer, or None on silence or garbage."""
    rid = ber.MIN_REQUEST_ID + int.from_bytes(os.urandom(3), "big")
    packet = ber.RequestTemplate.get(version=version, community=community.encode(), oids=[oid]).render(rid)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(packet, (host, port))
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = s.recv(65535)
            except OSError:
                return None
            with contextlib.suppress(ber.BerError):
                msg = ber.decode_message(data)
                if msg.request_id == rid:
                    return msg
            if time.monotonic() > deadline:
                return None


def log_tail(path: Path) -> str:
    """The end of a peer's log, for error messages."""
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


def terminate(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM a peer we started, SIGKILL it after 10 s, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=10)


class Snmpsim:
    """A private ``snmpsim-command-responder``; ``start()`` returns once it answers a GET."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        recordings: Iterable[Path | str] = (),
        endpoints: Sequence[str] = ("127.0.0.1",),
        port: int = 0,
        venv: str | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        """``data_dir`` holds ``<name>/device.snmprec`` or ``<name>.snmprec`` files (copied);
        ``recordings`` adds single files, served under their stem. ``port=0`` picks a free one."""
        self.source_dir = Path(data_dir) if data_dir is not None else None
        self.recordings = [Path(r) for r in recordings]
        self.endpoints = list(endpoints)
        self.port = port or free_udp_port(self.endpoints[0])
        self.venv = venv or os.environ.get("FSM_SNMPSIM_VENV", DEFAULT_VENV)
        self.ready_timeout = ready_timeout
        self.communities: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._mtime = 0.0

    # -- layout ----------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self._tmp is not None, "not started"
        return self._tmp / "data"

    @property
    def log_path(self) -> Path:
        assert self._tmp is not None, "not started"
        return self._tmp / "snmpsim.log"

    def community(self, name: str) -> str:
        """The community that selects recording ``name`` (``brother-hl-5370dw`` or its full form)."""
        for c in self.communities:
            if c == name or c.split("/")[0] == name:
                return c
        raise KeyError(f"no recording {name!r}; have {self.communities}")

    def replace(self, name: str, text: str) -> None:
        """Serve ``text`` as recording ``name`` from the next request on (an agent whose values
        changed: counters that rose, a jam). Lines may change length."""
        path = self.data_dir / f"{self.community(name)}.snmprec"
        new = path.with_name(path.name + ".new")
        new.write_text(text)
        new.chmod(0o644)
        os.replace(new, path)
        # snmpsim reopens a recording when its mtime (whole seconds) changes, and re-indexes it
        # only when it is not older than its index: always move the mtime forward, past now.
        self._mtime = max(self._mtime + 1, time.time() + 1)
        os.utime(path, (self._mtime, self._mtime))

    def _copy_data(self) -> None:
        # snmpsim drops to nobody: the copy must be world-readable (mkdtemp makes 0700).
        assert self._tmp is not None
        data = self.data_dir
        data.mkdir(mode=0o755)
        files: list[tuple[Path, Path]] = []
        if self.source_dir is not None:
            for f in sorted(self.source_dir.rglob("*.snmprec")):
                files.append((f, f.relative_to(self.source_dir)))
        files += [(r, Path(r.name)) for r in self.recordings]
        if not files:
            raise SnmpsimError(f"no .snmprec files in {self.source_dir} {self.recordings}")
        for src, rel in files:
            dst = data / rel
            for parent in reversed(dst.relative_to(data).parents):
                p = data / parent
                if not p.exists():
                    p.mkdir(mode=0o755)
            shutil.copyfile(src, dst)
            dst.chmod(0o644)
            self.communities.append(str(rel.with_suffix("")))

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Snmpsim:
        exe = Path(self.venv) / "bin" / "snmpsim-command-responder"
        if not exe.exists():
            raise SnmpsimError(f"{exe} not found; run scripts/setup (or set FSM_SNMPSIM_VENV)")
        self._tmp = Path(tempfile.mkdtemp(prefix="fsm-snmpsim-"))
        self._tmp.chmod(0o755)
        try:
            self._copy_data()
            cache = self._tmp / "cache"
            cache.mkdir()
            cache.chmod(0o777)
            args = [str(exe), f"--data-dir={self.data_dir}", f"--cache-dir={cache}"]
            args += [f"--agent-udpv4-endpoint={ep}:{self.port}" for ep in self.endpoints]
            if os.geteuid() == 0:  # snmpsim refuses to run as root otherwise
                args += ["--process-user=nobody", "--process-group=nogroup"]
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(
                    args,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
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
        pending = {self.endpoints[0], self.endpoints[-1]}
        community = self.communities[0]
        while pending:
            if self.proc.poll() is not None:
                raise SnmpsimError(f"snmpsim exited with {self.proc.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise SnmpsimError(
                    f"snmpsim did not answer a GET on {sorted(pending)}:{self.port} within "
                    f"ready_timeout={self.ready_timeout}s; log: {self._log_tail()}"
                )
            for host in list(pending):
                if snmp_get(host, self.port, community, SYS_OBJECT_ID, timeout=0.3) is not None:
                    pending.discard(host)

    def _log_tail(self) -> str:
        return log_tail(self.log_path)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        terminate(proc)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.communities = []

    def __enter__(self) -> Snmpsim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = [
    "DEFAULT_VENV",
    "Snmpsim",
    "SnmpsimError",
    "free_udp_port",
    "log_tail",
    "loopback_range",
    "snmp_get",
    "terminate",
]
