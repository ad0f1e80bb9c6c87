"""The server commands on real files and the database under test (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsm_devtools.corpus import mails_for, make_client, make_report, seal
from fsm_protocol.keys import load_encryption_key, load_server_public_key
from fsm_server.cli import main


@pytest.fixture
def run(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Invoke `fsm-server --data-dir <tmp>` with FSM_DATABASE_URL pointing at the database under test."""
    monkeypatch.setenv("FSM_DATABASE_URL", database_url)

    def invoke(*args: str, ok: bool = True) -> str:
        result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), *args])
        if ok:
            assert result.exit_code == 0, result.output
        return result.output

    return invoke


def test_register_import_list_and_retry_from_the_command_line(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("keys", "init")
    server_key = load_encryption_key(tmp_path / "data" / "keys" / "server.key")
    server_pub = load_server_public_key(tmp_path / "data" / "keys" / "server.pub")
    from fsm_devtools.corpus import ServerKit

    server = ServerKit(
        key_path=tmp_path / "data" / "keys" / "server.key", encryption_key=server_key, public=server_pub
    )
    acme = make_client(tmp_path / "acme", "acme-hq")
    other = make_client(tmp_path / "other", "branch-2")
    run("clients", "add", "acme-hq", "--key", str(acme.pub_path), "--note", "ACME head office")
    clients = json.loads(run("clients", "list", "--json"))
    assert [(c["name"], c["status"]) for c in clients] == [("acme-hq", "active")]

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for seq in (1, 2, 4):
        (inbox / f"acme-{seq}.eml").write_bytes(mails_for(seal(make_report("acme-hq", seq), acme, server))[0])
    (inbox / "branch.eml").write_bytes(mails_for(seal(make_report("branch-2", 1), other, server))[0])
    summary = json.loads(run("import", "--json", str(inbox)))
    assert (summary["loaded"], summary["quarantined"]) == (3, 1)
    assert summary["quarantined_by_reason"] == {"unknown_client": 1}

    assert json.loads(run("gaps", "--json")) == [
        {"client": "acme-hq", "first": 3, "last": 3, "count": 1, "kind": "missing"}
    ]
    devices = json.loads(run("devices", "--json"))
    assert len(devices) == 3 and {d["client"] for d in devices} == {"acme-hq"}

    held = json.loads(run("quarantine", "list", "--json"))
    assert [q["reason"] for q in held] == ["unknown_client"]
    assert "clients add" in run("quarantine", "show", str(held[0]["id"]))
    # a second client of ACME joins it on the dealer's word, never on its report's
    assert "customer 'ACME'" in run(
        "clients", "add", "branch-2", "--key", str(other.pub_path), "--customer", "ACME"
    )
    assert {c["name"]: c["customer"] for c in json.loads(run("clients", "list", "--json"))} == {
        "acme-hq": "ACME",
        "branch-2": "ACME",
    }
    assert json.loads(run("quarantine", "retry", "--json", str(held[0]["id"])))[0]["outcome"] == "loaded"
    assert json.loads(run("quarantine", "list", "--json")) == []

    again = json.loads(run("import", "--json", str(inbox)))
    assert (again["loaded"], again["duplicate"], again["quarantined"]) == (0, 4, 0)

    (inbox / "lunch.eml").write_bytes(b"From: a@b.test\r\nTo: dealer@fsm.test\r\nSubject: hi\r\n\r\nnoon\r\n")
    run("import", str(inbox))
    [spam] = json.loads(run("quarantine", "list", "--json"))
    assert json.loads(run("quarantine", "dismiss", "--json", str(spam["id"]), "999")) == {
        "dismissed": [spam["id"]],
        "not_held": [999],
    }
    assert json.loads(run("quarantine", "list", "--json")) == []
    kept = [q for q in json.loads(run("quarantine", "list", "--all", "--json")) if q["id"] == spam["id"]]
    assert kept[0]["status"] == "dismissed" and kept[0]["reason"] == "not_fsm_mail"
    assert "not held" in run("quarantine", "dismiss", str(spam["id"]))

    run("clients", "revoke", "acme-hq")
    assert json.loads(run("clients", "list", "--json"))[0]["status"] == "revoked"
    out = run("clients", "add", "acme-hq", "--key", str(acme.pub_path), ok=False)
    assert "error:" in out and "hint:" in out


def test_every_server_command_has_help(run) -> None:  # type: ignore[no-untyped-def]
    for cmd in (
        ["clients"],
        ["clients", "add"],
        ["clients", "list"],
        ["clients", "revoke"],
        ["clients", "rotate"],
        ["import"],
        ["ingest"],
        ["quarantine", "list"],
        ["quarantine", "show"],
        ["quarantine", "retry"],
        ["quarantine", "dismiss"],
        ["gaps"],
        ["devices"],
    ):
        assert "Usage:" in run(*cmd, "--help")
