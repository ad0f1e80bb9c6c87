"""The closed vocabularies: every member is reachable and named consistently."""

from __future__ import annotations

import re

import pytest

from fsm_protocol import vocabulary as v

SNAKE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")


@pytest.mark.parametrize(
    "table",
    [
        v.SUPPLY_KINDS,
        v.SUPPLY_UNITS,
        v.DEVICE_STATUS,
        v.PRINTER_STATUS,
        v.ALERT_SEVERITIES,
        v.ALERT_TRAINING,
        v.ALERT_GROUPS,
        v.ALERT_CODES,
    ],
)
def test_every_enumeration_name_is_unique_snake_case(table: dict[int, str]) -> None:
    assert all(SNAKE.match(name) for name in table.values())
    assert len(set(table.values())) == len(table)


def test_supply_kinds_follow_rfc3805_numbers() -> None:
    assert (
        v.SUPPLY_KINDS[3],
        v.SUPPLY_KINDS[4],
        v.SUPPLY_KINDS[9],
        v.SUPPLY_KINDS[21],
        v.SUPPLY_KINDS[36],
    ) == ("toner", "waste_toner", "opc", "toner_cartridge", "matte_ink")
    assert len(v.SUPPLY_KINDS) == 36


def test_colorant_and_waste_kinds_are_supply_kinds() -> None:
    assert v.COLORANT_KINDS <= v.SUPPLY_KIND_NAMES
    assert v.WASTE_KINDS <= v.SUPPLY_KIND_NAMES


@pytest.mark.parametrize("word", sorted(v.COLOR_WORDS))
def test_every_colour_word_names_a_colour(word: str) -> None:
    assert v.COLOR_WORDS[word] in v.COLORS


@pytest.mark.parametrize("name", sorted(v.COUNTERS))
def test_every_canonical_counter_is_accepted(name: str) -> None:
    assert v.is_counter_name(name) and SNAKE.match(name)


@pytest.mark.parametrize("name", ["x_a3_color", "x_jams2"])
def test_vendor_extra_counters_need_the_x_prefix(name: str) -> None:
    assert v.is_counter_name(name)
    assert not v.is_counter_name(name[2:] + "_extra")


@pytest.mark.parametrize("bit", range(len(v.ERROR_STATE_BITS)))
def test_each_error_state_bit_decodes_msb_first(bit: int) -> None:
    raw = bytearray(2)
    raw[bit // 8] = 0x80 >> (bit % 8)
    assert v.decode_error_state(bytes(raw)) == [v.ERROR_STATE_BITS[bit]]


def test_error_state_bit_order_is_that_of_rfc2790() -> None:
    # 0x80 is bit 0 (lowPaper), not bit 7; 0x01 of the first byte is bit 7 (serviceRequested).
    assert v.decode_error_state(b"\x80") == ["low_paper"]
    assert v.decode_error_state(b"\x01") == ["service_requested"]
    assert v.decode_error_state(b"\x00\x02") == ["overdue_prevent_maint"]
    assert v.decode_error_state(b"\x00\x01") == ["bit_15"]
    assert v.decode_error_state(b"") == []


@pytest.mark.parametrize("code", sorted(v.ALERT_CODES))
def test_every_alert_code_has_its_name(code: int) -> None:
    assert v.alert_code_name(code) == v.ALERT_CODES[code]


def test_unknown_alert_code_keeps_its_number() -> None:
    assert v.alert_code_name(4242) == "code_4242"
    assert v.ALERT_CODES[1104] == "marker_toner_almost_empty"
    assert v.ALERT_CODES[8] == "jam"
