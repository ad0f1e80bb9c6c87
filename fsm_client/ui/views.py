"""What the local page shows, read from the store and the config (no HTTP here; tests call these).

Everything shown that a printer reported is rendered by autoescaped templates through the
``display`` filter (fsm_protocol.display), as on the server's pages.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from fsm_common import configfile
from fsm_protocol.schema import Device

from ..config import ClientConfig
from ..daemon import LOCK_FILE, client_status
from ..errors import StoreError
from ..store import Store

#: At most this many reports are searched or listed on "what left the network".
MAX_SENT_LISTED = 500


def daemon_pid(data_dir: Path) -> int | None:
    """The pid of the `fsm-client run` holding this data dir, if it is alive (read, never locked:
    taking the lock, even briefly, could turn a daemon starting that moment away)."""
    try:
        pid = int((data_dir / LOCK_FILE).read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"fsm" in cmdline and pid != os.getpid() else None


def status(config: ClientConfig, store: Store, data_dir: Path) -> dict[str, Any]:
    """The status page: `fsm-client status` plus the daemon, the PMD set and the last send."""
    from ..pmd.distribution.active import status as pmd_status

    result: dict[str, Any] = msgspec.to_builtins(client_status(config, store))
    result["daemon_pid"] = daemon_pid(data_dir)
    try:
        pmd = pmd_status(config, data_dir)["active"]
        result["pmd_set"] = f"{pmd.get('set', 'shipped')}" + (
            f" version {pmd['version']}" if pmd.get("version") else ""
        )
    except Exception as exc:  # a broken PMD state must not take the page down; show why
        result["pmd_set"] = f"unknown ({type(exc).__name__}: {exc})"
    sent = [e for e in store.outbox() if e.sent_at is not None]
    answers = store.answers()
    result["last_sent"] = (
        {
            "seq": sent[-1].seq,
            "at": sent[-1].sent_at,
            "answer": answers.get(sent[-1].seq),
            "transport": transport_of(answers.get(sent[-1].seq), config),
        }
        if sent
        else None
    )
    return result


def transport_of(answer: str | None, config: ClientConfig) -> str | None:
    """The transport that carried an envelope: named in its answer when several are configured."""
    if answer is None:
        return None
    kinds = config.transport.kinds
    head = answer.split(":", 1)[0]
    return head if len(kinds) > 1 and head in kinds else kinds[0]


@dataclass
class DeviceRow:
    ip: str
    device: Device | None  # the last full reading, None if none is kept
    first_seen: Any
    last_seen: Any
    reachability: str


def devices(store: Store) -> list[DeviceRow]:
    """Each device found, with its last full reading (scan), newest reading wins."""
    last: dict[str, Device] = {}
    for reading in store.readings():
        if reading.kind == "scan":
            last[reading.device.ip] = reading.device
    return [
        DeviceRow(d.ip, last.get(d.ip), d.first_seen, d.last_seen, d.last_reachability)
        for d in store.devices()
    ]


@dataclass
class SentReport:
    seq: int
    kind: str
    created_at: Any
    sent_at: Any
    answer: str | None
    text: str | None  # the plaintext as sealed, pretty-printed; None past its retention


def pretty(plaintext: bytes) -> str:
    """The report JSON exactly as sealed, indented (keys in the order they were sealed)."""
    return msgspec.json.format(plaintext, indent=2).decode("utf-8", "replace")


def sent_reports(store: Store) -> list[SentReport]:
    answers = store.answers()
    out = []
    for entry in [e for e in store.outbox() if e.sent_at is not None][-MAX_SENT_LISTED:]:
        try:
            text: str | None = pretty(store.plaintext(entry.seq))
        except StoreError:
            text = None
        out.append(
            SentReport(entry.seq, entry.kind, entry.created_at, entry.sent_at, answers.get(entry.seq), text)
        )
    return out


def search(reports: list[SentReport], query: str) -> list[SentReport]:
    """Reports whose plaintext holds ``query`` (case-insensitive), newest first."""
    q = query.strip().lower()
    found = [r for r in reports if not q or (r.text is not None and q in r.text.lower())]
    return found[::-1]


def diff(previous: SentReport | None, current: SentReport) -> list[tuple[str, str]]:
    """(kind, line) of the unified diff from the previous sent report; kind is add, del, hunk or ctx."""
    if current.text is None:
        return []
    before = previous.text.splitlines() if previous is not None and previous.text is not None else []
    lines = difflib.unified_diff(
        before,
        current.text.splitlines(),
        f"report {previous.seq}" if previous else "nothing",
        f"report {current.seq}",
        lineterm="",
        n=2,
    )
    out = []
    for line in lines:
        kind = (
            "hunk"
            if line.startswith("@@")
            else "add"
            if line.startswith("+")
            else "del"
            if line.startswith("-")
            else "ctx"
        )
        out.append((kind, line))
    return out


def config_view(config: ClientConfig) -> str:
    """The configuration as TOML-like text, every secret masked (configfile.dump masks them)."""
    lines: list[str] = []
    dumped = configfile.dump(config)
    _render(dumped, "", lines)
    return "\n".join(lines)


def _render(data: dict[str, Any], prefix: str, lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and not _is_tables(v)}
    if scalars:
        if prefix:
            lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f"{key} = {msgspec.json.encode(value).decode()}")
        lines.append("")
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _render(value, name, lines)
        elif _is_tables(value):
            for item in value:
                lines.append(f"[[{name}]]")
                for k, v in item.items():
                    lines.append(f"{k} = {msgspec.json.encode(v).decode()}")
                lines.append("")


def _is_tables(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


__all__ = [
    "MAX_SENT_LISTED",
    "DeviceRow",
    "SentReport",
    "config_view",
    "daemon_pid",
    "devices",
    "diff",
    "pretty",
    "search",
    "sent_reports",
    "status",
    "transport_of",
]
