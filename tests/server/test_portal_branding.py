"""Dealer branding (the real app and database, both backends): a dealer uploads a logo and sets
colours; its customers' pages carry them, other tenants cannot fetch them; a logo is PNG or JPEG
by its bytes (SVG, HTML named .png, oversized files and bad colours are refused); its customers'
report pages carry the logo inline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from portal_fleet import Fleet, build_fleet
from portal_kit import counting, csrf_of, web_ctx
from portal_reports_kit import User, logged_in, png

from fsm_devtools.corpus import ServerKit
from fsm_server.branding import MAX_LOGO_BYTES, DealerBranding
from fsm_server.db.connect import Database
from fsm_server.db.models import Dealer
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry

LOGO = png(120, 40, (200, 30, 30))
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture
def fleet(
    db: Database, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> Fleet:
    return build_fleet(pipeline, registry, server_kit, tmp_path)


@pytest.fixture
def users(db: Database, fleet: Fleet, tmp_path: Path) -> Iterator[dict[str, User]]:
    yield from logged_in(web_ctx(tmp_path), db, fleet)


def upload(user: User, logo: bytes | None, name: str = "logo.png", **fields: str) -> object:
    csrf = csrf_of(user.client.get("/branding").text)
    files = {"logo": (name, logo, "image/png")} if logo is not None else None
    data = {"colour": "#0b6e4f", "accent": "#c2410c", "csrf": csrf, **fields}
    return user.client.post("/branding", data=data, files=files, follow_redirects=False)


def north_id() -> int:
    return int(Dealer.get(Dealer.name == "North").id)


def test_a_dealers_logo_and_colours_reach_its_customers_pages_only(users: dict[str, User]) -> None:
    north, acme, globex, south = users["north"], users["acme"], users["globex"], users["south"]
    r = upload(north, LOGO)
    assert r.status_code == 303
    dealer = north_id()
    for user in (north, acme):
        page = user.client.get("/devices").text
        assert f'src="/branding/{dealer}/logo?v=' in page and f'href="/branding/{dealer}/style.css?v=' in page
        logo = user.client.get(f"/branding/{dealer}/logo")
        assert logo.status_code == 200 and logo.content == LOGO
        assert (
            logo.headers["content-type"] == "image/png"
            and logo.headers["x-content-type-options"] == "nosniff"
        )
        css = user.client.get(f"/branding/{dealer}/style.css")
        assert (
            css.headers["content-type"].startswith("text/css") and ".top { background: #0b6e4f;" in css.text
        )
        assert "--accent: #c2410c" in css.text
    for user in (globex, south):
        assert "/branding/" not in user.client.get("/devices").text
        assert user.client.get(f"/branding/{dealer}/logo").status_code == 404
        assert user.client.get(f"/branding/{dealer}/style.css").status_code == 404
    assert users["admin"].client.get(f"/branding/{dealer}/logo").status_code == 200
    assert acme.client.get("/branding").status_code == 404  # customers do not brand
    # South's form names North: it brands South, never North
    upload(south, None, colour="#000000", dealer="North")
    assert DealerBranding.get_by_id(dealer).colour == "#0b6e4f"
    assert "branding.save" in users["admin"].client.get("/audit").text


def test_the_brand_is_read_for_pages_only(users: dict[str, User], fleet: Fleet, db: Database) -> None:
    """A JSON, CSV or zip answer draws no page: it runs no query for the brand, which the session
    lookup made before for every request of a logged-in dealer or customer user."""
    upload(users["north"], LOGO)
    device = fleet.devices["ACME"][0]
    for name in ("north", "acme"):
        client = users[name].client
        for url in ("/devices", "/no-such-page"):  # a page, and the 404 page: branded
            with counting(db) as seen:
                page = client.get(url).text
            assert f"/branding/{north_id()}/style.css" in page, (name, url)
            assert sum("dealer_branding" in q for q in seen) == 1, (name, url)
        for url in ("/devices.csv", f"/devices/{device}/counters.json"):
            with counting(db) as seen:
                r = client.get(url)
            assert r.status_code == 200 and "<html" not in r.text, (name, url)
            assert seen and not any("dealer_branding" in q for q in seen), (name, url)


def test_only_png_and_jpeg_logos_of_bounded_size_and_hex_colours(users: dict[str, User]) -> None:
    north = users["north"]
    cases = [
        (SVG, "logo.svg", "not a PNG or JPEG image (SVG is not accepted"),
        (b"<html><script>alert(1)</script></html>", "logo.png", "not a PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * (MAX_LOGO_BYTES + 10), "big.png", "more than 262144"),
        (png(5000, 2, (0, 0, 0)), "wide.png", "5000 x 2 pixels"),
    ]
    for data, name, message in cases:
        r = upload(north, data, name)
        assert r.status_code == 400 and message in r.text, (name, r.text[-1500:])
    r = upload(north, None, colour="red; background: url(//x)")
    assert r.status_code == 400 and "is not a colour like #1f4e79" in r.text
    assert DealerBranding.select().count() == 0
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 200
    assert upload(north, jpeg, "logo.jpg").status_code == 303
    r = north.client.get(f"/branding/{north_id()}/logo")
    assert r.headers["content-type"] == "image/jpeg"
    assert upload(north, None, remove_logo="1").status_code == 303
    assert north.client.get(f"/branding/{north_id()}/logo").status_code == 404


def test_a_customers_report_carries_its_dealers_logo_inline(users: dict[str, User]) -> None:
    upload(users["north"], LOGO)
    r = users["acme"].client.get("/reports/download", params={"kind": "inventory", "customer": "ACME"})
    assert r.status_code == 200 and 'class="logo" src="data:image/png;base64,' in r.text
    assert "h1 { color: #0b6e4f; }" in r.text
    r = users["globex"].client.get("/reports/download", params={"kind": "inventory", "customer": "Globex"})
    assert "data:image/png" not in r.text and "#0b6e4f" not in r.text
