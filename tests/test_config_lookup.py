"""Where the data is: both programs find their config in the documented places, say which one they
use (on stderr, so JSON on stdout stays clean), and a command that only reads never creates an
empty store; tables written to a pipe keep their full width."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import fsm_client.cli
import fsm_server.cli
from fsm_client.store import Store
from fsm_server.db import open_database


@pytest.fixture(autouse=True)
def empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory with none of the variables that point at a config or data."""
    for name in (
        "FSM_CLIENT_CONFIG",
        "FSM_CLIENT_DATA_DIR",
        "FSM_SERVER_CONFIG",
        "FSM_SERVER_DATA_DIR",
        "FSM_DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def client(*args: str) -> Result:
    return CliRunner().invoke(fsm_client.cli.main, list(args))


def server(*args: str) -> Result:
    return CliRunner().invoke(fsm_server.cli.main, list(args))


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["outbox", "list"]])
def test_a_client_read_without_config_creates_nothing_and_says_where_it_looked(
    empty_cwd: Path, command: list[str]
) -> None:
    result = client(*command)
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    err = result.stderr
    assert err.startswith("error: ") and "var/client/client.sqlite" in err
    for place in ("--config", "$FSM_CLIENT_CONFIG", "./fsm-client.toml", "/etc/fsm/client.toml"):
        assert place in err, (place, err)
    assert "--data-dir" in err
    assert list(empty_cwd.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["devices"],
        ["devices", "--json"],
        ["gaps"],
        ["quarantine", "list"],
        ["clients", "list"],
        ["report", "inventory"],
    ],
)
def test_a_server_read_without_config_creates_nothing_and_says_where_it_looked(
    empty_cwd: Path, command: list[str]
) -> None:
    result = server(*command)
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    err = result.stderr
    assert err.startswith("error: ") and "var/server/fsm.db" in err
    for place in ("--config", "$FSM_SERVER_CONFIG", "./fsm-server.toml", "/etc/fsm/server.toml"):
        assert place in err, (place, err)
    assert list(empty_cwd.iterdir()) == []


def test_an_explicit_data_dir_without_a_store_is_not_filled_with_an_empty_one(empty_cwd: Path) -> None:
    (empty_cwd / "site").mkdir()
    result = client("--data-dir", "site", "status")
    assert result.exit_code == 3 and "site/client.sqlite" in result.stderr, result.output
    assert list((empty_cwd / "site").iterdir()) == []
    result = server("--data-dir", "site", "devices")
    assert result.exit_code == 3 and "site/fsm.db" in result.stderr, result.output
    assert list((empty_cwd / "site").iterdir()) == []


def test_the_client_finds_its_config_in_the_current_directory_and_names_it(empty_cwd: Path) -> None:
    (empty_cwd / "fsm-client.toml").write_text('[client]\nid = "acme-hq"\ndata_dir = "site-data"\n')
    Store.in_data_dir(empty_cwd / "site-data").close()
    result = client("status", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["client_id"] == "acme-hq"
    assert "fsm-client.toml" in result.stderr
    shown = client("status").stdout
    assert "site-data ([client] data_dir of fsm-client.toml; config 'fsm-client.toml', found" in shown

    # $FSM_CLIENT_CONFIG wins over the current directory, and is not announced (it was asked for)
    other = empty_cwd / "other.toml"
    other.write_text('[client]\nid = "branch-2"\ndata_dir = "site-data"\n')
    runner = CliRunner(env={"FSM_CLIENT_CONFIG": str(other)})
    result = runner.invoke(fsm_client.cli.main, ["status", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["client_id"] == "branch-2" and result.stderr == ""


def test_the_server_finds_its_config_in_the_current_directory_and_names_it(empty_cwd: Path) -> None:
    (empty_cwd / "fsm-server.toml").write_text('[server]\ndata_dir = "server-data"\n')
    open_database("", data_dir=empty_cwd / "server-data").close()
    result = server("devices", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []
    assert "fsm-server.toml" in result.stderr


def test_a_table_written_to_a_pipe_keeps_its_full_width() -> None:
    result = client("pmd", "list")
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout
    assert "printer-mib" in result.stdout and "1.3.6.1.4.1.2435" in result.stdout
