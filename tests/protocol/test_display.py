"""Text from printers and clients as shown on pages and consoles: defused, bounded, named once."""

from __future__ import annotations

import pytest

from fsm_devtools.corpus import BIDI_TEXTS, CONTROL_TEXTS
from fsm_protocol.display import MAX_SHOWN, device_name, display_text, shorten

HIDDEN = {
    chr(c)
    for c in [
        *range(0x00, 0x20),
        0x7F,
        *range(0x80, 0xA0),
        0x061C,
        0x200E,
        0x200F,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
}


@pytest.mark.parametrize("text", [*BIDI_TEXTS, *CONTROL_TEXTS])
def test_bidi_and_control_characters_are_shown_as_their_code_points(text: str) -> None:
    shown = display_text(text)
    assert not HIDDEN & set(shown), repr(shown)
    assert "<U+" in shown


def test_a_right_to_left_override_no_longer_turns_gnp_exe_into_exe_png() -> None:
    assert display_text("invoice\u202egnp.exe") == "invoice<U+202E>gnp.exe"
    assert display_text("nul\x00byte") == "nul<U+0000>byte"


def test_line_breaks_and_tabs_become_one_space_and_ordinary_text_is_kept() -> None:
    assert display_text("2nd floor\r\n\tprint room") == "2nd floor print room"
    assert display_text("Büro 3. OG – Drucker ☃ 東京") == "Büro 3. OG – Drucker ☃ 東京"
    assert display_text(None) == ""


def test_long_text_is_shortened_with_an_ellipsis_and_never_unbounded() -> None:
    assert shorten("x" * 100, 10) == "x" * 9 + "…"
    assert shorten("short", 10) == "short"
    assert len(display_text("x" * 100_000)) == MAX_SHOWN


@pytest.mark.parametrize(
    "maker, model, name",
    [
        ("HP", "HP Color LaserJet M452nw", "HP Color LaserJet M452nw"),
        ("Konica Minolta", "KONICA MINOLTA bizhub C250i", "KONICA MINOLTA bizhub C250i"),
        ("Konica Minolta", "KONICA-MINOLTA bizhub 25e", "KONICA-MINOLTA bizhub 25e"),
        ("HP", "Hewlett-Packard LaserJet 4250", "Hewlett-Packard LaserJet 4250"),
        ("Kyocera", "Kyocera Mita FS-1028MFP", "Kyocera Mita FS-1028MFP"),
        ("Toshiba TEC", "TOSHIBA e-STUDIO2505AC", "TOSHIBA e-STUDIO2505AC"),
        ("Ricoh", "MP C3004", "Ricoh MP C3004"),
        ("OKI", "OKIPAGE 14i", "OKI OKIPAGE 14i"),  # a model line that starts with the maker's letters
        ("HP", "", "HP"),
        (None, "bizhub C250i", "bizhub C250i"),
        (None, None, ""),
    ],
)
def test_the_display_name_does_not_repeat_a_maker_the_model_starts_with(
    maker: str | None, model: str | None, name: str
) -> None:
    assert device_name(maker, model) == name
