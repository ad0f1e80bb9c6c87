"""The README's main command works end to end, and a second run works too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.mail, pytest.mark.snmp]


def run_demo(state: Path) -> str:
    env = dict(os.environ, FSM_DEMO_STATE=str(state), FSM_DEMO_MAIL_OFFSET="300")
    proc = subprocess.run([sys.executable, "-m", "fsm_devtools.demo"], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_demo_scans_mails_ingests_and_shows_every_printer_twice_over(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "demo")
    assert "loaded 1, duplicate 0, chunk stored 0, quarantined 0" in first
    for serial in ("VNCRC48198", "6509415X00", "W492KB03439"):  # HP M130nw, Sharp MX-3570N, Ricoh C3002
        assert serial in first
    assert (tmp_path / "demo" / "reports" / "supplies.html").stat().st_size > 1000
    second = run_demo(tmp_path / "demo")
    assert "clients add" not in second  # keys and enrolment are kept
    assert "loaded 1, duplicate 0" in second  # the next report number, loaded once
