"""Part numbers in a supply's description, where the device reports one.

Descriptions are printer-set text (hostile): only the first ``SCAN_CHARS`` characters are read,
and only tokens of a few shapes vendors use are taken, so that a colour word, a model name or a
page count is never taken for a part number:

>>> part_number("TK-3170")
'TK-3170'
>>> part_number("Black Cartridge HP CF287A")
'CF287A'
>>> part_number("Toner Cartridge HP LaserJet (CE285A)")
'CE285A'
>>> part_number("Black Toner") is None
True
"""

from __future__ import annotations

import re

#: How much of a description is looked at.
SCAN_CHARS = 200
#: The longest part number taken.
MAX_LENGTH = 24

# A token in parentheses at the end: "(CE285A)", "(106R03621)". Letters and digits, two digits at least.
_PARENTHESISED = re.compile(r"\(([A-Z0-9][A-Z0-9-]{3,22}[A-Z0-9])\)\s*$")
# Prefix-dash-number: Kyocera TK-3170, Brother TN-2420 / DR-2400, Ricoh-style "MK-3150".
_DASHED = re.compile(r"(?<![A-Za-z0-9-])([A-Z]{1,4}-\d{3,6}[A-Z]{0,3})(?![A-Za-z0-9-])")
# HP: CF287A, CE285A, Q2612A, W2030X, CB435A.
_HP = re.compile(r"(?<![A-Za-z0-9-])((?:C[BCEFZ]|Q|W)\d{3,5}[A-Z]{1,2})(?![A-Za-z0-9-])")


def _plausible(token: str) -> bool:
    digits = sum(c.isdigit() for c in token)
    letters = sum(c.isalpha() for c in token)
    return digits >= 2 and letters >= 1 and len(token) <= MAX_LENGTH


def part_number(description: str) -> str | None:
    """The part number ``description`` names, or None when it names none we recognise."""
    text = description[:SCAN_CHARS]
    m = _PARENTHESISED.search(text)
    if m and _plausible(m.group(1)):
        return m.group(1)
    for pattern in (_DASHED, _HP):
        m = pattern.search(text)
        if m and _plausible(m.group(1)):
            return m.group(1)
    return None


__all__ = ["MAX_LENGTH", "SCAN_CHARS", "part_number"]
