"""The README's main command: the whole path on one machine, with real peers.

simulated printers (snmpsim serving demo/snmp-walks) → ``fsm-client send`` (scan, seal,
SMTP submission with STARTTLS + AUTH) → private Postfix → Dovecot → ``fsm-server ingest
--once`` (IMAPS, verify, decrypt, load) → summary table and HTML reports → the portal
(``fsm-server web --self-signed``) with a dealer and a customer login, served until Ctrl-C.

Every step runs the same command a user would type, printed before it runs. The first run
gives the fleet a history first: the client runs on each of the last 90 days with its clock
set to that day, against recordings aged to that day (``history``), and mails its daily
reports; so meters, forecasts and charts have real figures. State lives under ``var/demo``
(keys, client store, server database, reports); a second run reuses the keys, the enrolment
and the history, and sends the next report number; the portal logins stay the same.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from fsm_client.config import load_config
from fsm_client.snmp.snmpsim import Snmpsim, free_udp_port, loopback_range
from fsm_client.store import Store
from fsm_common.cli import cell

from . import demo_portal, history
from .peers.mailstack import MailStack

ROOT = Path(__file__).resolve().parent.parent
WALKS = ROOT / "demo" / "snmp-walks"
STATE = Path(os.environ.get("FSM_DEMO_STATE", ROOT / "var" / "demo")).absolute()
BIN = Path(sys.executable).parent
CLIENT_ID = "acme-hq"
CUSTOMER = "ACME Hospital"

# a pipe gets 80 columns by default, too narrow for the summary table
console = Console(width=None if sys.stdout.isatty() else 140)


class DemoError(RuntimeError):
    """A demo step failed; the message names the command and its output."""


def run(*argv: str | Path, quiet: bool = False) -> str:
    """Run one fsm command as a user would, echoing it; fail loudly with its output."""
    args = [str(a) for a in argv]
    shown = " ".join(shlex.quote(a) for a in [Path(args[0]).name, *args[1:]])
    console.print(f"[bold cyan]$[/] {shown}")
    proc = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise DemoError(f"`{shown}` exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    if not quiet and proc.stdout.strip():
        console.print(proc.stdout.rstrip(), markup=False, highlight=False)
    return proc.stdout


def printers() -> list[str]:
    return sorted(p.name for p in WALKS.iterdir() if (p / "device.snmprec").is_file())


def client_config(names: list[str], addresses: list[str], port: int, stack: MailStack) -> str:
    lines = [
        "[client]",
        f'id = "{CLIENT_ID}"',
        f'customer = "{CUSTOMER}"',
        'site = "Head office"',
        "",
        "[keys]",
        f'server_public_key = "{STATE / "server" / "keys" / "server.pub"}"',
        "",
        "[snmp]",
        f"port = {port}",
        "timeout = 2.0",
        "retries = 1",
        "",
    ]
    for name, address in zip(names, addresses, strict=True):
        # snmpsim picks the recording by community; a site would name one profile for many devices
        lines += ["[[credentials]]", f'name = "{name}"', 'version = "2c"', f'community = "{name}/device"', ""]
        lines += ["[[targets]]", f'range = "{address}"', f'credentials = ["{name}"]', ""]
    lines += [
        "[transport]",
        'kind = "smtp"',
        "",
        "[smtp]",
        'host = "127.0.0.1"',
        f"port = {stack.submission_port}",
        'security = "starttls"',
        'username = "client@fsm.test"',
        'password = "client-pass"',
        f'ca_file = "{stack.ca_file}"',
        'from = "fsm-client@acme.example"',
        'to = ["dealer@fsm.test"]',
    ]
    return "\n".join(lines) + "\n"


def server_config(stack: MailStack, portal_port: int) -> str:
    return f"""[server]
data_dir = "{STATE / "server"}"

[web]
port = {portal_port}

