"""Text from printers and clients as people see it: defused, bounded, and devices named once.

Anything a printer or a client reports is hostile (anyone on a customer's network can set a
printer's model or location). Before such text is shown, on a page or in a terminal:

* bidi controls (a right-to-left override shows ``gnp.exe`` as ``exe.png``), C0 and C1
  controls (NUL, the ESC of a terminal escape sequence) and DEL are shown as their code
  point, ``<U+202E>``, so a reader sees that they were there and nothing acts on them;
* tabs and line breaks become one space (a table cell is one line);
* text is cut at ``MAX_SHOWN`` characters, and table cells ``shorten`` it further.

>>> display_text("invoice\\u202egnp.exe")
'invoice<U+202E>gnp.exe'
>>> device_name("HP", "HP Color LaserJet M452nw")
'HP Color LaserJet M452nw'
>>> device_name("Ricoh", "MP C3004")
'Ricoh MP C3004'
"""

from __future__ import annotations

import re

#: No shown text is longer (a page or terminal gets at most this much of a 100 KB location).
MAX_SHOWN = 1000
#: What a table cell shows of a text at most; the full text is in JSON/CSV output.
CELL_CHARS = 48
ELLIPSIS = "…"

_SPACE = re.compile(r"[\t\n\r\v\f\u2028\u2029]+")
# C0 and C1 controls, DEL, and the bidi controls: ALM, LRM, RLM, the embeddings and overrides
# (U+202A..U+202E) and the isolates (U+2066..U+2069).
_HIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

#: Names that mean the same maker, fsm's own (a PMD's ``manufacturer``) first: what devices
#: and data sheets call it besides.
MAKER_NAMES: tuple[tuple[str, ...], ...] = (
    ("HP", "Hewlett-Packard", "Hewlett Packard Company"),
    ("Konica Minolta", "Konica Minolta Business Technologies", "Konica", "Minolta"),
    ("Kyocera", "Kyocera Mita", "Kyocera Document Solutions"),
    ("Toshiba TEC", "Toshiba"),
    ("Fujifilm", "Fujifilm Business Innovation"),
    ("OKI", "Oki Data", "OKIDATA"),
    ("Triumph-Adler", "TA Triumph-Adler", "TA"),
)

_WORD_SEP = re.compile(r"[\s_\-/]+")


def display_text(value: object, limit: int = MAX_SHOWN) -> str:
    """``value`` as text safe to show: controls visible as ``<U+XXXX>``, one line, at most ``limit``."""
    if value is None:
        return ""
    text = _SPACE.sub(" ", str(value)[: limit * 2])  # enough to fill ``limit`` after replacing
    text = _HIDDEN.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)
    return shorten(text, limit)


def shorten(text: str, limit: int = CELL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, the last one an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS


def _words(name: str) -> list[str]:
    return [w for w in _WORD_SEP.split(name.casefold()) if w]


def maker_names(maker: str) -> tuple[str, ...]:
    """``maker`` and every name that means the same maker (``MAKER_NAMES``)."""
    key = _words(maker)
    return (maker, *(n for group in MAKER_NAMES if any(_words(g) == key for g in group) for n in group))


def _starts_with_maker(model: str, maker: str) -> bool:
    words = _words(model)
    for name in maker_names(maker):
        want = _words(name)
        if want and words[: len(want)] == want:
            return True
        # "KonicaMinolta bizhub": the maker's words run together
        if want and len(want) > 1 and words and words[0] == "".join(want):
            return True
    return False


def device_name(manufacturer: str | None, model: str | None) -> str:
    """How a device is named: its model, after its maker unless the model already starts with it
    (case-insensitively, or with a known alias: "HP" and "Hewlett-Packard LaserJet 4250")."""
    maker, mdl = (manufacturer or "").strip(), (model or "").strip()
    if not maker or not mdl:
        return maker or mdl
    return mdl if _starts_with_maker(mdl, maker) else f"{maker} {mdl}"


__all__ = [
    "CELL_CHARS",
    "ELLIPSIS",
    "MAKER_NAMES",
    "MAX_SHOWN",
    "device_name",
    "display_text",
    "maker_names",
    "shorten",
]
