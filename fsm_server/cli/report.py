"""`fsm-server report KIND`: inventory, meters, supplies, alerts or health as HTML, CSV or JSON."""

from __future__ import annotations

import contextlib
import gc
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import click

from fsm_common.cli import pass_obj, writing_output
from fsm_protocol.files import atomic_file

from .. import reports, wiring
from ..context import ServerContext
from ..customers import get_dealer
from ..errors import ReportError


@contextlib.contextmanager
def atomic_text(path: Path) -> Iterator[TextIO]:
    """A text file that becomes ``path`` when the block ends without an error (a temporary file in
    the same directory and a rename), so a failed report never leaves half a file."""
    with writing_output(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path, 0o600) as raw:  # readable by its owner only, as before
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            yield text
            text.flush()
            text.detach()  # the binary file is closed, synced and renamed by atomic_file


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename."""
    with atomic_text(path) as f:
        f.write(text)


@click.command("report")
@click.argument("kind", type=click.Choice(reports.KINDS))
@click.option("--customer", help="Only this customer's devices.")
@click.option("--dealer", help="The devices of every customer of this dealer (not with --customer).")
@click.option("--from", "start", metavar="DATE", help="Period start: YYYY-MM-DD (UTC) or ISO date-time.")
@click.option(
    "--to",
    "end",
    metavar="DATE",
    help="Period end, inclusive for a date (--to 2026-10-31 ends at Nov 1 00:00 UTC).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(reports.FORMATS),
    default=None,
    help="Output format (default: from --out's extension, else html).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of standard output."
)
@pass_obj
def report_command(
    ctx: ServerContext,
    kind: str,
    customer: str | None,
    dealer: str | None,
    start: str | None,
    end: str | None,
    fmt: str | None,
    out: Path | None,
) -> None:
    """Build a report. Meters default to the last complete month, the others to the last 30 days.

    \b
    Examples:
      fsm-server report meters --from 2026-10-01 --to 2026-10-31 --format csv --out oct.csv
      fsm-server report supplies --customer ACME --out supplies.html
      fsm-server report inventory --dealer "Northside Office Supplies" --format csv
    """
    if customer is not None and dealer is not None:
        raise ReportError(
            "give --customer or --dealer, not both",
            hint="--dealer covers every customer of that dealer; --customer one customer",
        )
    if fmt is None:
        suffix = out.suffix.lower().lstrip(".") if out else ""
        fmt = {"htm": "html"}.get(suffix, suffix) if suffix in (*reports.FORMATS, "htm") else "html"
    first = reports.parse_when(start) if start else None
    last = reports.parse_when(end, end=True) if end else None
    with wiring.open_db(ctx, only_reads=True):
        if dealer is not None:
            get_dealer(dealer)  # a misspelt dealer is an error, not an empty report
        # The report is the last thing this process does: what exists now (modules, config, the
        # connection) lives until it exits. Frozen, the collector stops walking it again at each
        # full collection the report's rows set off (20-30 ms each: most of a small report's time).
        gc.freeze()
        if out is None:
            reports.stream(
                kind,
                fmt,
                sys.stdout,
                customer=customer,
                dealer=dealer,
                settings=ctx.config.reports,
                start=first,
                end=last,
            )
            return
        with atomic_text(out) as f:
            reports.stream(
                kind,
                fmt,
                f,
                customer=customer,
                dealer=dealer,
                settings=ctx.config.reports,
                start=first,
                end=last,
            )
    click.echo(f"{kind} report written to {out}", err=True)


__all__ = ["atomic_text", "report_command", "write_atomically"]
