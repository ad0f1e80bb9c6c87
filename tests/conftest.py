"""Suite-wide settings: under scripts/test (FSM_REQUIRE_PEERS=1) a skipped test is a failure,
so a test that needs Dovecot, snmpsim, snmpd or PostgreSQL can never pass by not running."""

from __future__ import annotations

import os

import pytest

pytest_plugins: list[str] = [
    "fsm_devtools.fixtures.db",
    "fsm_devtools.fixtures.mail",
    "fsm_devtools.fixtures.snmp",
]

REQUIRE_PEERS = os.environ.get("FSM_REQUIRE_PEERS") == "1"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_PEERS and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped under FSM_REQUIRE_PEERS=1 (scripts/test must run every test): {reason}"
