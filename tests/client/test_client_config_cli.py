"""Bad configuration and output paths given to `fsm-client` end in one `error:`/`hint:` and an exit
code (3 bad config, 1 a failed operation), never a traceback, and create nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fsm_client.cli import main


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


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[snmp]\nconcurrency = 0\n", "snmp.concurrency"),
        ("[snmp]\ntimeout = 0.0\n", "snmp.timeout"),
        ("[snmp]\nretries = -1\n", "snmp.retries"),
        ("[snmp]\ndiscovery_rate = 0\n", "snmp.discovery_rate"),
        ("[snmp]\nport = 70000\n", "snmp.port"),
        ("[snmp]\ntimeout = nan\n", "snmp.timeout"),
        ("[smtp]\ntimeout = inf\n", "smtp.timeout"),
        ("[outbox]\nretry_initial = -30.0\n", "outbox.retry_initial"),
        ("[outbox]\nchunk_bytes = 10\n", "outbox.chunk_bytes"),
        ("[alerts]\noffline_after = 0\n", "alerts.offline_after"),
        ("[pmd.update]\ntimeout = 0\n", "pmd.update.timeout"),
    ],
)
def test_an_out_of_bounds_number_is_refused_at_start_up_naming_the_key(
    tmp_path: Path, toml: str, key: str
) -> None:
    config = tmp_path / "client.toml"
    config.write_text(toml)
    result = invoke("--config", str(config), "--data-dir", str(tmp_path / "data"), "status")
    assert_clean_error(result, 3, str(config), key)
    assert not (tmp_path / "data").exists()


def test_retry_max_below_retry_initial_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "client.toml"
    config.write_text("[outbox]\nretry_initial = 600.0\nretry_max = 60.0\n")
    result = invoke("--config", str(config), "--data-dir", str(tmp_path / "data"), "status")
    assert_clean_error(result, 3, "outbox", "retry_max")


def test_a_binary_config_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "client.toml"
    config.write_bytes(b"\xff\xfe[\x00s\x00n\x00m\x00p\x00]\x00")  # UTF-16, as some editors save
    result = invoke("--config", str(config), "--data-dir", str(tmp_path / "data"), "status")
    assert_clean_error(result, 3, str(config), "UTF-8")


def test_an_unwritable_bundle_out_path_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    publisher = tmp_path / "publisher"
    assert invoke("pmd", "keygen", "--dir", str(publisher)).exit_code == 0
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    out = blocker / "bundle.zip"  # its directory is a file: no user, not even root, can write it
    result = invoke("pmd", "bundle", "--key", str(publisher / "publisher.key"), "--out", str(out))
    assert_clean_error(result, 1, str(out), "--out")
    assert blocker.read_text() == ""
