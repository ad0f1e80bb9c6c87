"""A client whose data directory is reset keeps its key but counts from 1 again: the server
quarantines its new reports as seq_conflict, and `fsm-client outbox renumber` makes them load.

The client side is the real store, report builder and sealer; the server side the real pipeline
on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from fsm_client.config import ClientConfig
from fsm_client.report import Sealer, queue_report, renumber
from fsm_client.store import Store
from fsm_common import configfile
from fsm_devtools.corpus import ClientKit, ServerKit, make_device
from fsm_protocol.chunking import join
from fsm_protocol.keys import SERVER_PUB_FILE
from fsm_server.db.models import Envelope, Quarantine, Reading
from fsm_server.ingest.pipeline import Pipeline, Verdict

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def _config(client_kit: ClientKit, server_kit: ServerKit) -> ClientConfig:
    return configfile.convert(
        {
            "client": {"id": client_kit.name, "customer": "ACME", "site": "HQ"},
            "keys": {
                "signing_key": str(client_kit.pub_path.with_suffix(".key")),
                "server_public_key": str(server_kit.key_path.parent / SERVER_PUB_FILE),
            },
        },
        ClientConfig,
        source="test",
    )


def _life(store: Store, sealer: Sealer, config: ClientConfig, start: datetime, reports: int) -> None:
    """``reports`` periodic reports, each carrying one new reading of printer 1, an hour apart."""
    for i in range(reports):
        at = start + timedelta(hours=i)
        store.add_reading(make_device(1, observed_at=at, total=1000 + 10 * i), kind="scan")
        queue_report(store, sealer, config, kind="periodic", now=at)


def _deliver(store: Store, pipeline: Pipeline) -> list[Verdict]:
    """What the sender would mail, straight into the server's pipeline; marks it sent."""
    verdicts = []
    for entry in store.outbox():
        if entry.sent_at is None:
            verdicts.append(pipeline.process(join(store.chunks(entry.seq)), source="test"))
            for i in range(entry.chunk_count):
                store.mark_chunk_sent(entry.seq, i, at=T0, answer="250 ok")
    return verdicts


def test_a_reset_client_is_told_what_to_run_and_its_reports_load_after_renumber(
    tmp_path: Path, pipeline: Pipeline, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    config = _config(client_kit, server_kit)
    sealer = Sealer.from_config(config, tmp_path)
    with Store.in_data_dir(tmp_path / "before") as store:
        _life(store, sealer, config, T0, 5)
        assert {v.outcome for v in _deliver(store, pipeline)} == {"loaded"}

    with Store.in_data_dir(tmp_path / "after-reset") as store:  # same key, empty store
        _life(store, sealer, config, T0 + timedelta(days=1), 3)
        verdicts = _deliver(store, pipeline)
        assert [(v.outcome, v.reason, v.seq) for v in verdicts] == [
            ("quarantined", "seq_conflict", 1),
            ("quarantined", "seq_conflict", 2),
            ("quarantined", "seq_conflict", 3),
        ]
        hint = Quarantine.get_by_id(verdicts[0].quarantine_id).hint
        assert "fsm-client outbox renumber --after 5" in hint
        assert Reading.select().count() == 5

        done = renumber(store, sealer, after=5)
        assert done.moved == ((1, 6), (2, 7), (3, 8)) and done.purged == () and done.next_seq == 9
        assert [(r.reported_seq) for r in store.readings()] == [6, 7, 8]
        assert [v.outcome for v in _deliver(store, pipeline)] == ["loaded"] * 3
        _life(store, sealer, config, T0 + timedelta(days=2), 1)
        assert [(v.outcome, v.seq) for v in _deliver(store, pipeline)] == [("loaded", 9)]

        held = [v.quarantine_id for v in verdicts]
        assert pipeline.loader.dismiss(held) == held  # dealt with: set aside, bytes kept
        assert Quarantine.select().where(Quarantine.status == "held").count() == 0

    assert sorted(e.seq for e in Envelope.select()) == list(range(1, 10))
    assert Reading.select().count() == 5 + 3 + 1  # every reading of both lives, once


def test_renumber_on_the_command_line_moves_unsent_reports_and_names_purged_ones(
    tmp_path: Path, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    import json

    from fsm_client.cli import main

    config = _config(client_kit, server_kit)
    config_path = tmp_path / "client.toml"
    config_path.write_text(
        f'[client]\nid = "{client_kit.name}"\ncustomer = "ACME"\nsite = "HQ"\n[keys]\n'
        f'signing_key = "{config.keys.signing_key}"\nserver_public_key = "{config.keys.server_public_key}"\n'
    )
    data = tmp_path / "data"
    with Store.in_data_dir(data) as store:
        _life(store, Sealer.from_config(config, data), config, T0, 3)
        with store.atomic():
            store._db.execute("UPDATE outbox SET plaintext = NULL WHERE seq = 1")  # past retention
    run = CliRunner().invoke(
        main,
        [
            "--config",
            str(config_path),
            "--data-dir",
            str(data),
            "outbox",
            "renumber",
            "--after",
            "40",
            "--json",
        ],
    )
    assert run.exit_code == 0, run.output
    assert json.loads(run.output) == {
        "moved": [{"from": 2, "to": 41}, {"from": 3, "to": 42}],
        "purged": [1],
        "next_seq": 43,
    }
    run = CliRunner().invoke(
        main, ["--config", str(config_path), "--data-dir", str(data), "outbox", "renumber", "--after", "40"]
    )
    assert run.exit_code == 0, run.output
    assert "could not seal 1 report(s) again" in run.output and "the next report is number 43" in run.output
    with Store.in_data_dir(data) as store:
        assert [e.seq for e in store.outbox()] == [1, 41, 42]
        assert [c.seq for c in store.pending_chunks()] == [1, 41, 42]
