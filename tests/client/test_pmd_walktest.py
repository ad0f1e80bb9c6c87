"""`fsm-client pmd test WALK`: the recording served by snmpsim and read over SNMP (as a scan
reads a device), or read from the file with --direct; both give the same reading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fsm_client.cli import main
from fsm_client.pmd.authoring.matcher import PmdPool
from fsm_client.pmd.authoring.walktest import read_walk, snmpsim_venv
from fsm_client.reader import device_json

FIXTURES = Path(__file__).parent / "fixtures"
WALKS = Path(__file__).resolve().parents[3] / "shared" / "snmp-walks"
SHARP = WALKS / "sharp-mx-3570n"

needs_snmpsim = pytest.mark.skipif(
    snmpsim_venv() is None, reason="snmpsim is not installed (set FSM_SNMPSIM_VENV or run scripts/setup)"
)
needs_walks = pytest.mark.skipif(
    not SHARP.is_dir(), reason="../shared/snmp-walks is not beside the repository"
)


def run(*args: str, data_dir: Path) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])
    return r.exit_code, r.stdout, r.stderr


def comparable(reading: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reading.items() if k not in ("observed_at", "uptime_ticks")}


def test_direct_reads_the_recording_without_serving(pool: PmdPool) -> None:
    result = read_walk(FIXTURES / "ricoh-mp-counter-table.snmprec", pool, serve=False)
    assert result.via == "recording" and result.note == ""
    assert result.device.pmd == "ricoh" and result.device.counters["scan"] == 2600


def test_without_snmpsim_the_recording_is_read_directly_and_says_so(
    pool: PmdPool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FSM_SNMPSIM_VENV", str(tmp_path / "no-venv"))
    result = read_walk(FIXTURES / "xerox-hrdevdetail-counters.snmprec", pool)
    assert result.via == "recording" and "snmpsim is not installed" in result.note
    assert result.device.counters["total"] == 90000


def test_cli_direct_prints_the_reading(tmp_path: Path) -> None:
    code, out, _ = run(
        "pmd", "test", "--direct", str(FIXTURES / "kyocera-taskalfa-counters.snmprec"), data_dir=tmp_path
    )
    reading = json.loads(out)
    assert code == 0 and reading["pmd"] == "kyocera" and reading["counters"]["total_color"] == 10000


@needs_walks
def test_cli_direct_diffs_against_expectations(tmp_path: Path) -> None:
    code, out, _ = run(
        "pmd",
        "test",
        "--direct",
        str(SHARP / "device.snmprec"),
        "--expected",
        str(SHARP / "expected.json"),
        "--json",
        data_dir=tmp_path,
    )
    result = json.loads(out)
    assert code == 0 and result["read_via"] == "recording" and result["passed"] == result["total"]


@pytest.mark.snmp
@needs_snmpsim
@pytest.mark.parametrize("fixture", ["ricoh-mp-counter-table", "canon-lbp-counter-names", "lexmark-pgcount"])
def test_served_walk_reads_the_same_as_the_recording(pool: PmdPool, fixture: str) -> None:
    walk = FIXTURES / f"{fixture}.snmprec"
    served = read_walk(walk, pool, timeout=2.0, retries=1)
    direct = read_walk(walk, pool, serve=False)
    assert served.via == "snmpsim"
    assert served.device.reachability == "ok" and served.device.warnings == []
    assert comparable(device_json(served.device)) == comparable(device_json(direct.device))


@pytest.mark.snmp
@needs_snmpsim
@needs_walks
def test_cli_serves_the_walk_and_diffs_against_expectations(tmp_path: Path) -> None:
    code, out, _ = run(
        "pmd",
        "test",
        str(SHARP / "device.snmprec"),
        "--expected",
        str(SHARP / "expected.json"),
        "--json",
        data_dir=tmp_path,
    )
    result = json.loads(out)
    assert code == 0 and result["read_via"] == "snmpsim"
    assert result["pmd"] == "sharp" and result["passed"] == result["total"] == 25


@pytest.mark.snmp
@needs_snmpsim
@needs_walks
def test_cli_served_walk_exits_1_on_a_difference(tmp_path: Path) -> None:
    expected = json.loads((SHARP / "expected.json").read_text())
    expected["counters"]["TOTAL"] += 1
    exp = tmp_path / "expected.json"
    exp.write_text(json.dumps(expected))
    code, out, _ = run(
        "pmd", "test", str(SHARP / "device.snmprec"), "--expected", str(exp), data_dir=tmp_path
    )
    assert code == 1 and "read via snmpsim" in out and "24/25" in out


@pytest.mark.snmp
@needs_snmpsim
def test_a_recording_snmpsim_cannot_parse_fails_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.snmprec"
    bad.write_text("garbage line\n1.3.6.1.2.1.1.1.0|4|Test\n")
    code, _, err = run("pmd", "test", str(bad), data_dir=tmp_path)
    assert code == 3
    assert "error: snmpsim could not serve" in err and "broken record" in err
    assert "hint: check the recording's format" in err


def test_a_broken_recording_read_directly_fails_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.snmprec"
    bad.write_text("garbage line\n1.3.6.1.2.1.1.1.0|4|Test\n")
    for args in (("pmd", "test", "--direct", str(bad)), ("pmd", "match", str(bad))):
        code, _, err = run(*args, data_dir=tmp_path)
        assert code == 3 and f"cannot read the recording {str(bad)!r}" in err
        assert "hint: a .snmprec file" in err
