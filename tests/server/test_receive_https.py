"""`fsm-server receive` (uvicorn over TLS with a test CA) takes posted envelopes through the pipeline.

Each test runs the endpoint as its own process on the database under test (SQLite and
PostgreSQL) and posts to it over real TLS: receipts and nothing else, the size cap before
reading, the rate limits, and the same quarantine verdicts as mail.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import ssl
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fsm_devtools.corpus import (
    ClientKit,
    ServerKit,
    mails_for,
    mails_for_raw,
    make_client,
    make_report,
    make_server,
    seal,
)
from fsm_devtools.peers.https import TestCa
from fsm_devtools.peers.receiver import Receiver
from fsm_protocol import envelope
from fsm_protocol.errors import FsmError
from fsm_server.db.models import Envelope, Quarantine
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.ingest.throttle import Throttle

ENDPOINT = "/api/v1/envelopes"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return TestCa.create(tmp_path_factory.mktemp("receive-ca"))


def receiver_with(
    tmp_path: Path, ca: TestCa, server_kit: ServerKit, database_url: str, **receive: object
) -> Receiver:
    """A receiver with [receive] settings of the test's own (start it with ``with``)."""
    return Receiver(tmp_path / "receiver", ca, server_kit.key_path, database_url, receive=receive)


@pytest.fixture
def receiver(
    tmp_path: Path, ca: TestCa, server_kit: ServerKit, database_url: str, pipeline: Pipeline
) -> Iterator[Receiver]:
    """The endpoint on the database under test (acme-hq registered by the ``pipeline`` fixture)."""
    with Receiver(tmp_path / "receiver", ca, server_kit.key_path, database_url) as r:
        yield r


def client(ca: TestCa) -> httpx.Client:
    return httpx.Client(verify=ssl.create_default_context(cafile=str(ca.ca_file)), timeout=30)


