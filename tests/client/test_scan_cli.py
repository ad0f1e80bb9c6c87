"""`fsm-client scan` and `fsm-client pmd ...` on real files, and the scan core."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsm_client.cli import main
from fsm_client.config import ClientConfig, Credential, load_config
from fsm_client.errors import SnmpProtocolError, SnmpTimeout
from fsm_client.pmd.authoring.loader import default_dirs, load_pool
from fsm_client.scan import Target, parse_target, scan
from fsm_client.snmp.source import RecordingSource, SnmpSource, SnmpValue
from fsm_common.configfile import Secret
from fsm_protocol.errors import ConfigError

WALKS = Path(__file__).resolve().parents[3] / "shared" / "snmp-walks"
SHARP = WALKS / "sharp-mx-3570n"
needs_walks = pytest.mark.skipif(
    not SHARP.is_dir(), reason="../shared/snmp-walks is not beside the repository"
)


def run(*args: str, data_dir: Path) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])
    return r.exit_code, r.stdout, r.stderr


def test_pmd_list_shows_every_pmd_as_json(tmp_path: Path) -> None:
    code, out, _ = run("pmd", "list", "--json", data_dir=tmp_path)
    assert code == 0
    rows = json.loads(out)
    assert {"hp", "printer-mib", "lanier"} <= {r["id"] for r in rows}
    assert next(r for r in rows if r["id"] == "lanier")["extends"] == "ricoh"


def test_pmd_show_prints_the_merged_pmd(tmp_path: Path) -> None:
    code, out, _ = run("pmd", "show", "lanier", data_dir=tmp_path)
    pmd = json.loads(out)
    assert code == 0 and pmd["chain"] == ["lanier", "ricoh", "printer-mib"]
    assert pmd["identity"]["serial"][-1]["oid"] == "1.3.6.1.2.1.43.5.1.1.17.1"


def test_pmd_show_unknown_id_says_what_to_do(tmp_path: Path) -> None:
    code, _, err = run("pmd", "show", "nope", data_dir=tmp_path)
    assert code == 1 and "error: no PMD 'nope'" in err and "hint: `fsm-client pmd list`" in err


def test_a_local_pmd_directory_overrides_the_shipped_file(tmp_path: Path) -> None:
    (tmp_path / "pmd").mkdir()
    (tmp_path / "pmd" / "tsc.toml").write_text('name = "local TSC"\nmanufacturer = "TSC"\n')
    code, out, _ = run("pmd", "show", "tsc", data_dir=tmp_path)
    assert code == 0 and json.loads(out)["name"] == "local TSC"


def test_a_broken_local_pmd_fails_naming_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "pmd").mkdir()
    (tmp_path / "pmd" / "acme.toml").write_text('[identity]\nserial = [{ oid = "1.3.x" }]\n')
    code, _, err = run("pmd", "list", data_dir=tmp_path)
    assert code == 3 and "acme.toml: identity.serial[0].oid" in err and "'1.3.x'" in err


@needs_walks
def test_pmd_test_with_expectations_passes(tmp_path: Path) -> None:
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
    assert code == 0 and result["pmd"] == "sharp" and result["passed"] == result["total"] == 25


@needs_walks
def test_pmd_test_fails_when_a_value_differs(tmp_path: Path) -> None:
    expected = json.loads((SHARP / "expected.json").read_text())
    expected["serial"] = "WRONG"
    exp = tmp_path / "expected.json"
    exp.write_text(json.dumps(expected))
    code, out, _ = run(
        "pmd", "test", str(SHARP / "device.snmprec"), "--expected", str(exp), data_dir=tmp_path
    )
    assert code == 1 and "NO" in out and "24/25" in out


@needs_walks
def test_pmd_test_without_expectations_prints_the_reading(tmp_path: Path) -> None:
    code, out, _ = run("pmd", "test", str(SHARP / "device.snmprec"), data_dir=tmp_path)
    reading = json.loads(out)
    assert code == 0
    for key in (
        "ip",
        "manufacturer",
        "model",
        "serial",
        "firmware",
        "mac",
        "hostname",
        "location",
        "counters",
        "supplies",
        "status",
        "alerts",
        "pmd",
        "sources",
    ):
        assert key in reading
    assert set(reading["supplies"][0]) >= {
        "index",
        "description",
        "kind",
        "color",
        "level",
        "max",
        "percent",
        "state",
    }


@needs_walks
def test_pmd_match_on_a_recording(tmp_path: Path) -> None:
    code, out, _ = run(
        "pmd", "match", str(WALKS / "hp-jetdirect-ex" / "device.snmprec"), "--json", data_dir=tmp_path
    )
    result = json.loads(out)
    assert code == 0 and result["pmd"] == "hp"
    assert [c["id"] for c in result["candidates"]] == ["hp", "kyocera"]


@pytest.mark.parametrize(
    "spec, target",
    [
        ("10.0.0.5", Target("10.0.0.5", 161)),
        ("127.0.0.1:11261", Target("127.0.0.1", 11261)),
        ("printer.example.com:1161", Target("printer.example.com", 1161)),
        ("[2001:db8::5]:162", Target("2001:db8::5", 162)),
        ("[2001:db8::5]", Target("2001:db8::5", 161)),
    ],
)
def test_parse_target(spec: str, target: Target) -> None:
    assert parse_target(spec) == target


@pytest.mark.parametrize("spec", ["10.0.0.5:0", "10.0.0.5:99999", "a:b:c", ""])
def test_bad_targets_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_target(spec)


class _Silent:
    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]:
        raise SnmpTimeout("no answer within 0.1 s")

    async def walk(self, oid: str, *, max_rows: int = 10_000) -> list[tuple[str, SnmpValue]]:
        raise SnmpTimeout("no answer within 0.1 s")


@needs_walks
async def test_scan_tries_credentials_in_order_and_keeps_one_device_per_target() -> None:
    opened: list[tuple[str, str]] = []

    @asynccontextmanager
    async def open_source(host: str, port: int, cred: Credential) -> AsyncIterator[SnmpSource]:
        opened.append((host, cred.name))
        if host == "192.0.2.1" and cred.community.reveal() == "right":
            yield RecordingSource.from_file(SHARP / "device.snmprec")
        else:
            yield _Silent()

    creds = [
        Credential(name="wrong", community=Secret("wrong")),
        Credential(name="right", community=Secret("right")),
    ]
    devices = await scan(
        ["192.0.2.1", "192.0.2.2:1161"],
        config=ClientConfig(credentials=creds),
        pool=load_pool(default_dirs()),
        open_source=open_source,
    )
    assert [(d.ip, d.reachability) for d in devices] == [("192.0.2.1", "ok"), ("192.0.2.2", "unreachable")]
    assert devices[0].serial == "6509415X00" and "read with credential 'right'" in devices[0].warnings[0]
    assert "wrong: no answer" in devices[1].warnings[0] and "right: no answer" in devices[1].warnings[0]
    assert opened.count(("192.0.2.1", "wrong")) == 1 and opened.count(("192.0.2.2", "right")) == 1


@needs_walks
async def test_one_failing_device_never_stops_the_scan() -> None:
    @asynccontextmanager
    async def open_source(host: str, port: int, cred: Credential) -> AsyncIterator[SnmpSource]:
        if host == "192.0.2.9":
            raise SnmpProtocolError("the agent's engine id is malformed")
        yield RecordingSource.from_file(SHARP / "device.snmprec")

    devices = await scan(
        ["192.0.2.9", "192.0.2.1"],
        config=ClientConfig(),
        pool=load_pool(default_dirs()),
        open_source=open_source,
    )
    assert [(d.ip, d.reachability) for d in devices] == [("192.0.2.9", "unreachable"), ("192.0.2.1", "ok")]
    assert "engine id is malformed" in devices[0].warnings[0]


def test_pmd_check_passes_the_shipped_pool_and_names_a_bad_file(tmp_path: Path) -> None:
    code, out, _ = run("pmd", "check", data_dir=tmp_path)
    assert code == 0 and "PMDs load without error" in out
    good = tmp_path / "acme.toml"
    good.write_text('manufacturer = "ACME"\n[match]\nsys_descr = ["^ACME"]\n')
    code, out, _ = run("pmd", "check", str(good), "--json", data_dir=tmp_path)
    assert code == 0 and json.loads(out)["checked"] == [str(good)]
    bad = tmp_path / "bad.toml"
    bad.write_text('[counters]\npages = [{ oid = "1.3.6.1.2.1.43.10.2.1.4.1.1" }]\n')
    code, _, err = run("pmd", "check", str(bad), data_dir=tmp_path)
    assert code == 3 and "bad.toml: counters.pages" in err


#: Targets no unicast SNMP GET may go to, or that are not addresses at all.
NOT_UNICAST = [
    "999.1.1.1",  # an octet over 255: not an address, and no host name either
    "10.0.0",  # short forms the C resolver reads as 10.0.0.0, 10.0.0.1, 192.168.1.1, 127.0.0.1
    "10.1",
    "3232235777",
    "0x7f.0.0.1",
    "255.255.255.255",  # broadcast
    "224.0.0.1",  # multicast
    "239.255.255.250:1900",
    "0.0.0.0",  # "this host"
    "240.0.0.1",  # reserved
    "[ff02::1]",  # IPv6 multicast
    "[::]",  # IPv6 unspecified
    "224.0.0.0/24",  # ranges with no unicast address in them
    "255.255.255.255/32",
    "10.0.0.0/32-1",
    "10.0.0.255-255",
]


@pytest.mark.parametrize("spec", NOT_UNICAST)
async def test_scan_refuses_a_target_that_is_not_a_unicast_address_before_sending(spec: str) -> None:
    opened: list[str] = []

    @asynccontextmanager
    async def open_source(host: str, port: int, cred: Credential) -> AsyncIterator[SnmpSource]:
        opened.append(host)
        yield _Silent()

    with pytest.raises(ConfigError) as info:
        await scan(
            ["192.0.2.1", spec],
            config=ClientConfig(),
            pool=load_pool(default_dirs()),
            open_source=open_source,
        )
    assert repr(spec.split(":")[0].strip("[]")) in info.value.message or repr(spec) in info.value.message
    assert info.value.hint and opened == []


@pytest.mark.parametrize("spec", ["999.1.1.1", "255.255.255.255", "224.0.0.1", "10.1"])
def test_scan_command_says_error_and_hint_for_a_target_that_is_not_unicast(spec: str, tmp_path: Path) -> None:
    code, out, err = run("scan", "--no-store", "--timeout", "0.1", spec, data_dir=tmp_path)
    assert code == 3 and out == ""
    assert err.startswith("error: target ") and f"{spec!r}" in err and "\nhint: " in err, err


@pytest.mark.parametrize(
    "key, spec",
    [
        *(("range", s) for s in ("255.255.255.255", "999.1.1.1", "224.0.0.0/24", "10.1", "10.0.0.0/33")),
        # excluding a broadcast address is harmless; an exclusion that is no address is a typo
        *(("exclude", s) for s in ("999.1.1.1", "10.1", "10.0.0.0/33")),
    ],
)
def test_a_config_target_that_is_not_unicast_is_refused_at_load(spec: str, key: str, tmp_path: Path) -> None:
    value = f'"{spec}"' if key == "range" else f'["{spec}"]'
    extra = "" if key == "range" else 'range = "10.0.0.0/24"\n'
    path = tmp_path / "client.toml"
    path.write_text(f"[[targets]]\n{extra}{key} = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "targets[0]" in info.value.message and spec in info.value.message


@pytest.mark.parametrize(
    "spec",
    [
        "10.0.0.5",
        "printer.example.com:1161",
        "10.0.0.0/24",
        "10.0.0.10-50",
        "[2001:db8::5]:161",
        "10.0.0.255",
        "10.0.0.0/31",
    ],
)
def test_unicast_targets_load(spec: str, tmp_path: Path) -> None:
    path = tmp_path / "client.toml"
    path.write_text(f'[[targets]]\nrange = "{spec}"\nexclude = ["10.0.0.7"]\n')
    assert load_config(path).targets[0].range == spec


@needs_walks
def test_pmd_test_shows_what_a_hostile_agent_answers_defused(tmp_path: Path) -> None:
    """A serial that carries rich markup, a right-to-left override and a terminal escape: the table
    of `pmd test` shows it as text, without its controls, instead of failing or obeying it."""
    hostile = "[/bold]\u202egnp.exe\x1b[2J"
    serial_oid = "1.3.6.1.2.1.43.5.1.1.17.1|"
    lines = (SHARP / "device.snmprec").read_text().splitlines()
    walk = tmp_path / "device.snmprec"
    walk.write_text(
        "\n".join(
            f"{serial_oid}4x|{hostile.encode().hex()}" if line.startswith(serial_oid) else line
            for line in lines
        )
        + "\n"
    )
    code, out, err = run(
        "pmd", "test", str(walk), "--expected", str(SHARP / "expected.json"), data_dir=tmp_path
    )
    assert code == 1, err  # the serial differs from the expected one
    assert "'[/bold]" in out and "gnp.exe" in out, out  # printed as it is, not read as rich markup
    assert "\u202e" not in out and "\x1b" not in out