[[mailboxes]]
name = "dealer"
host = "127.0.0.1"
port = {stack.imaps_port}
security = "tls"
user = "dealer@fsm.test"
password = "dealer-pass"
ca_file = "{stack.ca_file}"
"""


def summary(server_cfg: Path) -> None:
    """Print devices, counters, lowest supplies and open alerts from the server's database."""
    from fsm_server import reports, wiring
    from fsm_server.context import ServerContext

    ctx = ServerContext.load(str(server_cfg), None)
    with wiring.open_db(ctx):
        inventory = reports.build("inventory", settings=ctx.config.reports)
        supplies = reports.build("supplies", settings=ctx.config.reports)
        alerts = reports.build("alerts", settings=ctx.config.reports)
    lowest = reports.lowest_supplies(supplies.rows)  # type: ignore[union-attr]
    open_alerts: dict[int, list[str]] = {}
    for a in alerts.open:  # type: ignore[union-attr]
        open_alerts.setdefault(a.device.id, []).append(a.code)
    table = Table(title=f"Devices at the dealer's server (client {CLIENT_ID})")
    for col in ("device", "serial", "IP", "total pages", "lowest supply", "open alerts"):
        table.add_column(col, justify="right" if col == "total pages" else "left")
    for row in inventory.rows:  # type: ignore[union-attr]
        d = row.device
        low = lowest.get(d.id)
        level = ""
        if low is not None:
            level = f"{low.percent:.0f} %" if low.percent is not None else low.state.replace("_", " ")
        table.add_row(
            cell(d.name or "?"),
            cell(d.serial or "-"),
            cell(d.ip),
            f"{row.total:,}" if row.total is not None else "-",
            cell(low.description or low.supply_kind, 36).append(f" {level}") if low else "-",
            ", ".join(sorted(set(open_alerts.get(d.id, [])))) or "-",
        )
    console.print(table)


def fill_history(
    sim: Snmpsim, stack: MailStack, client_cfg: Path, server_cfg: Path, addresses: dict[str, str]
) -> None:
    """Step 3 (first run only): the client on each of the last days and the server ingesting what
    it mails; then the printers as they are today."""
    events, today = history.Events(), datetime.now(UTC).date()
    config = load_config(str(client_cfg))
    printers = asyncio.run(
        history.read_walks(sim, config, STATE / "client", addresses, events=events, today=today)
    )
    with Store.in_data_dir(STATE / "client") as store:
        reported = store.last_seq() > 0
    if not reported:
        console.rule(f"3. history: the client on each of the last {events.days} days")
        console.print(
            f"[bold cyan]$[/] fsm-client run --once   [dim]# on each day at {history.RUN_AT:%H:%M} "
            "UTC, the client's clock and the printers' recordings set to that day[/]"
        )
        later = history.INGEST_AFTER.seconds // 60
        console.print(
            f"[bold cyan]$[/] fsm-server ingest --once   [dim]# {later} minutes later, "
            "the server's clock set to that day[/]"
        )
        with history.Dealer(server_cfg, stack) as dealer:
            filled = history.fill(
                sim,
                printers,
                config,
                STATE / "client",
                dealer,
                events=events,
                today=today,
                say=lambda line: console.print(line, highlight=False),
            )
        if filled.failures or filled.quarantined:
            raise DemoError(
                f"of the history, {filled.failures} report(s) could not be mailed and "
                f"{filled.quarantined} were quarantined: `fsm-client status` and "
                "`fsm-server quarantine list` say why"
            )
        console.print(
            f"{filled.runs} runs from {filled.first:%Y-%m-%d} to {filled.last:%Y-%m-%d}: "
            f"{filled.readings} readings, {filled.reports} periodic and {filled.alerts} alert "
            f"reports, {filled.sent} mailed, {filled.loaded} loaded"
        )
    history.serve(sim, printers, 0)


def say(line: str) -> None:
    console.print(line, highlight=False, soft_wrap=True)