def test_a_posted_envelope_is_loaded_and_answered_with_its_receipt_only(
    receiver: Receiver, ca: TestCa, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    env = seal(make_report(client_kit.name, 1, devices=2), client_kit, server_kit)
    with client(ca) as http:
        first = http.post(receiver.url + ENDPOINT, content=env)
        again = http.post(receiver.url + ENDPOINT, content=env)
        wrong_method = http.get(receiver.url + ENDPOINT)
        elsewhere = http.post(receiver.url + "/api/v1/config", content=env)
    assert first.status_code == 202, first.text
    assert first.json() == {"client": "acme-hq", "seq": 1, "status": "loaded"}
    assert again.status_code == 202 and again.json() == {"client": "acme-hq", "seq": 1, "status": "duplicate"}
    assert (wrong_method.status_code, elsewhere.status_code) == (405, 404)
    assert "server" not in first.headers  # nothing about the server flows back either
    assert Envelope.select().count() == 1 and Quarantine.select().count() == 0


def test_chunks_posted_in_any_order_load_one_report(
    receiver: Receiver, ca: TestCa, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    from fsm_protocol import chunking

    env = seal(make_report(client_kit.name, 7, devices=30), client_kit, server_kit)
    parts = chunking.split(env, 300)
    assert len(parts) > 3
    order = list(range(len(parts)))
    random.Random(7).shuffle(order)
    with client(ca) as http:
        statuses = [http.post(receiver.url + ENDPOINT, content=parts[i]).json()["status"] for i in order]
    assert statuses == ["chunk_stored"] * (len(parts) - 1) + ["loaded"]
    assert Envelope.get().seq == 7


def _raw_post_head(port: int, ca: TestCa, declared: int) -> tuple[bytes, float]:
    """Declare a ``declared``-byte body, send its first bytes and wait for the answer; return the
    answer and the seconds it took. (A longer start could meet the receiver's close, after its
    answer, as an EOF while still sending.)"""
    context = ssl.create_default_context(cafile=str(ca.ca_file))
    started = time.monotonic()
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(
            b"POST " + ENDPOINT.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Length: " + str(declared).encode() + b"\r\n\r\n" + b"\x89FSM" + bytes(1020)
        )
        answer = tls.recv(4096)
    return answer, time.monotonic() - started


def test_a_1_gib_body_is_refused_at_the_cap_without_being_read(
    tmp_path: Path, ca: TestCa, server_kit: ServerKit, database_url: str, pipeline: Pipeline
) -> None:
    with receiver_with(tmp_path, ca, server_kit, database_url, max_body_bytes=1024 * 1024) as receiver:
        before = receiver.rss_kib()
        answer, took = _raw_post_head(receiver.port, ca, 1 << 30)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]  # answered at once, the rest never asked for
        assert b"connection: close" in answer.lower() and took < 5

        # without a declared length (chunked), the body is read up to the cap and no further
        yielded = 0

        def gigabyte() -> Iterator[bytes]:
            nonlocal yielded
            for _ in range(1024):
                yielded += 1 << 20
                yield b"\x89FSM" + bytes((1 << 20) - 4)

        try:
            with client(ca) as http:
                status = http.post(receiver.url + ENDPOINT, content=gigabyte()).status_code
        except httpx.TransportError:
            status = 413  # the server closed the connection after answering, while we still sent
        assert status == 413
        assert yielded < 64 * 1024 * 1024, yielded
        assert receiver.alive() and receiver.rss_kib() - before < 32 * 1024
    assert Envelope.select().count() == 0 and Quarantine.select().count() == 0


@pytest.mark.parametrize("db_backend", ["sqlite"])  # the flood is refused before any database work
def test_10000_garbage_posts_from_one_address_are_throttled_never_loaded(
    receiver: Receiver, ca: TestCa, client_kit: ClientKit, server_kit: ServerKit
) -> None:
    rng = random.Random(18)
    codes: Counter[int] = Counter()
    statuses: Counter[str] = Counter()

    def junk() -> bytes:
        body = os.urandom(rng.randint(0, 400))
        return b"\x89FSM\x01" + body if rng.random() < 0.5 else body  # half look like envelopes

    async def flood(n: int, http: httpx.AsyncClient) -> None:
        for _ in range(n):
            answer = await http.post(receiver.url + ENDPOINT, content=junk())
            codes[answer.status_code] += 1
            if answer.status_code == 202:
                statuses[answer.json()["status"]] += 1

    async def run(total: int) -> None:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=str(ca.ca_file)), limits=limits, timeout=60
        ) as http:
            await asyncio.gather(*(flood(total // 16, http) for _ in range(16)))

    started = time.monotonic()
    asyncio.run(run(1008))  # warm up: the buffers and caches a server has anyway
    warm = receiver.rss_kib()
    asyncio.run(run(8992))
    elapsed = time.monotonic() - started
    assert sum(codes.values()) == 10_000 and set(codes) <= {202, 429}, codes
    # at most the burst plus what the rate earns: 60 + 2/s
    assert codes[202] <= 60 + 2 * elapsed + 2, (codes, elapsed)
    assert codes[429] >= 10_000 - 60 - 2 * elapsed - 2
    assert set(statuses) == {"quarantined"}
    assert receiver.alive()
    assert receiver.rss_kib() - warm < 8 * 1024, (warm, receiver.rss_kib())
    assert Envelope.select().count() == 0
    assert Quarantine.select().count() == codes[202]
    # the flood over, the address's bucket refills and a real report from it loads
    time.sleep(1.0)
    env = seal(make_report(client_kit.name, 1), client_kit, server_kit)
    with client(ca) as http:
        assert http.post(receiver.url + ENDPOINT, content=env).json()["status"] == "loaded"


def test_replayed_and_tampered_envelopes_get_the_verdicts_mail_gets(
    receiver: Receiver,
    ca: TestCa,
    client_kit: ClientKit,
    server_kit: ServerKit,
    pipeline: Pipeline,
    tmp_path: Path,
) -> None:
    """Each envelope is posted, and (as a mail) run through a pipeline in this process, on one database."""
    stranger = make_client(tmp_path / "stranger", "stranger")
    other_server = make_server(tmp_path / "other-server")
    seq = iter(range(1, 1000))

    def good(c: ClientKit = client_kit, s: ServerKit = server_kit) -> bytes:
        return seal(make_report(c.name, next(seq), devices=1), c, s)

    def flip(data: bytes, at: int) -> bytes:
        out = bytearray(data)
        out[at] ^= 1
        return bytes(out)

    def as_a_mail(body: bytes) -> bytes:
        """The mail a client would send with ``body`` attached (its X-Fsm headers from the header)."""
        if not body.startswith(b"\x89FSM"):
            return body
        try:
            return mails_for(body)[0]
        except FsmError:  # a header that does not parse: the mail names the client the test meant
            return mails_for_raw(body, client_kit.name)

    loaded = good()
    cases = {
        "replay": (loaded, "duplicate"),
        "ciphertext bit flipped": (flip(good(), -100), "bad_signature"),
        "header bit flipped": (flip(good(), 40), "bad_signature"),
        "signed by another key": (
            seal(
                make_report(client_kit.name, next(seq)),
                ClientKit(client_kit.name, stranger.signing_key, stranger.pub_path),
                server_kit,
            ),
            "bad_signature",
        ),
        "unknown client": (good(stranger), "unknown_client"),
        "sealed to another server": (good(s=other_server), "unknown_key"),
        "truncated": (good()[:-50], "malformed"),
        "not an envelope": (b"GET / HTTP/1.0\r\n\r\n" * 3, "not_fsm_mail"),
    }
    with client(ca) as http:
        assert http.post(receiver.url + ENDPOINT, content=loaded).json()["status"] == "loaded"
        for name, (body, expected) in cases.items():
            receipt = http.post(receiver.url + ENDPOINT, content=body).json()
            as_mail = pipeline.process(as_a_mail(body), source="mail")
            if expected == "duplicate":
                assert receipt["status"] == as_mail.outcome == "duplicate", name
                continue
            assert receipt["status"] == "quarantined", (name, receipt)
            row = (
                Quarantine.select()
                .where(Quarantine.source.startswith("https:"))
                .order_by(Quarantine.id.desc())
                .get()
            )
            assert row.reason == as_mail.reason == expected, (name, row.reason, as_mail.reason)
            assert row.raw == body
            if body.startswith(b"\x89FSM") and len(body) > 60:
                assert receipt["client"] in (envelope.peek(loaded).client_id, "stranger", None)
    assert Envelope.select().count() == 1


def test_throttle_forgets_the_least_recently_seen_key_beyond_its_size() -> None:
    now = [0.0]
    throttle = Throttle(rate=1.0, burst=1, max_keys=100, clock=lambda: now[0])
    for i in range(10_000):
        throttle.take(f"10.0.{i // 256}.{i % 256}")
    assert len(throttle) == 100
    assert throttle.take("10.0.39.15") > 0  # the last one seen is still remembered (spent)
    assert throttle.take("10.0.0.0") == 0  # a forgotten one starts again with a full bucket
    now[0] = 1.0
    assert throttle.take("10.0.39.15") == 0  # a token earned back


def test_receive_refuses_to_start_without_tls(tmp_path: Path, server_kit: ServerKit) -> None:
    import subprocess
    import sys

    config = tmp_path / "server.toml"
    config.write_text(f'[keys]\nencryption_key = "{server_kit.key_path}"\n')
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from fsm_server.cli import main; main()",
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path),
            "receive",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3, done
    assert "[receive] cert_file and key_file" in done.stderr and "HTTPS only" in done.stderr
