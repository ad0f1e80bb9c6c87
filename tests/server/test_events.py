"""Notification rules and their state on a pipeline-filled database (SQLite and PostgreSQL): one
"opened" mail per condition, a "cleared" mail, scope by customer, the delay filter against flapping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import Message
from typing import Any

import msgspec
import pytest
from reports_fleet import Feeder, reading

from fsm_common import configfile
from fsm_devtools.corpus import ClientKit, ServerKit
from fsm_server.config import ServerConfig
from fsm_server.db.connect import Database
from fsm_server.errors import NotifyError
from fsm_server.events import EventService, EventState, Notification
from fsm_server.ingest.pipeline import Pipeline

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def config(*rules: dict[str, Any], **notify: Any) -> ServerConfig:
    return configfile.convert(
        {
            "rules": list(rules),
            "notify": {"to": ["alerts@fsm.test"], "from_addr": "fsm@dealer.test", **notify},
        },
        ServerConfig,
        source="test",
    )


def service(db: Database, cfg: ServerConfig, clock: Clock) -> EventService:
    return EventService(db, cfg, now=clock)


def mails() -> list[tuple[str, Message]]:
    rows = Notification.select().order_by(Notification.id)
    return [(n.event, message_from_bytes(bytes(n.message), policy=policy.default)) for n in rows]


@pytest.fixture
def feed(pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit) -> Feeder:
    return Feeder(pipeline, client_kit, server_kit)


def test_an_alert_opens_once_while_active_and_clears_once(db: Database, feed: Feeder) -> None:
    clock = Clock(T0)
    events = service(db, config({"name": "jams", "when": "alert", "codes": ["jammed"]}), clock)
    feed.send(T0, [reading("A1", T0, total=1)])
    assert events.evaluate() == []
    for minute in (1, 2, 3):  # the jam is seen in three readings in a row
        at = T0 + timedelta(minutes=minute)
        feed.send(at, [reading("A1", at, total=2, conditions=["jammed", "low_toner"])], kind="alert")
        clock.at = at
        events.evaluate()
    at = T0 + timedelta(minutes=10)
    feed.send(at, [reading("A1", at, total=3)], kind="alert")
    clock.at = at
    events.evaluate()
    events.evaluate()
    sent = mails()
    assert [event for event, _ in sent] == ["opened", "cleared"]
    opened, cleared = sent[0][1], sent[1][1]
    assert opened["Subject"].strip() == "[fsm] Ricoh MP C3004 A1 (ACME / HQ, 10.0.0.10): jammed"
    assert opened["To"] == "alerts@fsm.test" and opened["From"] == "fsm@dealer.test"
    assert (opened["X-Fsm-Rule"], opened["X-Fsm-Event"], opened["Auto-Submitted"]) == (
        "jams",
        "opened",
        "auto-generated",
    )
    assert opened["X-Fsm-Observed-At"] == (T0 + timedelta(minutes=1)).isoformat()
    assert "reports 'jammed'" in opened.get_payload() and "Location: 2nd floor" in opened.get_payload()
    assert cleared["Subject"].strip().startswith("[fsm] cleared: Ricoh MP C3004 A1")
    assert "It lasted 0 h 9 min" in cleared.get_payload()
    assert EventState.select().count() == 0


def test_rules_are_scoped_by_customer(db: Database, feed: Feeder) -> None:
    events = service(
        db,
        config(
            {"name": "globex-jams", "when": "alert", "customers": ["Globex"]},
            {"name": "acme-jams", "when": "alert", "customers": ["ACME"], "to": ["acme-desk@fsm.test"]},
        ),
        Clock(T0),
    )
    feed.send(T0, [reading("A1", T0, total=1, alerts=["jam"])])
    events.evaluate()
    [(_, mail)] = mails()
    assert (mail["X-Fsm-Rule"], mail["To"]) == ("acme-jams", "acme-desk@fsm.test")


def test_the_delay_filter_swallows_a_flap_and_reports_what_holds(db: Database, feed: Feeder) -> None:
    clock = Clock(T0)
    events = service(
        db, config({"name": "doors", "when": "alert", "codes": ["door_open"], "delay_seconds": 300}), clock
    )

    def at(minutes: int, *, door: bool) -> None:
        clock.at = T0 + timedelta(minutes=minutes)
        feed.send(clock.at, [reading("A1", clock.at, total=minutes, alerts=["door_open"] if door else [])])
        events.evaluate()

    at(0, door=True)
    at(2, door=False)  # closed again after two minutes: a flap, nobody is told
    assert mails() == [] and EventState.select().count() == 0
    at(10, door=True)
    at(13, door=True)
    assert mails() == []  # not yet five minutes
    at(16, door=True)
    assert [e for e, _ in mails()] == ["opened"]
    at(18, door=False)
    at(20, door=True)  # back within the delay: still the same episode, no mail
    at(22, door=False)
    at(25, door=False)
    assert [e for e, _ in mails()] == ["opened"]
    at(28, door=False)  # closed for six minutes now
    assert [e for e, _ in mails()] == ["opened", "cleared"]


def test_supply_silence_gap_and_anomaly_rules(db: Database, feed: Feeder) -> None:
    clock = Clock(T0)
    cfg = config(
        {"name": "toner-low", "when": "supply_level", "below": 15, "supply_kinds": ["toner"]},
        {"name": "toner-soon", "when": "supply_days", "below": 5},
        {"name": "silent", "when": "silent_client"},
        {"name": "missing-device", "when": "silent_device"},
        {"name": "gaps", "when": "sequence_gap"},
        {"name": "meters", "when": "counter_anomaly", "cleared": False},
    )
    events = service(db, cfg, clock)
    for k in range(12):
        at = T0 - timedelta(days=6) + timedelta(hours=12 * k)
        devices = [
            reading(
                "A1",
                at,
                total=1000 + k if k < 11 else 5,
                supplies=[("toner", "black", 40 - 3 * k), ("waste_toner", None, 5.0)],
            )
        ]
        if k < 4:
            devices.append(reading("B2", at, ip="10.0.0.12", total=10 + k))
        feed.send(at, devices)
    feed.seq += 1  # one report lost
    clock.at = T0
    feed.send(T0, [reading("A1", T0, total=7, supplies=[("toner", "black", 6.0)])])
    events.evaluate()
    a1 = "[fsm] Ricoh MP C3004 A1 (ACME / HQ, 10.0.0.10)"
    b2 = "[fsm] Ricoh MP C3004 B2 (ACME / HQ, 10.0.0.12)"
    got = sorted((m["X-Fsm-Rule"], m["Subject"].strip()) for _, m in mails())
    assert got[-1][1].startswith(f"{a1}: black toner empty in 1.")  # 6 % left, about 6 % a day
    assert got[:-1] == [
        ("gaps", "[fsm] client acme-hq is missing reports 13-13"),
        ("meters", f"{a1}: counter total reset"),
        ("meters", f"{a1}: counter total_black reset"),
        ("missing-device", f"{b2} is silent"),
        ("toner-low", f"{a1}: black toner at 6 %"),  # the waste box at 5 % is no toner
    ]
    clock.at = T0 + timedelta(hours=31)  # no report for 31 h: the client is silent too, and A1
    events.evaluate()
    assert {m["Subject"].strip() for _, m in mails()[len(got) :]} == {
        "[fsm] client acme-hq is silent",
        f"{a1} is silent",
    }
    clock.at = T0 + timedelta(hours=49)  # the anomaly is older than its 24 h lookback: no cleared mail
    events.evaluate()
    assert [m["X-Fsm-Rule"] for e, m in mails() if e == "cleared"] == []


def test_bad_rules_are_refused_naming_the_rule(db: Database) -> None:
    with pytest.raises(NotifyError, match=r"'low'.*needs `below`"):
        EventService(db, config({"name": "low", "when": "supply_level"}), now=Clock(T0))
    with pytest.raises(NotifyError, match="nobody would get its mails"):
        EventService(db, config({"name": "x", "when": "alert"}, to=[]), now=Clock(T0))


def test_a_group_name_matches_the_error_state_bit_and_the_alert_code(db: Database, feed: Feeder) -> None:
    events = service(db, config({"name": "jams", "when": "alert", "codes": ["jam"]}), Clock(T0))
    feed.send(
        T0,
        [
            reading("A1", T0, total=1, conditions=["jammed"]),
            reading("B2", T0, ip="10.0.0.12", total=1, alerts=["jam"]),
            reading("C3", T0, ip="10.0.0.13", total=1, conditions=["low_toner"]),
        ],
    )
    events.evaluate()
    assert sorted(m["X-Fsm-Key"].split(":", 2)[2] for _, m in mails()) == ["jam", "jammed"]


def test_a_mail_shows_what_a_printer_reports_defused(db: Database, feed: Feeder) -> None:
    """An alert text with a right-to-left override and a terminal escape, through the pipeline."""
    clock = Clock(T0)
    events = service(db, config({"name": "any", "when": "alert"}), clock)
    d = reading("A1", T0, total=1, alerts=["jam"], location="\u202eroolf dn2")
    d = msgspec.structs.replace(
        d, alerts=[msgspec.structs.replace(d.alerts[0], description="invoice\u202egnp.exe\x1b[2J")]
    )
    feed.send(T0, [d], kind="alert")
    events.evaluate()
    [(_, opened)] = mails()
    text = opened["Subject"] + opened.get_payload()
    # ingest removed the escape (a C0 control); the override reaches the mail, made visible
    assert "invoice<U+202E>gnp.exe[2J" in text and "<U+202E>roolf dn2" in text
    assert "\u202e" not in text and "\x1b" not in text
