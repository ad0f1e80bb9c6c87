"""Reports/s end to end by HTTPS, beside end to end by mail and beside the bare pipeline, in one run.

    .venv/bin/python bench/https_transport.py [--reports 300] [--devices 20]

The same N sealed reports of D devices each (sealed once, before timing) go, each into a fresh
SQLite database:

* "pipeline": ``Pipeline.process`` on each envelope in this process, nothing else (the bound);
* "https": the client's ``Sender`` drains a client store of the N envelopes through
  ``HttpsTransport`` to `fsm-server receive` (its own process, TLS with a test CA, on loopback);
  a report counts when its receipt says ``loaded`` (the server answers after the load commits);
* "mail": the same ``Sender`` drains the same store through ``SmtpTransport`` into the project's
  Postfix, Dovecot delivers to dealer@fsm.test, and ``IngestDaemon.run(once=True)`` loads them
  (time from the first send to the last load, delivery included).

Prints reports/s of each and its ratio to the pipeline.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "server"))

from ingest_helpers import folder_count, mailbox_config

from fsm_client.sender import Sender
from fsm_client.store import Store
from fsm_client.transports.https import HttpsTransport
from fsm_common.smtp import SmtpTransport
from fsm_devtools.corpus import FROM_ADDR, TO_ADDR, make_client, make_report, make_server, seal
from fsm_devtools.peers.https import TestCa
from fsm_devtools.peers.mailstack import MailStack, offset_from_env
from fsm_devtools.peers.receiver import Receiver
from fsm_server.daemon import IngestDaemon
from fsm_server.db import open_database
from fsm_server.db.connect import Database
from fsm_server.db.models import Envelope
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry


def fresh_db(tmp: Path, name: str, client_pub: Path) -> tuple[str, Database]:
    url = f"sqlite:///{tmp / name}.db"
    db = open_database(url, data_dir=tmp)
    Registry(db).add("acme-hq", client_pub)
    return url, db


def client_store(path: Path, envelopes: list[bytes]) -> Store:
    store = Store.open(path)
    now = datetime.now(UTC)
    with store.atomic():
        for seq, env in enumerate(envelopes, 1):
            store.add_envelope(seq, kind="periodic", created_at=now, plaintext=b"{}", chunks=[env])
    return store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=300)
    ap.add_argument("--devices", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fsm-bench-https-"))
    server = make_server(tmp / "server")
    client = make_client(tmp / "client", "acme-hq")
    envelopes = [
        seal(make_report(client.name, seq, devices=args.devices), client, server)
        for seq in range(1, args.reports + 1)
    ]
    n = len(envelopes)
    print(
        f"{n} reports x {args.devices} devices; envelope {sum(map(len, envelopes)) / n / 1024:.1f} KB "
        f"on average"
    )

    # the bound: the pipeline alone
    _, db = fresh_db(tmp, "pipeline", client.pub_path)
    pipeline = Pipeline(db, Registry(db), server.encryption_key)
    t = time.perf_counter()
    outcomes = [pipeline.process(env, source="bench").outcome for env in envelopes]
    t_pipeline = time.perf_counter() - t
    assert outcomes == ["loaded"] * n, set(outcomes)
    db.close()

    # HTTPS end to end
    ca = TestCa.create(tmp / "ca")
    url, db = fresh_db(tmp, "https", client.pub_path)
    db.close()
    limits = {
        "address_rate": 10_000.0,
        "address_burst": 100_000,
        "client_rate": 10_000.0,
        "client_burst": 100_000,
    }
    with Receiver(tmp / "receiver", ca, server.key_path, url, receive=limits) as receiver:
        store = client_store(tmp / "client-https.db", envelopes)
        sender = Sender(
            store,
            [("https", lambda: HttpsTransport(receiver.url, ca_file=ca.ca_file))],
            mail_from=FROM_ADDR,
            rcpt_to=[TO_ADDR],
        )
        t = time.perf_counter()
        result = asyncio.run(sender.drain(force=True))
        t_https = time.perf_counter() - t
        assert result.sent_envelopes == n, result
    db = open_database(url, data_dir=tmp)
    assert Envelope.select().count() == n
    db.close()

    # mail end to end
    stack = MailStack(port_offset=offset_from_env())
    stack.start()
    try:
        with stack.lease():
            stack.empty_mailbox("dealer")
            url, db = fresh_db(tmp, "mail", client.pub_path)
            pipeline = Pipeline(db, Registry(db), server.encryption_key)
            store = client_store(tmp / "client-mail.db", envelopes)
            sender = Sender(
                store,
                [("smtp", lambda: SmtpTransport(stack.host, stack.smtp_port, security="none"))],
                mail_from=FROM_ADDR,
                rcpt_to=[TO_ADDR],
            )
            t = time.perf_counter()
            result = asyncio.run(sender.drain(force=True))
            assert result.sent_envelopes == n, result
            deadline = time.monotonic() + 300
            while folder_count(stack, "INBOX") < n and time.monotonic() < deadline:
                time.sleep(0.1)
            ingest = asyncio.run(IngestDaemon(pipeline, [mailbox_config(stack)], batch=50).run(once=True))
            t_mail = time.perf_counter() - t
            assert ingest.tally.outcomes["loaded"] == n, ingest.tally.summary()
            db.close()
    finally:
        stack.stop()

    print(f"  pipeline alone     {n / t_pipeline:8.1f} reports/s")
    for name, secs in (("https end to end", t_https), ("mail end to end", t_mail)):
        print(f"  {name:<18} {n / secs:8.1f} reports/s   = {t_pipeline / secs * 100:.0f} % of the pipeline")


if __name__ == "__main__":
    main()
