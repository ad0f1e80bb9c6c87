"""Helpers of the portal's reports, schedules, rules and branding tests: the fleet of
``portal_fleet`` with one logged-in TestClient per role, and a PDF page turned into pixels."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from portal_fleet import DEALERS, Fleet
from portal_kit import Person, enrol, login
from starlette.testclient import TestClient

from fsm_server.context import ServerContext
from fsm_server.db.connect import Database
from fsm_server.web import create_app

PDFTOPPM = shutil.which("pdftoppm") or "/usr/bin/pdftoppm"
EVERYONE = frozenset(c for cs in DEALERS.values() for c in cs)
#: role, scope, the customers it must see
PLAN: dict[str, tuple[str, dict[str, object], frozenset[str]]] = {
    "admin": ("admin", {}, EVERYONE),
    "north": ("dealer", {"dealer": "North"}, frozenset(DEALERS["North"])),
    "south": ("dealer", {"dealer": "South"}, frozenset(DEALERS["South"])),
    "acme": ("customer", {"customers": ("ACME",)}, frozenset({"ACME"})),
    "globex": ("customer", {"customers": ("Globex",)}, frozenset({"Globex"})),
}


@dataclass
class User:
    person: Person
    role: str
    sees: frozenset[str]
    client: TestClient


def logged_in(ctx: ServerContext, db: Database, fleet: Fleet) -> Iterator[dict[str, User]]:
    """One logged-in TestClient per role of ``PLAN`` (a generator for a fixture)."""
    out = {}
    with ExitStack() as stack:
        for name, (role, scope, sees) in PLAN.items():
            person = enrol(f"{name}-user", role, **scope)  # type: ignore[arg-type]
            client = stack.enter_context(
                TestClient(
                    create_app(ctx, db=db, base_url="https://testserver"), base_url="https://testserver"
                )
            )
            login(client, person)
            out[name] = User(person, role, sees, client)
        yield out


def pdf_page(pdf: Path, png_stem: Path, page: int = 1) -> tuple[int, int, float]:
    """Render ``page`` of ``pdf`` to ``png_stem``.png (to look at) and measure it: (width, height,
    the share of pixels darker than light grey), read from a greyscale rendering (PGM)."""
    subprocess.run(
        [PDFTOPPM, "-png", "-r", "80", "-f", str(page), "-l", str(page), "-singlefile", pdf, png_stem],
        check=True,
        timeout=60,
    )
    gray = png_stem.parent / (png_stem.name + "-gray")
    subprocess.run(
        [PDFTOPPM, "-gray", "-r", "40", "-f", str(page), "-l", str(page), "-singlefile", pdf, gray],
        check=True,
        timeout=60,
    )
    data = gray.parent.joinpath(gray.name + ".pgm").read_bytes()
    # binary PGM: "P5\n<w> <h>\n<max>\n" then one byte per pixel
    head = data.split(b"\n", 3)
    assert head[0] == b"P5", head[0]
    width, height = (int(x) for x in head[1].split())
    pixels = head[3]
    dark = sum(1 for b in pixels if b < 200)
    return width, height, dark / max(1, len(pixels))


def png(
    width: int, height: int, rgb: tuple[int, int, int], stripe: tuple[int, int, int] = (255, 255, 255)
) -> bytes:
    """A real PNG (no image library): ``rgb`` with a ``stripe`` across its middle third."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(
        b"\x00" + bytes(stripe if height // 3 <= y < 2 * height // 3 else rgb) * width for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
