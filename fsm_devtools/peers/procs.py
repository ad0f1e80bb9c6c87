"""What the peer controllers know about a process from /proc and its files: is a recorded PID
still ours, and what did a daemon log before it failed. Linux only, like the peers themselves."""

from __future__ import annotations

import abc
import contextlib
import fcntl
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, Protocol, Self, TypeVar

#: The variable that sets an engineer's port offset for every peer (docs/development.md).
MAIL_OFFSET_ENV = "FSM_MAIL_PORT_OFFSET"


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


def port_offset(*names: str, error: Callable[..., Exception]) -> int:
    """The port offset in the first of the variables ``names`` that is set, else 0; ``error`` for
    one that is not an integer."""
    name = next((n for n in names if os.environ.get(n)), names[0])
    raw = os.environ.get(name) or "0"
    try:
        return int(raw)
    except ValueError:
        raise error(
            f"{name}={raw!r} is not an integer", hint=f"set {name} to e.g. 0, 100, 200 or 300"
        ) from None


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


class StateDirPeer(abc.ABC):
    """What a peer controller kept in one state directory shares (the mail stack, PostgreSQL):
    the offset and state directory checks, ``lease``, ``wipe``, use as a context manager.
    A subclass names its ``error`` class and state directory bound, and gives ``start``, ``stop``,
    ``status`` and ``_lock``."""

    #: the exception tree of the peer (an FsmError subclass; raised with a ``hint``)
    error: ClassVar[Callable[..., Exception]]
    #: unix socket paths inside the state directory are limited to 107 bytes
    max_state_dir_chars: ClassVar[int]
    #: the state directory of offset 0, e.g. /tmp/fsm-mail; offset N adds "-N"
    base_state_dir: ClassVar[str]

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        port_offset: int = 0,
        start_timeout: float = 15.0,
        stop_timeout: float = 10.0,
    ) -> None:
        if not 0 <= port_offset <= 50000:
            raise self.error(f"port offset {port_offset} is out of range", hint="use 0..50000")
        self.port_offset = port_offset
        chosen = Path(state_dir) if state_dir is not None else self.default_state_dir(port_offset)
        self.state_dir = chosen.absolute()
        bound = self.max_state_dir_chars
        if len(str(self.state_dir)) > bound:
            raise self.error(
                f"state directory {str(self.state_dir)!r} is longer than {bound} characters",
                hint="unix socket paths are limited to 107 bytes: pick a short one such as "
                + self.base_state_dir,
            )
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._owns_processes = False

    @classmethod
    def default_state_dir(cls, port_offset: int) -> Path:
        return Path(cls.base_state_dir if port_offset == 0 else f"{cls.base_state_dir}-{port_offset}")

    @abc.abstractmethod
    def start(self) -> Self:
        """Start the peer's daemons in the state directory (or take over running ones)."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the daemons this state directory runs."""

    @abc.abstractmethod
    def status(self) -> _Status:
        """Whether the daemons run, and where."""

    @abc.abstractmethod
    def _lock(self) -> contextlib.AbstractContextManager[None]:
        """Held while writing the state directory or starting and stopping its daemons."""

    @property
    def running(self) -> bool:
        return self.status().running

    @property
    def started_here(self) -> bool:
        """True when this object started a daemon (a lease then stops the peer at the end)."""
        return self._owns_processes

    @contextlib.contextmanager
    def lease(self) -> Iterator[Self]:
        """Use the peer for a while (a pytest session): start it if needed, and stop it at the end
        only when a lease started it and no other live process holds a lease (see ``lease``).

        Several pytest processes on one offset then share one peer, and a peer started by hand
        (``scripts/mailstack start``) is never stopped by a test run.
        """
        self.start()
        with lease(self.state_dir, self._lock, self._owns_processes, self.stop):
            yield self

    def wipe(self) -> None:
        """Stop the peer and delete its state directory (and so everything it kept)."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


S = TypeVar("S", bound=StateDirPeer)


def by_hand(
    argv: list[str] | None,
    peer: type[S],
    offset: Callable[[], int],
    *,
    description: str,
    offset_help: str,
    started: Callable[[S], list[str]] | None = None,
) -> int:
    """The command line of a peer class, ``python -m <its module> start|stop|status|wipe
    [--offset N] [--dir DIR]``: ``peer(DIR or None, port_offset=N)``, N from ``offset()`` when
    not given."""
    import argparse

    prog = f"python -m {peer.__module__.removesuffix('.stack')}"
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("command", choices=["start", "stop", "status", "wipe"])
    parser.add_argument("--offset", type=int, default=None, help=f"port offset (default {offset_help})")
    parser.add_argument(
        "--dir", type=Path, default=None, help=f"state directory (<= {peer.max_state_dir_chars} characters)"
    )
    args = parser.parse_args(argv)
    # The offset is read inside control(): a bad variable is an error line, not a traceback.
    return control(
        lambda: peer(args.dir, port_offset=args.offset if args.offset is not None else offset()),
        args.command,
        started=started,
    )


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
    "MAIL_OFFSET_ENV",
    "Peer",
    "StateDirPeer",
    "alive",
    "by_hand",
    "cmdline",
    "control",
    "cwd",
    "exe",
    "foreign",
    "foreign_users",
    "lease",
    "locked",
    "net_namespace",
    "port_offset",
    "port_open",
    "read_pid",
    "stop_foreign",
    "tail",
]
