"""Report schema v1 bounds its text: client-chosen text is refused when too long or holding a control
character, printer-set text is cleaned with a warning on its reading (docs/wire-format.md, "Text")."""

from __future__ import annotations

import msgspec
import pytest
from protocol_reports import realistic_report

from fsm_protocol.errors import SchemaError
from fsm_protocol.schema import DEVICE_TEXT, LABEL_CHARS, TEXT_CHARS, clean_text, decode_report, encode_report


def test_clean_text_drops_controls_reads_line_breaks_as_blanks_and_cuts() -> None:
    assert clean_text("a\x00b\tc\r\nd\x7f", 100) == ("ab c  d", ["5 control characters removed"])
    assert clean_text("x" * 10, 4) == ("xxxx", ["10 characters, cut to 4"])
    assert clean_text("fine", 4) == ("fine", [])


@pytest.mark.parametrize("field", sorted(DEVICE_TEXT))
def test_printer_text_is_cleaned_and_the_reading_says_so(field: str) -> None:
    report = realistic_report(1)
    limit = DEVICE_TEXT[field]
    device = msgspec.structs.replace(report.devices[0], **{field: "\x00" + "é" * (limit + 5)})
    got = decode_report(encode_report(msgspec.structs.replace(report, devices=[device]))).devices[0]
    assert getattr(got, field) == "é" * limit
    assert f"{field}: 1 control character removed" in got.warnings
    assert f"{field}: {limit + 5} characters, cut to {limit}" in got.warnings


def test_supply_alert_console_and_warning_text_is_cleaned() -> None:
    report = realistic_report(3)
    d = report.devices[0]
    d = msgspec.structs.replace(
        d,
        supplies=[msgspec.structs.replace(d.supplies[0], description="B\x00" * TEXT_CHARS)],
        alerts=[msgspec.structs.replace(d.alerts[0], description="jam\x1b")],
        status=msgspec.structs.replace(d.status, console="Ready\n"),
        warnings=["odd\x00"],
    )
    got = decode_report(encode_report(msgspec.structs.replace(report, devices=[d]))).devices[0]
    assert got.supplies[0].description == "B" * TEXT_CHARS
    assert (got.alerts[0].description, got.status.console) == ("jam", "Ready ")
    assert got.warnings[0] == "odd"
    assert "supply 1 description: 1024 characters, cut to 512" not in got.warnings  # controls go first
    assert "supply 1 description: 512 control characters removed" in got.warnings


@pytest.mark.parametrize(
    "change, where",
    [
        ({"customer": "C" * (LABEL_CHARS + 1)}, "$.customer"),
        ({"site": "H\x00Q"}, "$.site"),
        ({"client_id": "acme\nhq"}, "$.client_id"),
        ({"pmd_bundle": "v" * (LABEL_CHARS + 1)}, "$.pmd_bundle"),
        ({"pmd_bundle": "shipped\x00"}, "$.pmd_bundle"),
    ],
)
def test_client_chosen_text_over_its_length_or_with_a_control_character_is_refused(
    change: dict[str, str], where: str
) -> None:
    report = msgspec.structs.replace(realistic_report(1), **change)
    with pytest.raises(SchemaError, match=rf"at `\{where}`"):
        decode_report(encode_report(report))


def test_a_clean_report_decodes_unchanged() -> None:
    report = realistic_report(5)
    assert decode_report(encode_report(report)) == report


def test_pmd_bundle_is_optional_so_an_older_clients_report_decodes_as_before() -> None:
    older = realistic_report(2)
    assert older.pmd_bundle is None and b"pmd_bundle" not in encode_report(older)
    assert decode_report(encode_report(older)) == older
    newer = msgspec.structs.replace(older, pmd_bundle="v00000000000000000003-3f9a1c2e")
    assert b'"pmd_bundle":"v00000000000000000003-3f9a1c2e"' in encode_report(newer)
    assert decode_report(encode_report(newer)) == newer
