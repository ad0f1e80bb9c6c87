"""Every transform in the registry, run on its own documented example, plus edge cases."""

from __future__ import annotations

import pytest

from fsm_client.pmd import transforms as t


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
        "0000000000",
        "XXXXXXXX",
        "unknown",
        "N/A",
        "none",
        "123456789",
        "Serial Number",
        "??????",
        "-",
        b"\x00\x00\x00",
    ],
)
def test_placeholder_serials_are_dropped(raw: str | bytes) -> None:
    assert t.normalize_serial(raw) is None


def test_real_serials_are_kept_trimmed() -> None:
    assert t.normalize_serial(b" VNCRC48198\x00 ") == "VNCRC48198"
    assert t.normalize_serial("W492KB03439;") == "W492KB03439"


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


def test_transforms_chain_and_stop_at_the_first_missing_value() -> None:
    step = t.build(["text", {"regex": "MDL:([^;]+)"}, {"prefix": "HP "}])
    assert step(b"MFG:HP;MDL:LaserJet 400;") == "HP LaserJet 400"
    assert step(b"MFG:HP;") is None


def test_sum_needs_every_part() -> None:
    assert t.build(["sum"])([1, None, 3]) is None
    assert t.build(["sum"])([1, b"2", 3]) == 6
