"""Dealer branding: logo and colours per dealer on its customers' pages and report PDFs
(docs/portal.md, "Dealer branding")."""

from .brand import (
    MAX_LOGO_BYTES,
    Brand,
    brand_for,
    brand_of_customer,
    branding,
    dealer_of,
    logo_data_uri,
    logo_of,
    logo_type,
    report_brand,
    set_branding,
    style_css,
)
from .models import DealerBranding

__all__ = [
    "MAX_LOGO_BYTES",
    "Brand",
    "DealerBranding",
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
