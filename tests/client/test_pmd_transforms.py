"""Every transform in the registry, run on its own documented example, plus edge cases."""

from __future__ import annotations

import pytest

from fsm_client.pmd.authoring import transforms as t


@pytest.mark.parametrize("name", sorted(t.REGISTRY))
def test_every_transform_does_what_its_example_says(name: str) -> None:
    spec = t.REGISTRY[name]
    arg, value, want = spec.example
    entry = name if spec.arg == "none" else {name: arg}
    assert t.build([entry])(value) == want


@pytest.mark.parametrize("name", sorted(t.REGISTRY))
def test_every_transform_passes_no_value_through(name: str) -> None:
    spec = t.REGISTRY[name]
    entry = name if spec.arg == "none" else {name: spec.example[0]}
    assert t.build([entry])(None) is None


@pytest.mark.parametrize(
    "entry, message",
    [
        ("nope", "unknown transform 'nope'"),
        ({"regex": "(a)(b)"}, "2 groups"),
        ({"regex": "("}, "missing"),
        ({"scale": "x"}, "scale wants a number"),
        ({"text": 1}, "takes no argument"),
        ("regex", "needs an argument"),
        ({"map": {}}, "non-empty table"),
        ({"a": 1, "b": 2}, "one-key table"),
        ({"skip_bytes": -1}, "non-negative"),
    ],
)
def test_bad_arguments_are_refused_with_the_reason(entry: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        t.build([entry])


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "0",
        "000",
        "11111",
        "XXXXXXXX",
        "xxxxxxxxxxxx",
        "unknown",
        "N/A",
        "none",
        "Serial Number",
        "??????",
        "-",
        "* * *",
        b"\x00\x00\x00",
    ],
)
def test_placeholder_serials_are_dropped(raw: str | bytes) -> None:
    assert t.normalize_serial(raw) is None


def test_real_serials_are_kept_trimmed() -> None:
    assert t.normalize_serial(b" VNCRC48198\x00 ") == "VNCRC48198"
    assert t.normalize_serial("W492KB03439;") == "W492KB03439"


def test_a_serial_sent_as_hex_pairs_is_decoded() -> None:
    assert t.normalize_serial("42 39 4A 31 35 34 33 30 36") == "B9J154306"
    assert t.normalize_serial(b"42 39 4A 31 35 34 33 30 36 00") == "B9J154306"
    assert t.normalize_serial("ABCD1234") == "ABCD1234"


@pytest.mark.parametrize("raw", ["0000000000", "000000", "123456789", "X1234567", "AAAAAAAAAA"])
def test_long_serials_that_only_look_odd_are_kept(raw: str) -> None:
    # an anonymised or factory-reset serial is still what the device and other readers show
    assert t.normalize_serial(raw) == raw


@pytest.mark.parametrize(
    "raw, want",
    [
        (b"\x00\x1b\xa9\x0b\xa7\x52", "00:1b:a9:0b:a7:52"),
        ("00-1B-A9-0B-A7-52", "00:1b:a9:0b:a7:52"),
        ("001ba90ba752", "00:1b:a9:0b:a7:52"),
        ("0x001ba90ba752", "00:1b:a9:0b:a7:52"),
        (b"\x00" * 6, None),
        (b"\xff" * 6, None),
        (b"\x00\x1b", None),
    ],
)
def test_mac_formatting(raw: str | bytes, want: str | None) -> None:
    assert t.format_mac(raw) == want


def test_text_decodes_utf8_then_utf16_bom_then_latin1() -> None:
    assert t.to_text("Überlauf".encode()) == "Überlauf"
    assert t.to_text("\ufeffToner".encode("utf-16-le")) == "Toner"
    assert t.to_text(b"Gr\xfcn") == "Grün"


@pytest.mark.parametrize(
    "raw, want",
    [
        ("Black Toner".encode("utf-16-be"), "Black Toner"),  # UTF-16 without a BOM
        ("Cyan Toner".encode("utf-16-le"), "Cyan Toner"),
        ("Tóner negro".encode("utf-16-le") + b"\x00\x00", "Tóner negro"),
        ("トナー(ブラック)".encode("shift_jis"), "トナー(ブラック)"),  # Japanese models
        ("黒トナー".encode(), "黒トナー"),
        ("Cartouche d'encre noire é".encode("latin-1"), "Cartouche d'encre noire é"),
        ("Toner “Black” ™".encode("cp1252"), "Toner “Black” ™"),  # Windows-1252
        (b"Black Toner\x00\x00\xde\xad\xbe\xef", "Black Toner"),  # C string in a fixed buffer
        (b"\x00Magenta\x00", "Magenta"),
        (b"  Yellow  ", "Yellow"),
    ],
)
def test_text_decodes_what_supply_descriptions_come_as(raw: bytes, want: str) -> None:
    assert t.to_text(raw) == want


@pytest.mark.parametrize(
    "raw, want",
    [
        ("42 6C 61 63 6B 20 54 6F 6E 65 72", "Black Toner"),
        ("42:6C:61:63:6B", "Black"),
        ("426C61636B20546F6E6572", "426C61636B20546F6E6572"),  # unseparated: could be a serial
        ("Black Toner", "Black Toner"),
        ("CAFE", "CAFE"),  # too short to be hex text
        ("DEADBEEF", "DEADBEEF"),  # hex, but not text once decoded
        ("12 34 56 78", "12 34 56 78"),
    ],
)
def test_hex_text_decodes_only_what_reads_as_text(raw: str, want: str) -> None:
    assert t.build(["hex_text"])(raw) == want


def test_transforms_chain_and_stop_at_the_first_missing_value() -> None:
    step = t.build(["text", {"regex": "MDL:([^;]+)"}, {"prefix": "HP "}])
    assert step(b"MFG:HP;MDL:LaserJet 400;") == "HP LaserJet 400"
    assert step(b"MFG:HP;") is None


def test_sum_needs_every_part() -> None:
    assert t.build(["sum"])([1, None, 3]) is None
    assert t.build(["sum"])([1, b"2", 3]) == 6
