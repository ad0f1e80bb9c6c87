"""What the peer controllers know about a process from /proc and its files: is a recorded PID
still ours, and what did a daemon log before it failed. Linux only, like the peers themselves."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TypeVar


def read_pid(path: Path) -> int | None:
    """The PID on the first line of a daemon's pid file, or None when there is none."""
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """Running and not a zombie: PID 1 here reaps orphans only every 1-2 s, so kill -0 is not enough."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may itself contain spaces.
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X", "x")


def exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def net_namespace(pid: int | str = "self") -> str | None:
    """The network namespace a process runs in (e.g. "net:[4026531840]"), None when unknown."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def foreign(pid: int) -> bool:
    """The process runs in another network namespace than this one: its loopback ports are not
    ours to reach (a suite run under `unshare --net` that was killed leaves such daemons behind)."""
    theirs = net_namespace(pid)
    return theirs is not None and theirs != net_namespace()


def foreign_users(state_dir: Path) -> list[int]:
    """Live processes of another network namespace that hold a lease on the peer in `state_dir`."""
    leases = state_dir / "leases"
    if not leases.is_dir():
        return []
    pids = [int(p.name) for p in leases.iterdir() if p.name.isdigit()]
    return [pid for pid in pids if alive(pid) and foreign(pid)]


def stop_foreign(
    state_dir: Path,
    daemons: dict[str, int | None],
    terminate: Callable[[str, int], None],
    error: Callable[..., Exception],
    offset_env: str,
) -> None:
    """Stop the daemons (name: pid) of the peer in `state_dir` that run in another network
    namespace (left by a killed run under `unshare --net`): nothing here can reach them, yet they
    hold its state. Raises ``error`` instead while a live process there still holds a lease."""
    left = {name: pid for name, pid in daemons.items() if pid is not None and foreign(pid)}
    if not left:
        return
    users = foreign_users(state_dir)
    if users:
        raise error(
            f"the {' and '.join(left)} of {state_dir} run(s) in another network namespace, used by "
            f"process(es) {', '.join(map(str, users))}",
            hint=f"use another offset ({offset_env}) or wait until they end",
        )
    for name, pid in left.items():
        terminate(name, pid)


def port_open(host: str, port: int) -> bool:
    """Something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log joined on one line, for an error message."""
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:]) or "(no output)"
    except OSError:
        return "(no output)"


class _Status(Protocol):
    @property
    def running(self) -> bool: ...

    def describe(self) -> str: ...


class Peer(Protocol):
    """What a peer controller offers to be run by hand (mailstack, postgres)."""

    state_dir: Path

    def start(self) -> object: ...

    def stop(self) -> None: ...

    def wipe(self) -> None: ...

    def status(self) -> _Status: ...


P = TypeVar("P", bound=Peer)


def control(make: Callable[[], P], command: str, *, started: Callable[[P], list[str]] | None = None) -> int:
    """Run `start|stop|status|wipe` of the peer ``make`` builds, by hand, printing what it did; the
    exit code (status: 3 when not running; an FsmError: its message and hint, 1). ``started`` adds
    lines after a start."""
    from fsm_protocol.errors import FsmError

    try:
        peer = make()
        if command == "start":
            began = time.monotonic()
            peer.start()
            # Started (or adopted) by hand: no test session's lease may stop it at its end.
            (peer.state_dir / "started-by-lease").unlink(missing_ok=True)
            print("\n".join([peer.status().describe(), *(started(peer) if started else [])]))
            print(f"ready in {time.monotonic() - began:.2f} s")
        elif command == "stop":
            peer.stop()
            print(peer.status().describe())
        elif command == "wipe":
            peer.wipe()
            print(f"wiped {peer.state_dir}")
        else:
            status = peer.status()
            print(status.describe())
            return 0 if status.running else 3
    except FsmError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 1
    return 0


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created if missing): one controller at a time per state dir."""
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def lease(
    state_dir: Path,
    lock: Callable[[], contextlib.AbstractContextManager[None]],
    started_here: bool,
    stop: Callable[[], None],
) -> Iterator[None]:
    """Record this process as a user of the peer in `state_dir` until the block ends; then `stop()`
    it only when a lease started it (`started_here` for this one) and no other live process holds one.

    Several pytest processes on one offset then share one peer, and a peer started by hand is never
    stopped by a test run (its `start` command removes the started-by-lease mark).
    """
    leases = state_dir / "leases"
    mine = leases / str(os.getpid())
    with lock():
        leases.mkdir(exist_ok=True)
        mine.touch()
        if started_here:
            (state_dir / "started-by-lease").touch()
    try:
        yield
    finally:
        with lock():
            mine.unlink(missing_ok=True)
            others = [p for p in leases.iterdir() if p.name.isdigit() and alive(int(p.name))]
            by_lease = (state_dir / "started-by-lease").exists()
        if not others and by_lease:
            stop()


__all__ = [
    "Peer",
    "alive",
    "cmdline",
    "control",
    "cwd",
    "exe",
    "foreign",
    "foreign_users",
    "lease",
    "locked",
    "net_namespace",
    "port_open",
    "read_pid",
    "stop_foreign",
    "tail",
]
