"""Reports as PDF: the self-contained HTML page printed by headless Chromium (``--print-to-pdf``).

The page loads nothing from anywhere (``fsm_server.reports.html``), so the browser runs cut off
from the network: every host name resolves to nothing, background services are off, scripts are
disabled (a report page has none; defence in depth for the printer-reported text in it), and a
fresh profile directory is made and removed for each page. The print CSS of the report templates
gives A4 landscape pages whose rows and charts do not split.

    pdf_bytes = print_pdf(html_file, browser=find_browser(settings))
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..config import ReportsSection
from ..errors import ReportError

#: Browsers looked for on PATH when ``[reports] pdf_browser`` is empty, in order.
BROWSERS = ("chromium", "chromium-browser", "google-chrome")

_FLAGS = (
    "--headless",
    "--disable-gpu",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    # no lookup ever leaves the machine: the page is a local file with nothing to fetch
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--no-pdf-header-footer",
)


def find_browser(settings: ReportsSection | None = None) -> str:
    """The Chromium binary that prints PDFs: ``[reports] pdf_browser``, else the first of
    ``BROWSERS`` on PATH; ReportError naming what to install when there is none."""
    configured = settings.pdf_browser if settings is not None else ""
    if configured:
        found = shutil.which(configured)
        if found is None:
            raise ReportError(
                f"[reports] pdf_browser {configured!r} is not an executable file",
                hint="install Debian's `chromium` package, or set pdf_browser to its path",
            )
        return found
    for name in BROWSERS:
        found = shutil.which(name)
        if found is not None:
            return found
    raise ReportError(
        "PDF reports need Chromium, and none of chromium, chromium-browser, google-chrome is on PATH",
        hint="install it (Debian: `apt-get install chromium`) or set [reports] pdf_browser to its path",
    )


def print_pdf(html_file: Path, *, browser: str, timeout: float = 120.0) -> bytes:
    """The PDF of the local HTML page ``html_file`` as ``browser`` (Chromium) prints it."""
    with tempfile.TemporaryDirectory(prefix="fsm-pdf-") as work:
        out = Path(work) / "report.pdf"
        args = [
            browser,
            *_FLAGS,
            f"--user-data-dir={Path(work) / 'profile'}",
            f"--print-to-pdf={out}",
            html_file.resolve().as_uri(),
        ]
        if os.geteuid() == 0:  # Chromium refuses to start as root with its sandbox on
            args.insert(1, "--no-sandbox")
        try:
            done = subprocess.run(
                args,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=work,
                env={**os.environ, "HOME": work},
            )
        except subprocess.TimeoutExpired:
            raise ReportError(
                f"Chromium took longer than {timeout:g} s to print the report",
                hint="raise [reports] pdf_timeout_seconds, or ask for a shorter period or one customer",
            ) from None
        except OSError as exc:
            raise ReportError(
                f"cannot run {browser!r}: {exc.strerror or exc}",
                hint="check [reports] pdf_browser (Debian: `apt-get install chromium`)",
            ) from exc
        if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
            last = " / ".join(done.stderr.strip().splitlines()[-3:])
            raise ReportError(
                f"Chromium did not print the report (exit {done.returncode}): {last or 'no output'}",
                hint="run the same report as HTML to check it; see the server log for Chromium's messages",
            )
        data = out.read_bytes()
    if not data.startswith(b"%PDF-"):
        raise ReportError("Chromium wrote something that is not a PDF", hint="check [reports] pdf_browser")
    return data


__all__ = ["BROWSERS", "find_browser", "print_pdf"]
