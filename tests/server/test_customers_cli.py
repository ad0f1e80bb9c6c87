"""`fsm-server dealers` and `fsm-server customers` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsm_server.cli import main


@pytest.fixture
def run(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FSM_DATABASE_URL", database_url)

    def invoke(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), *args])
        assert result.exit_code == code, result.output
        return result.output

    return invoke


def test_dealers_own_customers_and_customers_move_between_dealers(run) -> None:  # type: ignore[no-untyped-def]
    run("dealers", "add", "North")
    run("dealers", "add", "South")
    out = run("customers", "add", "ACME", "--dealer", "North", "--site", "HQ", "--site", "Depot")
    assert "dealer 'North', 2 site(s)" in out
    run("customers", "add", "Globex")
    listed = json.loads(run("customers", "list", "--json"))
    assert [(c["name"], c["dealer"], c["sites"]) for c in listed] == [
        ("ACME", "North", ["Depot", "HQ"]),
        ("Globex", None, []),
    ]
    run("customers", "assign-dealer", "ACME", "South")
    south = json.loads(run("customers", "list", "--dealer", "South", "--json"))
    assert [c["name"] for c in south] == ["ACME"]
    run("customers", "assign-dealer", "ACME", "--none")
    assert json.loads(run("customers", "list", "--dealer", "South", "--json")) == []
    assert json.loads(run("dealers", "list", "--json")) == [
        {"name": "North", "customers": 0},
        {"name": "South", "customers": 0},
    ]


def test_unknown_dealer_or_customer_and_bad_names_are_clear_errors(run) -> None:  # type: ignore[no-untyped-def]
    run("dealers", "add", "North")
    out = run("customers", "add", "ACME", "--dealer", "Nowhere", code=1)
    assert "no dealer 'Nowhere'" in out and "fsm-server dealers add" in out and "known: North" in out
    assert "no customer 'Initech'" in run("customers", "assign-dealer", "Initech", "North", code=1)
    assert "1 to 200 printable characters" in run("dealers", "add", "bad\x1bname", code=1)
    assert "give a DEALER or --none" in run("customers", "assign-dealer", "ACME", code=2)
    assert json.loads(run("customers", "list", "--json")) == []  # the failed add left nothing
