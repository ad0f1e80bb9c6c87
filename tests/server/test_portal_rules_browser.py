"""A notification rule made in the portal, in a real browser (Playwright driving Debian's chromium
over HTTPS), mails for real: a dealer adds a jam rule for ACME, "Send a test" puts a test mail in
alerts@fsm.test through Postfix, then an alert report mailed to the dealer's mailbox is ingested
by the IMAP daemon and the rule's "opened" mail arrives, from the portal's rule and not from any
config rule. Screenshots of the rules, rule, reports and branding pages (North branded) at 1280
and 360 px are kept in ARTIFACTS, and no page is wider than the window."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from browser_kit import ARGS, CHROMIUM, WIDTHS, need_chromium, serving
from portal_kit import Person, enrol
from portal_reports_kit import png
from reports_fleet import Feeder, mail_alert_report, reading

from fsm_common import configfile
from fsm_common.configfile import Secret
from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_devtools.peers.mailstack import MailStack
from fsm_server.branding import set_branding
from fsm_server.config import MailboxSection, ServerConfig
from fsm_server.context import ServerContext
from fsm_server.customers import add_customer, add_dealer
from fsm_server.daemon import IngestDaemon
from fsm_server.db.connect import Database
from fsm_server.db.models import Dealer
from fsm_server.events import EventService, run_beside
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.rulebook import PortalRule, stored_rules

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.mail

ARTIFACTS = Path("/tmp/fsm-portal-rules-browser")


def server_config(stack: MailStack) -> ServerConfig:
    """[notify] through the test stack; no [[rules]] at all: only the portal's rule can mail."""
    return configfile.convert(
        {
            "notify": {
                "host": stack.host,
                "port": stack.smtp_port,
                "security": "starttls",
                "ca_file": str(stack.ca_file),
                "from_addr": "fsm@fsm.test",
            }
        },
        ServerConfig,
        source="test",
    )


@pytest.fixture
def portal(
    db: Database, mail_stack: MailStack, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit,
    tmp_path: Path,
) -> Iterator[tuple[str, Person, ServerConfig]]:  # fmt: skip
    need_chromium()
    mail_stack.empty_mailbox("alerts")
    mail_stack.empty_mailbox("dealer")
    add_dealer("North")
    add_dealer("South")
    add_customer("ACME", dealer="North", sites=("HQ",))
    add_customer("Globex", dealer="South")
    at = datetime.now(UTC).replace(microsecond=0)
    Feeder(pipeline, client_kit, server_kit).send(at, [reading("A1", at, total=10)])  # seq 1, no alert
    dealer = enrol("north-user", "dealer", dealer="North")
    # North's look on its users' pages (the screenshots show it)
    set_branding(
        Dealer.get(Dealer.name == "North"), colour="#0b6e4f", accent="#c2410c",
        logo=png(180, 48, (255, 255, 255), stripe=(194, 65, 12)), by="t", now=at,
    )  # fmt: skip
    config = server_config(mail_stack)
    with serving(ServerContext(config, tmp_path), db, tmp_path / "tls") as (base, _):
        yield base, dealer, config


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_a_rule_made_in_the_portal_mails_a_test_and_then_a_real_alert(
    db: Database,
    portal: tuple[str, Person, ServerConfig],
    mail_stack: MailStack,
    pipeline: Pipeline,
    client_kit: ClientKit,
    server_kit: ServerKit,
) -> None:
    base, dealer, config = portal
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    dialogs: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(ignore_https_errors=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
            page.goto(f"{base}/login")
            page.fill("input[name=name]", dealer.name)
            page.fill("input[name=password]", dealer.password)
            page.click("button[type=submit]")
            page.fill("input[name=code]", dealer.code())
            page.click("button[type=submit]")
            page.goto(f"{base}/")
            page.click("nav >> text=Rules")
            assert page.locator("h1").inner_text() == "Notification rules"
            assert "backup" not in page.locator("#r-when").inner_text()  # the server's own, not a dealer's
            page.fill("#r-label", "Jams at ACME")
            page.select_option("#r-when", "alert")
            page.fill("#r-codes", "jam")
            page.fill("#r-to", "alerts@fsm.test")
            page.check("input[name=customer][value=ACME]")
            assert page.locator("input[name=customer][value=Globex]").count() == 0  # South's customer
            page.click("#rule-form button[type=submit]")
            page.wait_for_selector("#send-test")
            rule_url = page.url
            rule_id = int(rule_url.rsplit("/", 1)[1])
            page.click("#send-test button")
            page.wait_for_selector("p.ok")
            assert "Test mail sent to alerts@fsm.test: 250" in page.inner_text("p.ok")
            shots = {
                "rules": f"{base}/rules", "rule": rule_url, "reports": f"{base}/reports",
                "branding": f"{base}/branding",
            }  # fmt: skip
            for width in WIDTHS:
                page.set_viewport_size({"width": width, "height": 900})
                for name, url in shots.items():
                    page.goto(url)
                    page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
                    scroll = page.evaluate("document.documentElement.scrollWidth")
                    assert scroll <= width + 1, (name, width, scroll)
        finally:
            browser.close()
    assert dialogs == []
    [(_, raw)] = mail_stack.wait_for_messages(1, user="alerts")
    test_mail = message_from_bytes(raw, policy=policy.default)
    assert "test of the rule 'portal-" in test_mail["Subject"] and "Received" in test_mail
    assert PortalRule.get_by_id(rule_id).label == "Jams at ACME"
    [section] = stored_rules()
    assert (section.name, section.customers, section.to) == (
        f"portal-{rule_id}",
        ["ACME"],
        ["alerts@fsm.test"],
    )

    # a jam reported by ACME's client, mailed to the dealer's mailbox and ingested by the daemon
    mail_stack.empty_mailbox("alerts")
    at = datetime.now(UTC).replace(microsecond=0)
    # seq 2: seq 1 went through the pipeline
    mail_alert_report(mail_stack, client_kit, server_kit, reading("A1", at, total=11, alerts=["jam"]), seq=2)
    mailbox = MailboxSection(
        host=mail_stack.host,
        port=mail_stack.imaps_port,
        security="tls",
        user="dealer@fsm.test",
        password=Secret("dealer-pass"),
        ca_file=mail_stack.ca_file,
    )
    events = EventService(db, config, extra_rules=stored_rules)
    result = asyncio.run(run_beside(IngestDaemon(pipeline, [mailbox]), events, once=True))
    assert result.tally.outcomes["loaded"] == 1
    [(_, raw)] = mail_stack.wait_for_messages(1, user="alerts")
    mail = message_from_bytes(raw, policy=policy.default)
    assert mail["X-Fsm-Rule"] == f"portal-{rule_id}" and mail["X-Fsm-Event"] == "opened"
    assert re.search(r"A1 \(ACME / HQ, .*\): jam", mail["Subject"]), mail["Subject"]
