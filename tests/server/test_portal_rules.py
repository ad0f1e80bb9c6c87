"""Notification rules in the portal (the real app and database, both backends): dealers edit their
own rules only, for their own customers; customer users see the rules watching their customers
and subscribe, and their subscription mails name their customers only; the config file's rules
show read-only to administrators; bad input says what is wrong."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from portal_fleet import Fleet, Viewer, build_fleet
from portal_kit import counting, csrf_of, web_ctx
from portal_reports_kit import User, logged_in

from fsm_devtools.corpus import ServerKit
from fsm_server.accounts.models import User as Account
from fsm_server.config import RuleSection
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry
from fsm_server.rulebook import PortalRule, RuleForm, save_rule, stored_rules, subscribe
from fsm_server.scoping import Scoped

RULE = {"label": "Jams", "when": "alert", "codes": "jam", "recipients": "ops@north.example", "cleared": "1",
        "enabled": "1", "delay_seconds": "0", "lookback_hours": "24"}  # fmt: skip


@pytest.fixture
def fleet(
    db: Database, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> Fleet:
    return build_fleet(pipeline, registry, server_kit, tmp_path)


@pytest.fixture
def users(db: Database, fleet: Fleet, tmp_path: Path) -> Iterator[dict[str, User]]:
    ctx = web_ctx(tmp_path)
    ctx.config.rules = [RuleSection(name="all-jams", when="alert", codes=["jam"], to=["noc@dealer.example"])]
    yield from logged_in(ctx, db, fleet)


def post(user: User, url: str, data: dict[str, object]) -> object:
    csrf = csrf_of(user.client.get("/rules").text)
    return user.client.post(url, data={**data, "csrf": csrf})


def rule_id_of(text: str) -> int:
    return int(re.findall(r'action="/rules/(\d+)/delete"', text)[0])


def test_dealers_edit_their_own_rules_for_their_own_customers(users: dict[str, User]) -> None:
    north, south, admin = users["north"], users["south"], users["admin"]
    r = post(north, "/rules", {**RULE, "customer": ["ACME"]})
    assert r.status_code == 200 and "Rule Jams" in r.text  # followed to the rule's page
    rule_id = rule_id_of(r.text)
    assert f"portal-{rule_id}" in north.client.get("/rules").text
    # South neither sees nor changes nor tests it; a rule naming North's customer is refused
    assert f"/rules/{rule_id}" not in south.client.get("/rules").text
    for url in (f"/rules/{rule_id}", f"/rules/{rule_id}/delete", f"/rules/{rule_id}/test"):
        assert post(south, url, RULE).status_code == 404, url
    assert south.client.get(f"/rules/{rule_id}").status_code == 404
    assert post(south, "/rules", {**RULE, "customer": ["ACME"]}).status_code == 404
    # a dealer's rule without customers watches that dealer's customers, never the server's backup
    r = post(south, "/rules", {**RULE, "label": "South jams"})
    south_id = rule_id_of(r.text)
    assert post(south, "/rules", {**RULE, "when": "backup"}).status_code == 400
    sections = {s.name: s for s in stored_rules()}
    assert sections[f"portal-{rule_id}"].customers == ["ACME"]
    assert sections[f"portal-{south_id}"].customers == ["Globex", "Umbrella"]
    # North edits and deletes its rule; the admin sees every rule and the config's read-only
    r = post(north, f"/rules/{rule_id}", {**RULE, "label": "Jams and doors", "codes": "jam door_open"})
    assert r.status_code == 200 and PortalRule.get_by_id(rule_id).codes == ["jam", "door_open"]
    page = admin.client.get("/rules").text
    assert "Jams and doors" in page and "South jams" in page and "all-jams" in page
    assert "all-jams" not in north.client.get("/rules").text  # config rules: administrators only
    assert post(north, f"/rules/{rule_id}/delete", {}).status_code == 200
    assert PortalRule.get_or_none(PortalRule.id == rule_id) is None
    audit = admin.client.get("/audit").text
    assert "rule.add" in audit and "rule.save" in audit and "rule.delete" in audit


def test_bad_rules_say_what_is_wrong(users: dict[str, User]) -> None:
    north = users["north"]
    cases = {
        "label": ("", "needs a name"),
        "below": ("lots", "&#39;below&#39; &#39;lots&#39; is not a number"),
        "recipients": ("ops@north.example nobody", "&#39;nobody&#39; is not an e-mail address"),
        "delay_seconds": ("-5", "the rule is not valid"),
    }
    for name, (value, message) in cases.items():
        r = post(north, "/rules", {**RULE, name: value})
        assert r.status_code == 400 and message in r.text, (name, r.text[-3000:])
    r = post(north, "/rules", {**RULE, "when": "supply_level"})
    assert r.status_code == 400 and "needs &#39;below&#39;" in r.text
    assert PortalRule.select().count() == 0


def test_customers_subscribe_and_hear_about_their_own_customers_only(users: dict[str, User]) -> None:
    north, acme, globex = users["north"], users["acme"], users["globex"]
    rule_id = rule_id_of(post(north, "/rules", {**RULE, "customer": ["ACME", "Initech"]}).text)
    page = acme.client.get(f"/rules/{rule_id}").text
    assert "Jams" in page and "ops@north.example" not in page  # the dealer's recipients stay private
    assert "Initech" not in page and "/delete" not in page  # nor another customer, nor editing
    assert globex.client.get(f"/rules/{rule_id}").status_code == 404
    assert post(acme, f"/rules/{rule_id}", RULE).status_code == 404
    assert post(acme, f"/rules/{rule_id}/test", {}).status_code == 404
    r = post(acme, f"/rules/{rule_id}/subscription", {"address": "it@acme.example"})
    assert r.status_code == 200 and "it@acme.example" in r.text
    r = post(globex, f"/rules/{rule_id}/subscription", {"address": "it@globex.example"})
    assert r.status_code == 404
    post(north, f"/rules/{rule_id}/subscription", {"address": "boss@north.example"})
    sections = {s.name: s for s in stored_rules()}
    main = sections[f"portal-{rule_id}"]
    assert main.customers == ["ACME", "Initech"] and main.to == ["ops@north.example", "boss@north.example"]
    [mine] = [s for n, s in sections.items() if n.startswith(f"portal-{rule_id}-user-")]
    assert (mine.customers, mine.to) == (["ACME"], ["it@acme.example"])
    r = post(acme, f"/rules/{rule_id}/subscription", {"action": "unsubscribe"})
    assert r.status_code == 200 and len(stored_rules()) == 1


def test_the_rules_page_runs_as_many_queries_for_20_rules_as_for_2(
    db: Database, users: dict[str, User]
) -> None:
    """Listing reads the rules' dealers and subscriptions once for all of them, not per rule."""
    now = datetime.now(UTC)
    north, admin, acme = (
        Viewer("dealer", dealer="North"),
        Viewer("admin"),
        Viewer("customer", customers=("ACME",)),
    )
    # North's rules watch ACME, whose user and North's subscribe; the administrator's watch any customer
    makers = [
        (north, ["ACME"], {"north": north, "acme": acme}),
        (admin, ["ACME", "Globex"], {"admin": admin}),
    ]
    counts: dict[str, list[int]] = {}
    for total in (2, 20):
        while (made := PortalRule.select().count()) < total:
            maker, customers, subscribers = makers[made % 2]
            form = RuleForm(label=f"Jams {made}", when="alert", codes=["jam"], customers=customers)
            rule = save_rule(Scoped.of(maker), maker, form, by="t", now=now)
            for name, viewer in subscribers.items():
                user_id = Account.get(Account.name == f"{name}-user").id
                subscribe(
                    Scoped.of(viewer), viewer, rule.id, user_id=user_id, address=f"{name}@x.example", now=now
                )
        for name, user in users.items():
            with counting(db) as seen:
                page = user.client.get("/rules")
            assert page.status_code == 200
            shown = len(set(re.findall(r'href="/rules/(\d+)"', page.text)))
            assert shown == {"admin": total, "north": total // 2, "acme": total // 2}.get(name, 0), name
            counts.setdefault(name, []).append(len(seen))
    assert all(two == twenty for two, twenty in counts.values()), counts
