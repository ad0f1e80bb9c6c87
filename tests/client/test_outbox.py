"""The outbox: sequence numbers taken with the envelope, send order, resend ranges, retention."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fsm_client.errors import StoreError
from fsm_client.store import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "client.sqlite"


@pytest.fixture
def fresh_store(store_path: Path):
    with Store.open(store_path) as store:
        yield store


def enqueue(store: Store, chunks: list[bytes], *, kind: str = "periodic", at: datetime = T0) -> int:
    with store.atomic():
        seq = store.next_seq()
        store.add_envelope(seq, kind=kind, created_at=at, plaintext=b'{"seq":%d}' % seq, chunks=chunks)
    return seq


def _enqueue_many(path: str, n: int) -> None:
    with Store.open(Path(path)) as store:
        for i in range(n):
            enqueue(store, [b"from another process %d" % i])


def test_two_processes_never_take_the_same_number(store_path: Path) -> None:
    Store.open(store_path).close()
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_enqueue_many, args=(str(store_path), 40)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Store.open(store_path) as store:
        assert [e.seq for e in store.outbox()] == list(range(1, 121))


def test_a_rolled_back_envelope_leaves_no_hole(fresh_store: Store) -> None:
    enqueue(fresh_store, [b"a"])
    with pytest.raises(RuntimeError), fresh_store.atomic():
        fresh_store.next_seq()
        raise RuntimeError("sealing failed")
    assert enqueue(fresh_store, [b"b"]) == 2


def test_chunks_are_pending_in_sequence_then_chunk_order(fresh_store: Store) -> None:
    enqueue(fresh_store, [b"1a", b"1b", b"1c"])
    enqueue(fresh_store, [b"2a"])
    pending = fresh_store.pending_chunks()
    assert [(c.seq, c.chunk_index, c.chunk_count, c.data) for c in pending] == [
        (1, 0, 3, b"1a"),
        (1, 1, 3, b"1b"),
        (1, 2, 3, b"1c"),
        (2, 0, 1, b"2a"),
    ]
    assert fresh_store.outbox_depth() == 2


def test_an_envelope_is_sent_when_its_last_chunk_is(fresh_store: Store) -> None:
    enqueue(fresh_store, [b"1a", b"1b"])
    assert fresh_store.mark_chunk_sent(1, 0, at=T0, answer="250 ok") is False
    assert [c.chunk_index for c in fresh_store.pending_chunks()] == [1]
    assert fresh_store.mark_chunk_sent(1, 1, at=T0, answer="250 ok") is True
    [entry] = fresh_store.outbox()
    assert (entry.sent_at, entry.chunks_sent, fresh_store.outbox_depth()) == (T0, 2, 0)
    assert fresh_store.meta_time("last_send_at") == T0


def test_failures_are_counted_with_the_relay_answer(fresh_store: Store) -> None:
    enqueue(fresh_store, [b"x"])
    later = T0 + timedelta(seconds=30)
    assert fresh_store.record_failure(1, error="451 try later", next_attempt_at=later) == 1
    assert fresh_store.record_failure(1, error="451 try later", next_attempt_at=later) == 2
    [entry] = fresh_store.outbox()
    assert (entry.attempts, entry.last_error, entry.next_attempt_at) == (2, "451 try later", later)
    assert fresh_store.next_attempt_at() == later


def test_resend_requeues_a_range_under_the_same_numbers(fresh_store: Store) -> None:
    for i in range(4):
        enqueue(fresh_store, [b"env%d" % i])
        fresh_store.mark_chunk_sent(i + 1, 0, at=T0, answer="250")
    assert fresh_store.requeue(2, 3) == [2, 3]
    assert [(c.seq, c.data) for c in fresh_store.pending_chunks()] == [(2, b"env1"), (3, b"env2")]
    assert fresh_store.last_seq() == 4  # no new numbers


def test_resend_from_without_to_means_up_to_the_last(fresh_store: Store) -> None:
    for _ in range(3):
        enqueue(fresh_store, [b"x"])
    assert fresh_store.requeue(2) == [2, 3]


def test_resend_of_a_purged_or_unknown_range_names_the_missing_numbers(fresh_store: Store) -> None:
    for i in range(3):
        enqueue(fresh_store, [b"x"], at=T0)
        fresh_store.mark_chunk_sent(i + 1, 0, at=T0, answer="250")
    fresh_store.purge(now=T0 + timedelta(days=31), envelope_days=30, plaintext_days=365)
    with pytest.raises(StoreError, match="1-6") as err:
        fresh_store.requeue(1, 6)
    assert "outbox list" in err.value.hint
    with pytest.raises(StoreError, match="bad range"):
        fresh_store.requeue(5, 2)


def test_retention_drops_sealed_envelopes_then_plaintexts_but_never_unsent_ones(fresh_store: Store) -> None:
    enqueue(fresh_store, [b"old"])
    fresh_store.mark_chunk_sent(1, 0, at=T0, answer="250")
    enqueue(fresh_store, [b"unsent"])
    now = T0 + timedelta(days=40)
    assert fresh_store.purge(now=now, envelope_days=30, plaintext_days=365) == (1, 0)
    assert fresh_store.chunks(1) == [] and fresh_store.chunks(2) == [b"unsent"]
    assert fresh_store.plaintext(1) == b'{"seq":1}'
    assert fresh_store.purge(now=T0 + timedelta(days=400), envelope_days=30, plaintext_days=365) == (0, 1)
    with pytest.raises(StoreError, match="past its retention"):
        fresh_store.plaintext(1)
    assert fresh_store.plaintext(2) == b'{"seq":2}'
    assert [e.retained for e in fresh_store.outbox()] == [False, True]


def test_show_of_an_unknown_number_says_where_to_look(fresh_store: Store) -> None:
    with pytest.raises(StoreError, match="no report 7") as err:
        fresh_store.plaintext(7)
    assert "outbox list" in err.value.hint


# --- the CLI over real files -------------------------------------------------------------------


def _cli_world(tmp_path: Path, *, redact: bool = False) -> tuple[Path, Path]:
    """A data dir with two sealed reports (the first sent) and a config pointing at real keys."""
    import json

    from client_fixtures import Keys, make_config, write_toml

    from fsm_client.report import Sealer, queue_report
    from fsm_protocol.schema import Device

    keys = Keys(tmp_path / "keys")
    config = make_config(keys, outbox={"redact_ips": redact, "redact_locations": redact})
    data = tmp_path / "data"
    with Store.in_data_dir(data) as store:
        printer = Device(
            ip="10.7.0.5",
            observed_at=T0,
            location="Floor 3, room 301",
            contact="it@acme.example",
            warnings=["10.7.0.5 answered slowly"],
        )
        store.add_reading(printer, kind="scan")
        sealer = Sealer.from_config(config, data)
        queue_report(store, sealer, config, kind="periodic", now=T0)
        store.mark_chunk_sent(1, 0, at=T0, answer="250 2.0.0 Ok: queued as 4XyZ")
        queue_report(store, sealer, config, kind="periodic", now=T0 + timedelta(hours=1))
    path = write_toml(tmp_path / "client.toml", json.loads(json.dumps(configfile_dump(config))))
    return path, data


def _cli(tmp_path: Path, *args: str, redact_by_config: bool = False) -> Any:
    from click.testing import CliRunner

    from fsm_client.cli import main

    config, data = _cli_world(tmp_path, redact=redact_by_config)
    return CliRunner().invoke(main, ["--config", str(config), "--data-dir", str(data), *args])


def configfile_dump(config: object) -> dict[str, object]:
    from fsm_common import configfile

    dumped = configfile.dump(config)
    return {k: v for k, v in dumped.items() if v not in (None, [], {})}


def test_outbox_list_json_shows_state_attempts_and_errors(tmp_path: Path) -> None:
    import json

    result = _cli(tmp_path, "outbox", "list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["seq"], r["kind"], r["state"], r["chunks"]) for r in rows] == [
        (1, "periodic", "sent", 1),
        (2, "periodic", "pending", 1),
    ]


def test_outbox_show_prints_the_sealed_plaintext_and_redacts_on_request(tmp_path: Path) -> None:
    import json

    shown = json.loads(_cli(tmp_path, "outbox", "show", "1").output)
    assert shown["seq"] == 1 and shown["devices"][0]["ip"] == "10.7.0.5"
    assert shown["devices"][0]["location"] == "Floor 3, room 301"
    hidden = _cli(tmp_path / "again", "outbox", "show", "1", "--redact").output
    assert "10.7.0.5" not in hidden and "Floor 3" not in hidden and "it@acme.example" not in hidden
    assert json.loads(hidden)["devices"][0]["ip"] == "<redacted>"


def test_outbox_show_redacts_by_config_and_can_be_told_not_to(tmp_path: Path) -> None:
    import json

    hidden = json.loads(_cli(tmp_path, "outbox", "show", "1", redact_by_config=True).output)
    device = hidden["devices"][0]
    assert (device["ip"], device["location"], device["contact"]) == ("<redacted>",) * 3
    assert device["warnings"] == ["<redacted> answered slowly"]
    shown = json.loads(
        _cli(tmp_path / "again", "outbox", "show", "1", "--no-redact", redact_by_config=True).output
    )
    assert shown["devices"][0]["ip"] == "10.7.0.5"


def test_outbox_show_of_an_unknown_number_is_an_error_with_a_hint(tmp_path: Path) -> None:
    result = _cli(tmp_path, "outbox", "show", "9")
    assert result.exit_code == 1
    assert "no report 9" in result.output and "hint:" in result.output


def test_resend_cli_requeues_a_sent_range(tmp_path: Path) -> None:
    result = _cli(tmp_path, "resend", "--from", "1")
    assert result.exit_code == 0, result.output
    assert "queued 2 report(s) for resending: 1..2" in result.output
    with Store.in_data_dir(tmp_path / "data") as store:
        assert [c.seq for c in store.pending_chunks()] == [1, 2]


def test_status_and_outbox_list_read_at_a_glance(tmp_path: Path) -> None:
    status = _cli(tmp_path, "status")
    assert status.exit_code == 0, status.output
    assert "outbox        1 waiting (oldest 2)" in status.output
    assert "last send     2026-03-01T12:00:00+00:00" in status.output
    assert "report      " in status.output
    listing = _cli(tmp_path / "again", "outbox", "list")
    assert listing.exit_code == 0
    assert "sent" in listing.output and "pending" in listing.output and "periodic" in listing.output


def test_rechunk_splits_an_unsent_report_again_under_its_number(tmp_path: Path) -> None:
    from client_fixtures import Keys

    from fsm_client.report import rechunk

    result = _cli(tmp_path, "outbox", "rechunk", "2", "--chunk-bytes", "300")
    assert result.exit_code == 0, result.output
    assert "report 2 is now" in result.output
    with Store.in_data_dir(tmp_path / "data") as store:
        chunks = store.chunks(2)
        assert len(chunks) >= 2 and all(len(c) <= 300 for c in chunks)
        assert [e.chunk_count for e in store.outbox()] == [1, len(chunks)]
        assert [c.seq for c in store.pending_chunks()] == [2] * len(chunks)
        assert Keys(tmp_path / "keys", existing=True).open(chunks).seq == 2
        with pytest.raises(StoreError, match="already sent"):
            rechunk(store, 1, 300)


def test_rechunk_refuses_a_chunk_size_that_cannot_carry_a_chunk(tmp_path: Path) -> None:
    result = _cli(tmp_path, "outbox", "rechunk", "2", "--chunk-bytes", "100")
    assert result.exit_code == 3 and "too small" in result.output