def portal(sv: tuple[str | Path, ...], logins: list[demo_portal.Login], port: int, mail_offset: int) -> int:
    """Step 7: the portal in the foreground until Ctrl-C, once it answers the logins printed."""
    console.rule("7. the portal")
    url = f"https://127.0.0.1:{port}"
    cert = STATE / "server" / "web" / "self-signed.crt"

    def ready() -> None:
        console.rule("the portal is running")
        console.print(
            f"Portal: [bold]{url}[/]  (a SELF-SIGNED certificate, {cert}: the browser warns once; "
            f"accept it for this demo, or give the file to a client, e.g. curl --cacert)",
            highlight=False,
            soft_wrap=True,
        )
        for login in logins:
            console.print(
                f"{login.role} login: user [bold]{login.user}[/]  password [bold]{login.password}[/]",
                highlight=False,
            )
            if login.totp_secret:
                console.print(
                    f"  then a TOTP code (required for dealers): {login.totp_command()}\n"
                    f"  or add it to an authenticator app: {login.otpauth_uri()}\n"
                    "  (a code is accepted once: for another login, wait for the next one)",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            else:
                console.print(f"  sees {CUSTOMER}'s devices only, read-only", highlight=False)
        console.print(
            f"The dealer {demo_portal.DEALER} serves {CUSTOMER}. The logins are kept in "
            f"{STATE / 'portal-logins.json'}.",
            highlight=False,
        )
        console.print(
            f"[green]Portal running at {url}[/]: Ctrl-C stops it (the mail stack stays running: "
            f"scripts/mailstack stop --offset {mail_offset} stops it)",
            highlight=False,
        )

    argv = [str(a) for a in (*sv, "web", "--self-signed", "--port", str(port))]
    code = demo_portal.serve(argv, url, cert, ready, say)
    console.print("portal stopped")
    return code


def main() -> int:
    started = time.monotonic()
    names = printers()
    (STATE / "client").mkdir(parents=True, exist_ok=True)
    (STATE / "server").mkdir(parents=True, exist_ok=True)
    (STATE / "reports").mkdir(parents=True, exist_ok=True)
    client, server = BIN / "fsm-client", BIN / "fsm-server"
    mail_offset = int(os.environ.get("FSM_DEMO_MAIL_OFFSET", "0"))
    portal_port = demo_portal.portal_port(mail_offset)

    console.rule("1. real peers: Postfix + Dovecot, and snmpsim playing the printers")
    stack = MailStack(port_offset=mail_offset).start()
    console.print(f"mail stack: {stack.status().describe()}")
    addresses = loopback_range("127.0.10.2", len(names))
    port = free_udp_port()
    sim = Snmpsim(WALKS, endpoints=addresses, port=port).start()
    ccfg, scfg = STATE / "client.toml", STATE / "server.toml"
    sv = (server, "--config", scfg)
    try:
        console.print(f"snmpsim: {len(names)} printers on {addresses[0]}..{addresses[-1]} port {port}")
        ccfg.write_text(client_config(names, addresses, port, stack))
        scfg.write_text(server_config(stack, portal_port))
        cl = (client, "--config", ccfg, "--data-dir", STATE / "client")

        console.rule("2. keys, enrolment and the portal's users (once)")
        if not (STATE / "server" / "keys" / "server.key").exists():
            run(*sv, "keys", "init")
        if not (STATE / "client" / "keys" / "client.key").exists():
            run(*cl, "keys", "init")
        # `clients list` only reads: on a first run there is no database for it to read yet
        if not (STATE / "server" / "fsm.db").exists() or CLIENT_ID not in run(
            *sv, "clients", "list", "--json", quiet=True
        ):
            run(
                *sv,
                "clients",
                "add",
                CLIENT_ID,
                "--key",
                STATE / "client" / "keys" / "client.pub",
                "--customer",
                CUSTOMER,
            )

        # the portal's users now: the dealer's authenticator enrolment takes the current TOTP
        # code, which must not be the one current when the portal starts
        logins = demo_portal.logins(run, say, sv, scfg, STATE, CUSTOMER)

        fill_history(sim, stack, ccfg, scfg, dict(zip(names, addresses, strict=True)))

        console.rule("4. client: read every printer today, seal a report, mail it")
        run(*cl, "send")
        run(*cl, "outbox", "list", "--limit", "5")

        console.rule("5. server: ingest the mailbox once (IMAPS, verify, decrypt, load)")
        stack.wait_for_messages(1, user="dealer", timeout=30)
        run(*sv, "ingest", "--once")

        console.rule("6. what the dealer sees")
        summary(scfg)
        for kind in ("inventory", "supplies", "meters", "alerts", "health"):
            run(*sv, "report", kind, "--out", STATE / "reports" / f"{kind}.html", quiet=True)
        console.print(f"HTML reports: {STATE / 'reports'}/{{inventory,supplies,meters,alerts,health}}.html")
    finally:
        sim.stop()
    console.print(
        f"[green]demo done in {time.monotonic() - started:.1f} s[/] "
        f"(mail stack left running: scripts/mailstack stop --offset {stack.port_offset} stops it)"
    )
    return portal(sv, logins, portal_port, stack.port_offset)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (DemoError, demo_portal.PortalError) as exc:
        console.print(f"[red]error:[/] {exc}", markup=True, highlight=False)
        sys.exit(1)
