"""The ingest pipeline on real sealed mails, on SQLite and PostgreSQL."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from fsm_devtools.corpus import (
    ClientKit,
    ServerKit,
    mails_for,
    make_client,
    make_device,
    make_report,
    report_mail,
    seal,
    seal_plain,
)
from fsm_server import listings
from fsm_server.db.connect import Database, DuplicateKey
from fsm_server.db.models import (
    CounterValue,
    Device,
    DeviceAddress,
    Envelope,
    PendingChunk,
    Quarantine,
    Reading,
)
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry


def test_a_sealed_report_is_loaded_with_every_value(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    verdict = pipeline.process(report_mail(client_kit, server_kit, 1, devices=4), source="test")
    assert verdict.outcome == "loaded", verdict
    assert (verdict.client, verdict.seq, verdict.devices) == ("acme-hq", 1, 4)
    assert verdict.values == 4 * (12 + 6 + 1)
    env = Envelope.get()
    assert (env.seq, env.kind, env.devices, env.values) == (1, "periodic", 4, verdict.values)
    assert Reading.select().count() == 4
    assert CounterValue.select().where(CounterValue.name == "total").count() == 4


def test_a_report_is_received_and_ingested_at_the_pipelines_clock(
    db: Database, registry: Registry, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    """A pipeline given a clock (a test's, or the demo's simulated days) dates what it loads by it."""
    created = datetime(2026, 3, 2, 6, 5, tzinfo=UTC)
    moment = created + timedelta(minutes=4)
    pipeline = Pipeline(db, registry, server_kit.encryption_key, now=lambda: moment)
    verdict = pipeline.process(report_mail(client_kit, server_kit, 1, created_at=created), source="test")
    assert verdict.outcome == "loaded", verdict
    env = Envelope.get()
    assert (env.received_at, env.ingested_at) == (moment, moment)


def _loaded_rows() -> tuple[int, int, int]:
    return Envelope.select().count(), Reading.select().count(), CounterValue.select().count()


def test_the_same_report_twice_is_a_duplicate_that_changes_nothing(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    created = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    mail = report_mail(client_kit, server_kit, 7, created_at=created)
    assert pipeline.process(mail).outcome == "loaded"
    before = _loaded_rows()
    assert pipeline.process(mail).outcome == "duplicate"
    # the same report sealed again (new ephemeral key, new bytes) for the same seq: still a duplicate
    resealed = report_mail(client_kit, server_kit, 7, created_at=created)
    assert resealed != mail
    assert pipeline.process(resealed).outcome == "duplicate"
    assert _loaded_rows() == before
    assert Quarantine.select().count() == 0


def test_a_different_report_under_a_loaded_number_is_a_seq_conflict(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    """A client whose data directory was reset counts from 1 again: its new reports must not vanish
    as duplicates; they are quarantined with the command that makes them load."""
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    for seq in (1, 2, 3):
        assert pipeline.process(report_mail(client_kit, server_kit, seq, created_at=t)).outcome == "loaded"
    before = _loaded_rows()
    verdict = pipeline.process(report_mail(client_kit, server_kit, 2, created_at=t + timedelta(days=1)))
    assert (verdict.outcome, verdict.reason, verdict.seq) == ("quarantined", "seq_conflict", 2)
    assert "the highest number loaded for it is 3" in verdict.detail
    q = Quarantine.get_by_id(verdict.quarantine_id)
    assert "fsm-client outbox renumber --after 3" in q.hint
    assert _loaded_rows() == before


def test_chunks_under_a_loaded_number_are_duplicates_only_when_they_are_of_the_loaded_sealing(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    env = seal(make_report(client_kit.name, 4, devices=30, created_at=t), client_kit, server_kit)
    loaded = mails_for(env, chunk_bytes=len(env) // 3 + 200)
    assert [pipeline.process(m).outcome for m in loaded][-1] == "loaded"
    assert pipeline.process(loaded[0]).outcome == "duplicate"  # a resent chunk
    other = seal(
        make_report(client_kit.name, 4, devices=30, created_at=t + timedelta(hours=1)), client_kit, server_kit
    )
    verdicts = [pipeline.process(m) for m in mails_for(other, chunk_bytes=len(other) // 3 + 200)]
    assert [v.outcome for v in verdicts[:-1]] == ["chunk_stored"] * (len(verdicts) - 1)
    assert (verdicts[-1].outcome, verdicts[-1].reason) == ("quarantined", "seq_conflict")
    assert PendingChunk.select().count() == 0  # the whole envelope is in quarantine, not its chunks


def test_the_database_itself_refuses_a_second_envelope_with_the_same_client_and_seq(
    db: Database, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    pipeline.process(report_mail(client_kit, server_kit, 3))
    env = Envelope.get()
    with pytest.raises(DuplicateKey), pipeline.loader.db.atomic():
        from fsm_server.db.connect import translated

        with translated("second insert"):
            Envelope.insert(
                client=env.client_id,
                seq=3,
                kind="periodic",
                sha256="x" * 64,
                created_at=env.created_at,
                received_at=env.received_at,
                ingested_at=env.ingested_at,
            ).execute()
    assert Envelope.select().count() == 1


def test_chunks_are_reassembled_in_any_order_across_restarts(
    db: Database, registry: Registry, server_kit: ServerKit, client_kit: ClientKit
) -> None:
    env = seal(make_report(client_kit.name, 5, devices=40), client_kit, server_kit)
    mails = mails_for(env, chunk_bytes=len(env) // 4 + 200)
    assert len(mails) >= 4
    random.Random(3).shuffle(mails)
    outcomes = []
    for mail in mails:
        # a new pipeline per mail: nothing is kept in memory between chunks
        outcomes.append(Pipeline(db, registry, server_kit.encryption_key).process(mail).outcome)
    assert outcomes[:-1] == ["chunk_stored"] * (len(mails) - 1)
    assert outcomes[-1] == "loaded"
    assert PendingChunk.select().count() == 0
    assert Envelope.get().chunk_count == len(mails)
    again = Pipeline(db, registry, server_kit.encryption_key).process(mails[0])
    assert again.outcome == "duplicate"
    assert PendingChunk.select().count() == 0


def _quarantined(pipeline: Pipeline, raw: bytes) -> str:
    verdict = pipeline.process(raw)
    assert verdict.outcome == "quarantined", verdict
    assert Quarantine.get_by_id(verdict.quarantine_id).reason == verdict.reason
    return verdict.reason


def test_mail_from_an_unknown_client_is_quarantined_then_loaded_by_retry_after_registering(
    pipeline: Pipeline, registry: Registry, server_kit: ServerKit, stranger_kit: ClientKit
) -> None:
    verdict = pipeline.process(report_mail(stranger_kit, server_kit, 1))
    assert (verdict.outcome, verdict.reason) == ("quarantined", "unknown_client")
    registry.add(stranger_kit.name, stranger_kit.pub_path)
    retried = pipeline.retry(verdict.quarantine_id)
    assert retried.outcome == "loaded"
    assert Quarantine.get_by_id(verdict.quarantine_id).status == "released"


def test_a_revoked_client_is_refused(
    pipeline: Pipeline, registry: Registry, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    registry.revoke(client_kit.name)
    assert _quarantined(pipeline, report_mail(client_kit, server_kit, 1)) == "revoked_client"


def test_after_rotation_the_new_key_works_and_the_old_one_only_within_the_grace(
    tmp_path, pipeline: Pipeline, registry: Registry, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    new = make_client(tmp_path / "new", client_kit.name)
    registry.rotate(client_kit.name, new.pub_path)
    assert pipeline.process(report_mail(new, server_kit, 1)).outcome == "loaded"
    assert pipeline.process(report_mail(client_kit, server_kit, 2)).outcome == "loaded"  # in flight
    registry.rotation_grace = timedelta(0)
    assert _quarantined(pipeline, report_mail(client_kit, server_kit, 3)) == "bad_signature"
    assert registry.get(client_kit.name).keys == 2


def test_every_kind_of_damage_gets_its_reason(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit, stranger_kit: ClientKit, tmp_path
) -> None:
    good = seal(make_report(client_kit.name, 11), client_kit, server_kit)
    flipped = bytearray(good)
    flipped[-100] ^= 0x10
    assert _quarantined(pipeline, mails_for(bytes(flipped))[0]) == "bad_signature"
    assert _quarantined(pipeline, b"From: a@b\r\nSubject: hi\r\n\r\nhello\r\n") == "not_fsm_mail"
    assert _quarantined(pipeline, b"x" * (pipeline.limits.max_mail_bytes + 1)) == "too_large"
    assert _quarantined(pipeline, mails_for(good)[0][:-400]) in ("malformed_mime", "malformed")
    other_server = __import__("fsm_devtools.corpus", fromlist=["make_server"]).make_server(tmp_path / "o")
    wrong = seal(make_report(client_kit.name, 12), client_kit, other_server)
    assert _quarantined(pipeline, mails_for(wrong)[0]) in ("unknown_key", "decryption_failed")
    assert (
        _quarantined(pipeline, mails_for(seal_plain(b'{"x": 1}', client_kit, server_kit, 13))[0])
        == "bad_schema"
    )
    future = make_report(client_kit.name, 14, created_at=datetime.now(UTC) + timedelta(days=2))
    assert _quarantined(pipeline, mails_for(seal(future, client_kit, server_kit))[0]) == "implausible"
    v2 = bytearray(good)
    v2[4] = 2
    assert _quarantined(pipeline, bytes(v2)) == "version_not_supported"  # a bare .fsm file
    assert Envelope.select().count() == 0


def test_a_quarantined_message_seen_again_is_one_entry(pipeline: Pipeline) -> None:
    first = pipeline.process(b"not a mail at all")
    second = pipeline.process(b"not a mail at all")
    assert (first.repeat, second.repeat) == (False, True)
    assert first.quarantine_id == second.quarantine_id
    assert Quarantine.select().count() == 1


def test_an_ip_change_keeps_the_device_and_a_swap_at_the_same_ip_makes_a_new_one(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)

    def send(seq: int, **device: object) -> None:
        r = make_report(client_kit.name, seq, devices=0, created_at=t + timedelta(hours=seq))
        r.devices = [make_device(0, observed_at=t + timedelta(hours=seq), **device)]  # type: ignore[arg-type]
        assert pipeline.process(mails_for(seal(r, client_kit, server_kit))[0]).outcome == "loaded"

    send(1, serial="AAA1", ip="10.0.0.5", total=1000)
    send(2, serial="AAA1", ip="10.0.0.77", total=1100)  # DHCP gave it a new address
    assert Device.select().count() == 1
    assert Device.get().ip == "10.0.0.77"
    assert {a.ip for a in DeviceAddress.select()} == {"10.0.0.5", "10.0.0.77"}
    send(3, serial="BBB2", ip="10.0.0.77", total=50)  # another machine put at the same address
    assert Device.select().count() == 2
    assert CounterValue.select().where(CounterValue.flag.is_null(False)).count() == 0


def test_a_counter_going_backwards_or_jumping_is_stored_and_flagged(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    for seq, total in ((1, 1_000_000), (2, 900), (3, 50_000_000)):
        r = make_report(client_kit.name, seq, devices=1, created_at=t + timedelta(hours=seq), total=total)
        assert pipeline.process(mails_for(seal(r, client_kit, server_kit))[0]).outcome == "loaded"
    totals = list(
        CounterValue.select().where(CounterValue.name == "total").order_by(CounterValue.observed_at)
    )
    assert [(c.value, c.flag) for c in totals] == [(1_000_000, None), (900, "reset"), (50_000_000, "jump")]
    assert totals[1].previous == 1_000_000


def test_gaps_list_missing_sequence_ranges(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    for seq in (1, 2, 5, 9):
        assert pipeline.process(report_mail(client_kit, server_kit, seq, devices=1)).outcome == "loaded"
    gaps = listings.gaps()
    assert [(g.client, g.first, g.last) for g in gaps] == [("acme-hq", 3, 4), ("acme-hq", 6, 8)]


def _altered(chunk: bytes) -> bytes:
    """The chunk with one byte of its fragment changed (its header, hence its mail, look the same)."""
    from fsm_protocol import envelope as envelope_mod

    changed = bytearray(chunk)
    changed[envelope_mod.peek(chunk).size + 7] ^= 0x20
    return bytes(changed)


def test_an_altered_copy_of_a_chunk_is_bad_chunk_and_the_report_loads_from_the_good_ones(
    pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    from fsm_protocol import chunking
    from fsm_protocol.mime import build_message

    env = seal(make_report(client_kit.name, 6, devices=30), client_kit, server_kit)
    chunks = chunking.split(env, len(env) // 3 + 200)
    mails = [build_message(c, from_addr="c@x.test", to_addr="d@x.test") for c in chunks]
    forged = [build_message(_altered(c), from_addr="c@x.test", to_addr="d@x.test") for c in chunks]
    assert pipeline.process(mails[0]).outcome == "chunk_stored"
    assert pipeline.process(mails[0]).outcome == "chunk_stored"  # the same bytes again: harmless
    before = pipeline.process(forged[0])  # a different copy of a stored chunk
    assert (before.outcome, before.reason, before.chunk) == ("quarantined", "bad_chunk", "1/3"), before.detail
    assert [pipeline.process(m).outcome for m in mails[1:]] == ["chunk_stored", "loaded"]
    after = pipeline.process(forged[1])  # a different copy of a chunk of the loaded report
    assert (after.outcome, after.reason) == ("quarantined", "bad_chunk"), after.detail
    assert pipeline.process(mails[1]).outcome == "duplicate"  # the genuine one is still a resend
    assert Envelope.get().seq == 6
    assert Quarantine.select().where(Quarantine.reason == "bad_chunk").count() == 2
