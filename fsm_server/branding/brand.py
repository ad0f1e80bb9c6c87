"""Dealer branding: set it (checked), and find the brand a viewer's pages and reports carry.

A logo is PNG or JPEG, told by its first bytes (never by a file name or a declared type), at most
``MAX_LOGO_BYTES``; SVG is refused, since an SVG may hold script. It is served back only with
its checked type (and ``nosniff``). Colours are ``#rrggbb``. A dealer user brands its own
dealer; an administrator any. A customer user's pages carry the brand of its customers' dealer
(the one dealer, when its customers have exactly one); a dealer user's its own dealer's;
administrators' none.
"""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from typing import Any, cast

import msgspec
import peewee

from ..db.connect import translated
from ..db.models import Customer, Dealer
from ..errors import NotFound, TenancyError
from ..reports.html import ReportBrand
from ..scoping import Scoped, Viewer
from .models import DealerBranding

MAX_LOGO_BYTES = 256 * 1024
MAX_LOGO_PIXELS = 4096  # a PNG wider or taller than this is refused
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"


class Brand(msgspec.Struct, frozen=True, kw_only=True):
    """A dealer's brand as pages and reports use it."""

    dealer_id: int
    dealer: str
    colour: str | None = None
    accent: str | None = None
    logo_type: str | None = None
    logo_sha256: str | None = None

    @property
    def logo_url(self) -> str | None:
        """Where the portal serves the logo (its hash in the query: a new logo is a new URL)."""
        if self.logo_sha256 is None:
            return None
        return f"/branding/{self.dealer_id}/logo?v={self.logo_sha256[:16]}"

    @property
    def style_url(self) -> str:
        """The brand's stylesheet (the portal's CSP allows no inline style)."""
        version = f"{self.colour or ''}{self.accent or ''}{(self.logo_sha256 or '')[:8]}".replace("#", "")
        return f"/branding/{self.dealer_id}/style.css?v={version or '0'}"


