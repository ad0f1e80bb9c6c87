"""Reports for protocol tests: a realistic builder and hypothesis strategies for any report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from fsm_protocol.schema import REPORT_KINDS, Alert, Capabilities, Device, Report, Status, Supply

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def realistic_device(i: int) -> Device:
    """One colour MFP as a PMD read would describe it, varied by ``i``."""
    colors = ("black", "cyan", "magenta", "yellow")
    return Device(
        ip=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
        observed_at=T0 + timedelta(seconds=i),
        pmd="hp-laserjet",
        manufacturer="HP",
        model="HP Color LaserJet MFP M479fdw",
        serial=f"CNB{i:07d}",
        firmware="2409081_052640",
        mac=f"a0:8c:fd:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
        hostname=f"NPI{i:06X}",
        location=f"Building {i % 7}, floor {i % 5}",
        sys_object_id="1.3.6.1.4.1.11.2.3.9.1",
        sys_descr="HP ETHERNET MULTI-ENVIRONMENT,ROM none,JETDIRECT,JD153,EEPROM JSI24090012",
        uptime_ticks=123456 + i,
        capabilities=Capabilities(color=True, duplex=True, trays=3, fax=True, scan=True),
        counters={
            "total": 100_000 + i,
            "total_black": 60_000 + i,
            "total_color": 40_000,
            "copy_black": 1200 + i,
            "duplex": 5400,
            "scan": 321 + i,
        },
        supplies=[
            Supply(
                index=n + 1,
                description=f"{c} Cartridge HP 415A W202{n}A",
                kind="toner",
                color=c,
                level=(i * 7 + n * 13) % 100,
                max=100,
                unit="percent",
                percent=float((i * 7 + n * 13) % 100),
                state="ok",
            )
            for n, c in enumerate(colors)
        ]
        + [Supply(index=5, description="Imaging Drum", kind="opc", level=-3, max=-2, state="some_remaining")],
        status=Status(device="running", printer="idle", conditions=["low_toner"] if i % 3 == 0 else []),
        alerts=[
            Alert(
                code="marker_toner_almost_empty",
                severity="warning",
                group="marker_supplies",
                group_index=1,
                location=1,
                description="Black cartridge low",
                index=1,
            )
        ]
        if i % 3 == 0
        else [],
        sources={"serial": "1.3.6.1.2.1.43.5.1.1.17.1", "total": "1.3.6.1.2.1.43.10.2.1.4.1.1"},
    )


def realistic_report(devices: int, *, seq: int = 1, client_id: str = "acme-hq") -> Report:
    return Report(
        client_id=client_id,
        customer="ACME Corp",
        site="HQ",
        seq=seq,
        kind="periodic",
        created_at=T0,
        period_start=T0 - timedelta(days=1),
        period_end=T0,
        devices=[realistic_device(i) for i in range(devices)],
    )


# --- hypothesis strategies -------------------------------------------------------------------

text = st.text(max_size=40)  # any unicode, including surrogate-free astral characters and NULs
#: Text a client chooses (names, customer, site): no control characters, as the schema requires.
names = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters=[chr(c) for c in range(32)] + ["\x7f"]),
    max_size=40,
)
small_int = st.integers(min_value=-(2**63), max_value=2**63 - 1)
client_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)
aware_datetimes = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]),
)
supplies = st.builds(
    Supply,
    index=st.none() | st.integers(0, 2**31),
    description=text,
    kind=st.sampled_from(["toner", "ink", "opc", "waste_toner", "other"]),
    color=st.none() | st.sampled_from(["black", "cyan", "magenta", "yellow"]),
    level=st.none() | st.sampled_from([-1, -2, -3]) | st.integers(0, 2**31 - 1),  # Printer-MIB sentinels
    max=st.none() | st.sampled_from([-1, -2, -3]) | st.integers(0, 2**31 - 1),
    percent=st.none() | st.floats(0, 100),
    state=st.sampled_from(["ok", "low", "empty", "unlimited", "unknown", "some_remaining", "invalid"]),
)
devices = st.builds(
    Device,
    ip=st.ip_addresses().map(str),
    observed_at=aware_datetimes,
    reachability=st.sampled_from(["ok", "partial", "unreachable"]),
    model=st.none() | text,
    serial=st.none() | text,
    location=st.none() | text,
    counters=st.dictionaries(names, small_int, max_size=6),
    supplies=st.lists(supplies, max_size=4),
    status=st.builds(Status, conditions=st.lists(names, max_size=3), console=st.none() | text),
    alerts=st.lists(st.builds(Alert, code=names, description=text), max_size=2),
    warnings=st.lists(text, max_size=2),
)
reports = st.builds(
    Report,
    client_id=client_ids,
    customer=names,
    site=names,
    seq=st.integers(0, 2**64 - 1),
    kind=st.sampled_from(REPORT_KINDS),
    created_at=aware_datetimes,
    devices=st.lists(devices, max_size=4),
)
