"""Authentic reports with hostile insides (issue 12, defects 1 and 5), on SQLite and PostgreSQL:
text a printer sets is cleaned and loads, anything out of range is quarantined with its reason,
and no single report ever stops the reports behind it, whether through the pipeline, the daemon
on the real mail stack, or `fsm-server ingest --once`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest
from ingest_helpers import folder_count, mailbox_config, send_all, start_daemon, write_server_config

from fsm_devtools.corpus import (
    WIDE,
    ClientKit,
    ServerKit,
    hostile_cases,
    mails_for,
    make_report,
    poison_then_valid,
    report_mail,
    seal,
)
from fsm_devtools.peers.mailstack import MailStack
from fsm_server.daemon import IngestDaemon
from fsm_server.db.connect import Database
from fsm_server.db.loader import EnvelopeMeta
from fsm_server.db.models import AlertValue, Device, Envelope, Quarantine, Reading, SupplyValue
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry


def _process(
    pipeline: Pipeline, name: str, seq: int, client: ClientKit, server: ServerKit
) -> tuple[str, str]:
    expected, hostile = hostile_cases()[name]
    verdict = pipeline.process(
        mails_for(seal(hostile(make_report(client.name, seq, devices=2)), client, server))[0]
    )
    got = verdict.outcome if verdict.outcome != "quarantined" else verdict.reason
    return expected, got


@pytest.mark.parametrize("name", list(hostile_cases()))
def test_each_hostile_report_gets_its_outcome_and_the_next_valid_report_loads(
    name: str, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    expected, got = _process(pipeline, name, 1, client_kit, server_kit)
    assert got == expected
    after = pipeline.process(report_mail(client_kit, server_kit, 2, devices=2))
    assert after.outcome == "loaded", after.detail
    assert Envelope.select().where(Envelope.seq == 2).count() == 1


def test_nul_and_control_characters_in_printer_text_are_stripped_with_a_warning(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    assert _process(pipeline, "controls_in_text", 1, client_kit, server_kit) == ("loaded", "loaded")
    dev = Device.get(Device.hostname == "mfp")
    assert dev.location == "Floor 2[2J  room 5"  # ESC and BEL gone, CR/LF read as blanks
    assert dev.firmware == "1.0"
    reading = Reading.select().where(Reading.device == dev).order_by(Reading.id).first()
    assert reading.console == "Ready"
    assert any("location" in w and "control" in w for w in reading.warnings), reading.warnings
    assert SupplyValue.select().where(SupplyValue.description == "Blacktoner").count() == 1
    assert AlertValue.select().where(AlertValue.description == "jam").count() == 1
    assert _process(pipeline, "nul_in_identity", 2, client_kit, server_kit) == ("loaded", "loaded")
    assert Device.select().where(Device.model == "MPC3004", Device.manufacturer == "Ricoh").count() == 1
    assert all("\x00" not in (d.serial or "") for d in Device.select())


def test_over_long_printer_text_is_cut_to_what_its_column_holds_with_a_warning(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    from fsm_protocol.schema import LABEL_CHARS, TEXT_CHARS

    assert _process(pipeline, "long_wide_text", 1, client_kit, server_kit) == ("loaded", "loaded")
    dev = Device.get(Device.model.startswith(WIDE))
    assert len(dev.model) == len(dev.serial) == len(dev.manufacturer) == LABEL_CHARS
    assert len(dev.location) == TEXT_CHARS
    warnings = Reading.get(Reading.device == dev).warnings
    assert any("location: 100000 characters, cut to" in w for w in warnings), warnings


def test_report_level_text_over_its_column_or_with_controls_is_refused_naming_the_field(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    for seq, name, field in ((1, "long_customer", "$.customer"), (2, "nul_in_customer", "$.site")):
        report = hostile_cases()[name][1](make_report(client_kit.name, seq))
        verdict = pipeline.process(mails_for(seal(report, client_kit, server_kit))[0])
        assert (verdict.outcome, verdict.reason) == ("quarantined", "bad_schema")
        assert field in verdict.detail, verdict.detail
    assert Envelope.select().count() == 0


@pytest.mark.parametrize(
    "name, words",
    [
        ("supply_level_2_62", "level 4611686018427387904"),
        ("supply_max_minus_7", "max -7"),
        ("supply_percent_minus_1e308", "percent -1e+308"),
        ("supply_index_2_40", "index 1099511627776"),
    ],
)
def test_absurd_supply_values_are_implausible_naming_the_value(
    name: str, words: str, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    report = hostile_cases()[name][1](make_report(client_kit.name, 1))
    verdict = pipeline.process(mails_for(seal(report, client_kit, server_kit))[0])
    assert (verdict.outcome, verdict.reason) == ("quarantined", "implausible")
    assert words in verdict.detail, verdict.detail
    assert SupplyValue.select().count() == 0


def test_printer_mib_sentinels_and_the_widest_sane_supply_values_load(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    report = make_report(client_kit.name, 1, devices=1)
    base = report.devices[0].supplies[0]
    supplies = [
        msgspec.structs.replace(base, index=i + 1, level=level, max=max_, percent=pct, state=state)
        for i, (level, max_, pct, state) in enumerate(
            [
                (-1, 100, None, "unlimited"),
                (-2, -2, None, "unknown"),
                (-3, 500, None, "some_remaining"),
                (2**31 - 1, 2**31 - 1, 100.0, "ok"),
                (0, 0, None, "invalid"),
                (120, 100, 120.0, "ok"),
            ]
        )
    ]
    report = msgspec.structs.replace(
        report, devices=[msgspec.structs.replace(report.devices[0], supplies=supplies)]
    )
    verdict = pipeline.process(mails_for(seal(report, client_kit, server_kit))[0])
    assert verdict.outcome == "loaded", verdict.detail
    assert sorted(s.level for s in SupplyValue.select()) == [-3, -2, -1, 0, 120, 2**31 - 1]


def test_a_seq_beyond_what_the_database_stores_is_implausible_even_in_a_chunk(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    env = seal(make_report(client_kit.name, 2**63, devices=30), client_kit, server_kit)
    for mail in (mails_for(env)[0], mails_for(env, chunk_bytes=len(env) // 3 + 200)[0]):
        verdict = pipeline.process(mail)
        assert (verdict.outcome, verdict.reason) == ("quarantined", "implausible"), verdict.detail
        assert "9223372036854775808" in verdict.detail
    assert pipeline.process(report_mail(client_kit, server_kit, 1)).outcome == "loaded"


def test_a_report_the_database_refuses_is_quarantined_and_the_next_one_for_the_same_site_loads(
    db: Database, pipeline: Pipeline, registry: Registry, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    """Past validation (a Report built in code), the database refuses a value: that report rolls
    back whole, nothing it created stays cached, and the next report of the same new site loads."""
    bad = make_report(client_kit.name, 1, devices=1)
    bad = msgspec.structs.replace(
        bad,
        customer="New customer",
        devices=[
            msgspec.structs.replace(
                bad.devices[0],
                supplies=[msgspec.structs.replace(bad.devices[0].supplies[0], level=2**64 - 1)],
            )
        ],
    )
    meta = EnvelopeMeta(
        client_id=registry.keys_for(client_kit.name, now=datetime.now(UTC)).id,
        client_name=client_kit.name,
        sha256="0" * 64,
        message_id=None,
        source="test",
        received_at=datetime.now(UTC),
    )
    from fsm_server.errors import DataRefused

    with pytest.raises(DataRefused):
        pipeline.loader.load(bad, meta)
    good = msgspec.structs.replace(make_report(client_kit.name, 2, devices=1), customer="New customer")
    verdict = pipeline.process(mails_for(seal(good, client_kit, server_kit))[0])
    assert verdict.outcome == "loaded", verdict.detail
    assert Envelope.select().count() == 1


# -- through the real mail stack ----------------------------------------------------------------------


def _expected(corpus: list[tuple[str, bytes]]) -> tuple[int, dict[str, int]]:
    loaded = sum(1 for want, _ in corpus if want == "loaded")
    reasons: dict[str, int] = {}
    for want, _ in corpus:
        if want != "loaded":
            reasons[want] = reasons.get(want, 0) + 1
    return loaded, reasons


@pytest.mark.mail
async def test_poison_reports_in_the_mailbox_are_quarantined_and_every_valid_one_loads(
    empty_dealer_mailbox: MailStack, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    stack = empty_dealer_mailbox
    corpus = poison_then_valid(client_kit, server_kit, first_seq=1)
    await send_all(stack, [raw for _, raw in corpus])
    stack.wait_for_messages(len(corpus), timeout=60)

    result = await IngestDaemon(pipeline, [mailbox_config(stack)], batch=10).run(once=True)

    loaded, reasons = _expected(corpus)
    assert result.tally.outcomes["loaded"] == loaded, result.tally.summary()
    assert dict(result.tally.reasons) == reasons
    assert Envelope.select().count() == loaded
    assert folder_count(stack, "INBOX") == 0
    assert folder_count(stack, "FSM/Quarantine") == len(corpus) - loaded
    assert Quarantine.select().where(Quarantine.reason == "internal_error").count() == 0


@pytest.mark.mail
def test_ingest_once_moves_past_poison_reports_and_loads_the_valid_ones(
    empty_dealer_mailbox: MailStack,
    database_url: str,
    db: Database,
    registry: Registry,
    client_kit: ClientKit,
    server_kit: ServerKit,
    tmp_path: Path,
) -> None:
    import asyncio

    stack = empty_dealer_mailbox
    corpus = poison_then_valid(client_kit, server_kit, first_seq=1, valid_after_each=1)
    asyncio.run(send_all(stack, [raw for _, raw in corpus]))
    stack.wait_for_messages(len(corpus), timeout=60)
    config = write_server_config(tmp_path / "server.toml", stack, server_kit)

    proc = start_daemon(config, tmp_path / "data", database_url, "--once", log=tmp_path / "ingest.log")
    out, _ = proc.communicate(timeout=300)

    assert proc.returncode == 0, (tmp_path / "ingest.log").read_text()[-3000:]
    summary = json.loads(out)
    loaded, _ = _expected(corpus)
    assert summary["loaded"] == loaded, summary
    assert Envelope.select().count() == loaded
    assert folder_count(stack, "INBOX") == 0


def _fail_on_supplies(db: Database) -> None:
    """Make the database fail, as if it were unreachable, on any row of supply_value."""
    if db.kind == "sqlite":
        # resolved when it fires: "no such table", an OperationalError like a locked or lost database
        db.peewee.execute_sql(
            "CREATE TRIGGER fail BEFORE INSERT ON supply_value BEGIN SELECT * FROM no_such_table; END"
        )
    else:
        db.peewee.execute_sql(
            "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'connection failure' USING ERRCODE = '08006'; END $$"
        )
        db.peewee.execute_sql(
            "CREATE TRIGGER fail BEFORE INSERT ON supply_value FOR EACH ROW EXECUTE FUNCTION fail()"
        )


def test_database_failures_are_retried_but_one_message_failing_every_time_is_quarantined_at_last(
    db: Database, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    from fsm_server.errors import DatabaseError, DataRefused
    from fsm_server.ingest.pipeline import MAX_DATABASE_FAILURES

    _fail_on_supplies(db)
    mail = report_mail(client_kit, server_kit, 1)
    for _ in range(MAX_DATABASE_FAILURES - 1):
        with pytest.raises(DatabaseError) as failed:
            pipeline.process(mail)
        assert not isinstance(failed.value, DataRefused)  # the database's fault: left for a retry
    verdict = pipeline.process(mail)
    assert (verdict.outcome, verdict.reason) == ("quarantined", "internal_error")
    assert f"the database failed {MAX_DATABASE_FAILURES} times in a row" in verdict.detail
    assert Envelope.select().count() == 0
    # a report the database stores is not held up by it
    empty = msgspec.structs.replace(make_report(client_kit.name, 2), devices=[])
    assert pipeline.process(mails_for(seal(empty, client_kit, server_kit))[0]).outcome == "loaded"


def test_each_kind_of_database_error_is_told_apart_as_the_message_s_fault_or_the_database_s(
    db: Database,
) -> None:
    from fsm_server.db.connect import translated
    from fsm_server.errors import DatabaseError, DataRefused

    pw = db.peewee
    pw.execute_sql("CREATE TABLE probe (s VARCHAR(3), n BIGINT)")
    ph = pw.param
    refused = [(f"INSERT INTO probe VALUES ('a', {ph})", (2**64,))]
    if db.kind == "postgresql":  # SQLite stores NUL and any length in a VARCHAR
        refused += [
            (f"INSERT INTO probe VALUES ({ph}, 1)", ("abcd",)),
            (f"INSERT INTO probe VALUES ({ph}, 1)", ("a\x00",)),
        ]
    for sql, params in refused:
        with pytest.raises(DataRefused), translated("probe"), db.atomic():
            pw.execute_sql(sql, params)
    with pytest.raises(DatabaseError) as failed, translated("probe"), db.atomic():
        pw.execute_sql("SELECT * FROM no_such_table")
    assert not isinstance(failed.value, DataRefused)