def _ink(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (WCAG relative luminance)."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "#111111" if luminance > 0.179 else "#ffffff"


def style_css(brand: Brand) -> str:
    """The portal stylesheet of a brand: the bar's colour, the accent of links and buttons, each
    with a text colour that reads on it, and the logo's size. Colours were checked when stored
    (``#rrggbb``) and are checked again here, so nothing else reaches the CSS."""
    lines = [".brand-logo img { display: block; max-height: 2.2rem; max-width: 10rem; }"]
    accent = brand.accent if brand.accent and COLOUR.match(brand.accent) else None
    bar = brand.colour if brand.colour and COLOUR.match(brand.colour) else accent
    if accent:
        lines.append(f":root {{ --accent: {accent}; --accent-ink: {_ink(accent)}; }}")
    if bar:
        ink = _ink(bar)
        lines.append(f".top {{ background: {bar}; color: {ink}; }}")
        lines.append(f".top a, .who button.link {{ color: {ink}; }}")
        lines.append(f'.top nav a[aria-current="page"] {{ border-bottom-color: {ink}; }}')
    return "\n".join(lines) + "\n"


def logo_type(data: bytes) -> str:
    """The logo's media type from its first bytes; TenancyError for anything but PNG and JPEG."""
    if len(data) > MAX_LOGO_BYTES:
        raise TenancyError(
            f"the logo is {len(data)} bytes, more than {MAX_LOGO_BYTES}", hint="use a smaller PNG or JPEG"
        )
    if data.startswith(PNG) and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if not (0 < width <= MAX_LOGO_PIXELS and 0 < height <= MAX_LOGO_PIXELS):
            raise TenancyError(
                f"the logo is {width} x {height} pixels", hint=f"at most {MAX_LOGO_PIXELS} on each side"
            )
        return "image/png"
    if data.startswith(JPEG):
        return "image/jpeg"
    raise TenancyError(
        "the logo is not a PNG or JPEG image (SVG is not accepted: it may carry script)",
        hint="save the logo as PNG or JPEG and upload that",
    )


def _colour(value: str, what: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if not COLOUR.match(value):
        raise TenancyError(f"{what} {value[:20]!r} is not a colour like #1f4e79", hint="give #rrggbb")
    return value.lower()


def dealer_of(scoped: Scoped, viewer: Viewer, name: str | None = None) -> Dealer:
    """The dealer ``viewer`` may brand: its own (dealer users), any named one (administrators)."""
    wanted = viewer.dealer if scoped.role == "dealer" else name if scoped.role == "admin" else None
    found = Dealer.get_or_none(Dealer.name == wanted) if wanted else None
    if found is None:
        raise NotFound(f"no dealer {wanted!r}", hint="see the dealers list")
    return found


def _brand(dealer_id: int, name: str, row: DealerBranding | None) -> Brand:
    if row is None:
        return Brand(dealer_id=dealer_id, dealer=name)
    return Brand(
        dealer_id=dealer_id,
        dealer=name,
        colour=row.colour,
        accent=row.accent,
        logo_type=row.logo_type,
        logo_sha256=row.logo_sha256,
    )


#: the columns a page needs (never the logo itself)
_FIELDS = (
    DealerBranding.dealer,
    DealerBranding.colour,
    DealerBranding.accent,
    DealerBranding.logo_type,
    DealerBranding.logo_sha256,
)


def branding(dealer: Dealer) -> Brand:
    with translated("cannot read the dealer's branding"):
        row = DealerBranding.select(*_FIELDS).where(DealerBranding.dealer == dealer.id).get_or_none()
    return _brand(dealer.id, dealer.name, row)


def set_branding(
    dealer: Dealer,
    *,
    colour: str,
    accent: str,
    logo: bytes | None,
    remove_logo: bool = False,
    by: str,
    now: datetime,
) -> Brand:
    """Store a dealer's colours, and its logo when one is given (``remove_logo``: none any more)."""
    values: dict[str, object] = {
        "colour": _colour(colour, "the bar colour"),
        "accent": _colour(accent, "the accent colour"),
        "updated_by": by,
        "updated_at": now,
    }
    if logo:
        values.update(logo=logo, logo_type=logo_type(logo), logo_sha256=hashlib.sha256(logo).hexdigest())
    elif remove_logo:
        values.update(logo=None, logo_type=None, logo_sha256=None)
    with translated("cannot save the dealer's branding"):
        DealerBranding.insert(dealer=dealer.id, **values).on_conflict(
            conflict_target=[DealerBranding.dealer], update=values
        ).execute()
    return branding(dealer)


def _brand_where(condition: object) -> Brand | None:
    """The brand of the one dealer matching ``condition`` (one query, without the logo)."""
    q = (
        Dealer.select(Dealer.id, Dealer.name, *_FIELDS[1:])
        .join(DealerBranding, peewee.JOIN.LEFT_OUTER, on=(DealerBranding.dealer == Dealer.id))
        .where(condition)
        .limit(2)
        .dicts()
    )
    rows = cast("list[dict[str, Any]]", list(q))
    if len(rows) != 1:
        return None
    r = rows[0]
    if not (r["colour"] or r["accent"] or r["logo_sha256"]):
        return None  # a dealer without branding: the portal's own look
    return Brand(
        dealer_id=r["id"],
        dealer=r["name"],
        colour=r["colour"],
        accent=r["accent"],
        logo_type=r["logo_type"],
        logo_sha256=r["logo_sha256"],
    )


def brand_for(viewer: Viewer) -> Brand | None:
    """The brand of ``viewer``'s pages (see the module docstring); one query at most. The
    customers are found by name as ``Scoped.of`` finds them."""
    with translated("cannot read the dealer's branding"):
        if viewer.role == "dealer" and viewer.dealer:
            return _brand_where(Dealer.name == viewer.dealer)
        if viewer.role == "customer" and viewer.customers:
            dealers = Customer.select(Customer.dealer).where(Customer.name.in_(list(viewer.customers)))
            return _brand_where(Dealer.id.in_(dealers))
    return None


def brand_of_customer(customer: str | None) -> Brand | None:
    """The brand of the dealer serving ``customer`` (its reports carry it); None: no dealer."""
    if not customer:
        return None
    with translated("cannot read the dealer's branding"):
        dealers = Customer.select(Customer.dealer).where(Customer.name == customer)
        return _brand_where(Dealer.id.in_(dealers))


def logo_of(scoped: Scoped, viewer: Viewer, dealer_id: int) -> tuple[bytes, str]:
    """(bytes, media type) of a dealer's logo, for a viewer whose brand it is (administrators:
    any); NotFound otherwise."""
    own = brand_for(viewer)
    if scoped.role != "admin" and (own is None or own.dealer_id != dealer_id):
        raise NotFound(f"no logo {dealer_id}", hint="")
    with translated("cannot read the logo"):
        row = DealerBranding.get_or_none(DealerBranding.dealer == dealer_id)
    if row is None or row.logo is None or row.logo_type not in ("image/png", "image/jpeg"):
        raise NotFound(f"no logo {dealer_id}", hint="")
    return bytes(row.logo), str(row.logo_type)


def report_brand(customer: str | None, dealer: str | None = None) -> ReportBrand | None:
    """The look of ``customer``'s report pages and PDFs: its dealer's logo (inline) and colours;
    without a customer, ``dealer``'s (its report over all its customers)."""
    if customer is None and dealer:
        with translated("cannot read the dealer's branding"):
            brand = _brand_where(Dealer.name == dealer)
    else:
        brand = brand_of_customer(customer)
    if brand is None or not (brand.colour or brand.accent or brand.logo_sha256):
        return None
    return ReportBrand(name=brand.dealer, colour=brand.colour, accent=brand.accent, logo=logo_data_uri(brand))


def logo_data_uri(brand: Brand | None) -> str | None:
    """The logo inline (``data:`` URI), for a report page that must load nothing."""
    if brand is None or brand.logo_sha256 is None:
        return None
    with translated("cannot read the logo"):
        row = DealerBranding.get_or_none(DealerBranding.dealer == brand.dealer_id)
    if row is None or row.logo is None:
        return None
    return f"data:{row.logo_type};base64,{base64.b64encode(bytes(row.logo)).decode()}"


__all__ = [
    "MAX_LOGO_BYTES",
    "Brand",
    "brand_for",
    "brand_of_customer",
    "branding",
    "dealer_of",
    "logo_data_uri",
    "logo_of",
    "logo_type",
    "report_brand",
    "set_branding",
    "style_css",
]
