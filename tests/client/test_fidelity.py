"""The fidelity scorer of ../shared/tools runs on ../shared/snmp-walks against the real
`fsm-client scan` and snmpsim: 100 % of vendor/serial/MAC and >= 95 % of all fields."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SCORER = SHARED / "tools" / "fidelity.py"
WALKS = SHARED / "snmp-walks"

pytestmark = pytest.mark.snmp


def _snmpsim_venv() -> Path | None:
    for candidate in (os.environ.get("FSM_SNMPSIM_VENV"), "/opt/fsm-snmpsim"):
        if candidate and (Path(candidate) / "bin" / "snmpsim-command-responder").exists():
            return Path(candidate)
    return None


def _client() -> Path:
    for candidate in (REPO / ".venv" / "bin" / "fsm-client", Path(sys.executable).parent / "fsm-client"):
        if candidate.exists():
            return candidate
    pytest.fail("fsm-client is not installed in the project venv (run scripts/setup)")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not SCORER.exists() or not WALKS.is_dir(), reason="../shared is not beside the repo")
def test_fidelity_on_the_shared_walks() -> None:
    venv = _snmpsim_venv()
    if venv is None:
        pytest.skip("snmpsim is not installed (set FSM_SNMPSIM_VENV or run scripts/setup)")
    cmd = [
        sys.executable,
        str(SCORER),
        str(WALKS),
        "--client",
        str(_client()),
        "--snmpsim-venv",
        str(venv),
        "--port",
        str(_free_udp_port()),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=540, cwd=REPO)
    summary = [line for line in r.stdout.splitlines() if line.startswith("fidelity ")]
    print("\n".join(summary))  # the figure, for the CI log (pytest -rP or -s)
    misses = [line for line in r.stdout.splitlines() if "MISS" in line or "no reading" in line]
    assert r.returncode == 0, "\n".join([*summary, *misses, r.stderr[-2000:]])
    assert summary and "identity misses 0" in summary[0]
