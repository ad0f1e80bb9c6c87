"""kill -9 of a real `fsm-client run` at random moments, then the books must balance.

Used by tests/client/test_daemon_kill9.py (CI size) and bench/kill9_client.py (100 trials).
A trial starts `fsm-client run` as a subprocess with schedules that keep it busy (full reads
every second, a periodic report every 2 s, status polls every second while the test flips
printers between jammed and fine), waits a random time and kills it with SIGKILL. After the
last trial the outbox is flushed with `fsm-client send --no-read`, and then:

* every stored reading carries the number of exactly one envelope;
* every number from 1 to the last one reached the destination (duplicates of a number are
  allowed: a kill between "accepted" and "marked sent" sends it again), none is missing;
* each number opens to exactly the readings the store says it carries.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client_fixtures import Keys, Printers, write_toml

from fsm_client.store import Store
from fsm_protocol.envelope import peek

FSM_CLIENT = [str(Path(sys.executable).parent / "fsm-client")]


def client_sections(keys: Keys, printers: Printers, transport: dict[str, Any]) -> dict[str, Any]:
    return {
        "client": {"id": "kill9", "customer": "ACME", "site": "HQ"},
        "keys": {"signing_key": str(keys.client_key), "server_public_key": str(keys.server_pub)},
        **printers.client_sections(timeout=0.5),
        "schedule": {"report": "every 2s", "scan": "every 1s", "discovery": "off", "status_poll": "every 1s"},
        "alerts": {"offline_after": 1},
        "outbox": {"retry_initial": 0.2, "retry_max": 1.0},
        **transport,
    }


@dataclass
class Outcome:
    trials: int = 0
    kills: int = 0
    exited_early: list[str] = field(default_factory=list)
    last_seq: int = 0
    readings: int = 0
    envelopes_seen: int = 0
    duplicates: int = 0
    missing: list[int] = field(default_factory=list)
    unreported: int = 0
    mismatched: list[int] = field(default_factory=list)
    foreign: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unreported or self.mismatched or self.exited_early or self.foreign)


def run_trials(
    config: Path,
    data_dir: Path,
    printers: Printers,
    *,
    trials: int,
    rng: random.Random,
    min_wait: float = 0.5,
    max_wait: float = 3.5,
) -> Outcome:
    outcome = Outcome()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for i in range(trials):
        name = rng.choice(printers.names)
        printers.set_state(name, rng.choice(["ok", "ok", "jammed", "door_open"]))
        log = open(data_dir.parent / f"run-{i}.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [*FSM_CLIENT, "--config", str(config), "--data-dir", str(data_dir), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        time.sleep(rng.uniform(min_wait, max_wait))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            outcome.kills += 1
        else:
            outcome.exited_early.append(
                f"trial {i}: exit {proc.returncode}: " + (data_dir.parent / f"run-{i}.log").read_text()[-500:]
            )
        proc.wait()
        log.close()
        outcome.trials += 1
    flush = subprocess.run(
        [*FSM_CLIENT, "--config", str(config), "--data-dir", str(data_dir), "send", "--no-read"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if flush.returncode != 0:
        outcome.exited_early.append(f"final send: {flush.stdout} {flush.stderr}")
    return outcome


def check(outcome: Outcome, data_dir: Path, keys: Keys, delivered: list[bytes]) -> Outcome:
    """Compare the store with the envelopes (or chunks) that reached the destination."""
    chunks: dict[int, dict[int, bytes]] = {}
    seen = Counter()
    for data in delivered:
        h = peek(data)
        if h.client_id != "kill9":
            outcome.foreign += 1
            continue
        seen[(h.seq, h.chunk_index)] += 1
        chunks.setdefault(h.seq, {})[h.chunk_index] = data
    outcome.duplicates = sum(n - 1 for n in seen.values())
    outcome.envelopes_seen = len(chunks)
    with Store.in_data_dir(data_dir) as store:
        outcome.last_seq = store.last_seq()
        readings = store.readings()
        outcome.readings = len(readings)
        outcome.unreported = sum(1 for r in readings if r.reported_seq is None)
        outcome.missing = [s for s in range(1, outcome.last_seq + 1) if s not in chunks]
        by_seq: dict[int, list[Any]] = {}
        for r in readings:
            if r.reported_seq is not None:
                by_seq.setdefault(r.reported_seq, []).append(r.device)
        for seq, parts in chunks.items():
            report = keys.open([parts[i] for i in sorted(parts)]) if len(parts) else None
            if report is None or report.devices != by_seq.get(seq, []):
                outcome.mismatched.append(seq)
    return outcome


__all__ = ["Outcome", "check", "client_sections", "run_trials", "write_toml"]
