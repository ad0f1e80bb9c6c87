"""Bad configuration and output paths given to `fsm-server` end in one `error:`/`hint:` and an exit
code (3 bad config, 1 a failed operation), never a traceback or a daemon that spins."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from ingest_helpers import write_server_config

from fsm_devtools.corpus import ServerKit
from fsm_devtools.peers.mailstack import MailStack
from fsm_server.cli import main
from fsm_server.db.connect import Database


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def assert_clean_error(result: Result, exit_code: int, *needles: str) -> None:
    """One error line (and a hint), the expected exit code, no traceback, each needle said."""
    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.output.startswith("error: "), result.output
    assert "\nhint: " in result.output, result.output
    for needle in needles:
        assert needle in result.output, (needle, result.output)


MAILBOX = '[[mailboxes]]\nhost = "127.0.0.1"\nuser = "dealer@fsm.test"\n'


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[ingest]\nbatch = 0\n", "ingest.batch"),
        ("[ingest]\nbatch = -1\n", "ingest.batch"),
        ("[ingest]\npoll_seconds = 0\n", "ingest.poll_seconds"),
        ("[ingest]\nmax_mail_bytes = -5\n", "ingest.max_mail_bytes"),
        ("[ingest]\nshutdown_timeout = -1.0\n", "ingest.shutdown_timeout"),
        ("[notify]\ntimeout = 0.0\n", "notify.timeout"),
        ("[notify]\nevaluate_seconds = 0.0\n", "notify.evaluate_seconds"),
        ("[reports]\nlow_supply_percent = 150.0\n", "reports.low_supply_percent"),
        ("[reports]\nforecast_min_points = 1\n", "reports.forecast_min_points"),
        ('[[rules]]\nname = "r"\nwhen = "alert"\ndelay_seconds = -1\n', "rules[0].delay_seconds"),
        (MAILBOX + "port = 0\n", "mailboxes[0].port"),
    ],
)
def test_an_out_of_bounds_number_is_refused_at_start_up_naming_the_key(
    tmp_path: Path, toml: str, key: str
) -> None:
    config = tmp_path / "server.toml"
    config.write_text(toml)
    result = invoke("--config", str(config), "--data-dir", str(tmp_path / "data"), "ingest", "--once")
    assert_clean_error(result, 3, str(config), key)
    assert not (tmp_path / "data").exists()


def test_ingest_once_with_batch_zero_stops_at_once_instead_of_spinning(
    empty_dealer_mailbox: MailStack, server_kit: ServerKit, tmp_path: Path
) -> None:
    config = write_server_config(tmp_path / "server.toml", empty_dealer_mailbox, server_kit)
    config.write_text(config.read_text().replace("batch = 20", "batch = 0"))
    started = time.monotonic()
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from fsm_server.cli import main; main()",
                "--config",
                str(config),
                "--data-dir",
                str(tmp_path / "data"),
                "ingest",
                "--once",
            ],
            env={**os.environ, "FSM_DATABASE_URL": f"sqlite:///{tmp_path / 'fsm.db'}"},
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("`ingest --once` with [ingest] batch = 0 did not return within 30 s")
    assert done.returncode == 3, done.stderr
    assert "ingest.batch" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - started < 30


def test_a_binary_config_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_bytes(b"[ingest]\nbatch = 5\n# caf\xe9 latin-1\n")
    result = invoke("--config", str(config), "--data-dir", str(tmp_path / "data"), "gaps")
    assert_clean_error(result, 3, str(config), "UTF-8", "line 3")


@pytest.mark.parametrize("user_line", ["", 'user = ""\n'])
def test_a_mailbox_without_a_user_is_refused_at_start_up(tmp_path: Path, user_line: str) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'[[mailboxes]]\nhost = "127.0.0.1"\n{user_line}password = "x"\n')
    result = invoke("--config", str(config), "--data-dir", str(tmp_path / "data"), "ingest", "--once")
    assert_clean_error(result, 3, "mailboxes[0]", "user")
    assert "refused the login" not in result.output


@pytest.fixture
def migrated(db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    """The database under test, migrated, and FSM_DATABASE_URL pointing the CLI at it."""
    monkeypatch.setenv("FSM_DATABASE_URL", database_url)
    return db


@pytest.mark.parametrize("target", ["under-a-file", "a-directory"])
def test_an_unwritable_report_out_path_is_an_error_not_a_traceback(
    migrated: Database, tmp_path: Path, target: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "inventory.html" if target == "under-a-file" else tmp_path
    result = invoke("--data-dir", str(tmp_path / "data"), "report", "inventory", "--out", str(out))
    if target == "a-directory":  # click refuses it itself, as a usage error
        assert result.exit_code == 2 and "is a directory" in result.output, result.output
        return
    assert_clean_error(result, 1, str(out), "--out")
    assert blocker.read_text() == ""


def test_a_data_dir_that_cannot_be_created_is_an_error_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSM_DATABASE_URL", raising=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    (tmp_path / "inbox").mkdir()
    result = invoke("--data-dir", str(blocker / "data"), "import", str(tmp_path / "inbox"))
    assert_clean_error(result, 1, str(blocker / "data"))
