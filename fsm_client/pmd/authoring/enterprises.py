"""Who makes a device, by the IANA private enterprise number its sysObjectID is under.

A sysObjectID is ``1.3.6.1.4.1.<enterprise>...``: the agent's maker registered that number
with IANA and roots its private MIB there. The base PMD names a device by this table when
its sysDescr does not begin with a maker's name (label printers often begin with their
model number: ``ZT410``, ``PM43``). Only printer makers: the numbers the shipped PMDs match
(each PMD file names the MIB rooted there), and Intermec's, whose label printers keep
their private MIB under 1963. Print-server makers (Extended Systems, 683) are left out:
their number says nothing of the printer behind the server.

>>> enterprise_of("1.3.6.1.4.1.2435.2.3.9.1"), maker_of("1.3.6.1.4.1.2435.2.3.9.1")
(2435, 'Brother')
"""

from __future__ import annotations

ENTERPRISES_PREFIX = (1, 3, 6, 1, 4, 1)

#: enterprise number -> the maker's name as its badges show it
MAKERS: dict[int, str] = {
    11: "HP",
    236: "Samsung",
    253: "Xerox",
    297: "Fuji Xerox",
    367: "Ricoh",
    641: "Lexmark",
    674: "Dell",
    1129: "Toshiba",
    1248: "Epson",
    1347: "Kyocera",
    1602: "Canon",
    1963: "Honeywell (Intermec)",  # Intermec's printers, sold as Honeywell since 2013
    2001: "OKI",
    2385: "Sharp",
    2435: "Brother",
    10642: "Zebra",
    18334: "Konica Minolta",
    40093: "Pantum",
}


def enterprise_of(sys_object_id: str | None) -> int | None:
    """The enterprise number of a sysObjectID under ``1.3.6.1.4.1``, else None."""
    if not sys_object_id:
        return None
    try:
        arcs = tuple(int(a) for a in sys_object_id.strip(".").split("."))
    except ValueError:
        return None
    if len(arcs) <= len(ENTERPRISES_PREFIX) or arcs[: len(ENTERPRISES_PREFIX)] != ENTERPRISES_PREFIX:
        return None
    return arcs[len(ENTERPRISES_PREFIX)]


def maker_of(sys_object_id: str | None) -> str | None:
    """The maker registered for the sysObjectID's enterprise number (see ``MAKERS``), or None."""
    n = enterprise_of(sys_object_id)
    return MAKERS.get(n) if n is not None else None


__all__ = ["ENTERPRISES_PREFIX", "MAKERS", "enterprise_of", "maker_of"]
