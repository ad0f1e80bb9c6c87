"""Reports from the portal: the CLI's inventory, meters, supplies, alerts and health reports, run
for a customer in the viewer's scope (administrators: every customer too; dealer users: all
their customers too) and a period, written as HTML, CSV or PDF to a file the page then sends.

The customer is looked up through ``Scoped.customer_named``, the dealer of an all-customers
report through ``Scoped.own_dealer``: another tenant's customer answers ``NotFound`` like one
that does not exist, and so does the dealer scope asked by a customer user. The report functions
then read that customer's (or that dealer's customers') devices only (``fsm_server.reports``),
so the scope is decided once, here.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import msgspec

from .. import reports
from ..branding import report_brand
from ..config import ReportsSection
from ..db.connect import translated
from ..errors import ReportError
from ..reports.pdf import find_browser, print_pdf
from ..scoping import Scoped

#: What the portal offers: the CLI's formats less JSON (that is for scripts), plus PDF.
FORMATS: tuple[str, ...] = ("html", "csv", "pdf")
MEDIA_TYPES = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}
ALL_CUSTOMERS = ""  # administrators: the whole database; dealer users: all their customers


class ReportAsk(msgspec.Struct, frozen=True, kw_only=True):
    """One report as asked for, checked against the viewer's scope."""

    kind: str
    customer: str | None  # None: every customer (administrators), or every one of ``dealer``
    dealer: str | None = None  # a dealer user's report over all its customers
    start: datetime | None = None
    end: datetime | None = None
    fmt: str = "html"

    def file_name(self, now: datetime) -> str:
        """A download name naming kind, customer and period (only safe characters)."""
        named = self.customer or (f"all-{self.dealer}" if self.dealer else "all")
        who = re.sub(r"[^A-Za-z0-9_.-]+", "_", named).strip("._") or "customer"
        scope = reports.scope_for(self.kind, start=self.start, end=self.end, now=now)
        return f"{self.kind}-{who[:40]}-{scope.start:%Y%m%d}-{scope.end:%Y%m%d}.{self.fmt}"


def describe(customer: str | None, dealer: str | None) -> str:
    """Whom a report covers, in words (audit log, mail subject, schedule list)."""
    return customer or (f"all customers of {dealer}" if dealer else "all customers")


def customer_choices(scoped: Scoped) -> list[str]:
    """The customers the viewer may run reports for, by name."""
    with translated("cannot list the customers"):
        return sorted(c.name for c in scoped.customers() if c.name)


def ask(
    scoped: Scoped, *, kind: str, customer: str, start: str = "", end: str = "", fmt: str = "html"
) -> ReportAsk:
    """Check a report request: ReportError for a bad kind, format or date, NotFound for a customer
    outside the scope; ``customer`` "" is every customer for administrators, all its customers
    for a dealer user, and NotFound for a customer user."""
    if kind not in reports.KINDS:
        raise ReportError(
            f"report kind {kind!r} is not one of {', '.join(reports.KINDS)}", hint="pick a kind"
        )
    if fmt not in FORMATS:
        raise ReportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}", hint="pick html, csv or pdf")
    dealer: str | None = None
    if customer == ALL_CUSTOMERS:
        name: str | None = None
        if not scoped.sees_all:
            dealer = scoped.own_dealer().name
    else:
        with translated("cannot read the customer"):
            name = scoped.customer_named(customer).name
    when = {
        "start": reports.parse_when(start) if start else None,
        "end": reports.parse_when(end, end=True) if end else None,
    }
    if when["start"] and when["end"] and when["start"] >= when["end"]:
        raise ReportError("the period's start is after its end", hint="give a 'from' before the 'to'")
    return ReportAsk(kind=kind, customer=name, dealer=dealer, fmt=fmt, **when)


def produce(request: ReportAsk, directory: Path, *, settings: ReportsSection, now: datetime) -> Path:
    """Write the report to a file in ``directory`` (HTML, CSV, or the HTML printed to PDF); pages
    of a customer carry its dealer's logo and colours, a dealer's report over all its customers
    that dealer's (``fsm_server.branding``)."""
    brand = report_brand(request.customer, request.dealer) if request.fmt != "csv" else None
    page = directory / ("report.html" if request.fmt != "csv" else "report.csv")
    with open(page, "w", encoding="utf-8", newline="") as out:
        reports.stream(
            request.kind,
            "csv" if request.fmt == "csv" else "html",
            out,
            customer=request.customer,
            start=request.start,
            end=request.end,
            now=now,
            settings=settings,
            brand=brand,
            dealer=request.dealer,
        )
    if request.fmt != "pdf":
        return page
    pdf = directory / "report.pdf"
    pdf.write_bytes(print_pdf(page, browser=find_browser(settings), timeout=settings.pdf_timeout_seconds))
    return pdf


__all__ = [
    "ALL_CUSTOMERS",
    "FORMATS",
    "MEDIA_TYPES",
    "ReportAsk",
    "ask",
    "customer_choices",
    "describe",
    "produce",
]
