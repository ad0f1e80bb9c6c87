"""Test vectors: fixed keys, ephemeral key, nonce and time give exact bytes; broken envelopes give one reason.

The vectors live in tests/vectors/envelope/{valid,invalid}.json so that another
implementation can check itself against them (docs/wire-format.md, "Test vectors").
Regenerate them, only when the format changes on purpose, with
``.venv/bin/python tests/protocol/test_vectors.py``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fsm_protocol import crypto, errors
from fsm_protocol.chunking import join, split
from fsm_protocol.envelope import _seal_payload, open_envelope, peek, seal
from fsm_protocol.header import parse
from fsm_protocol.keys import EncryptionKey, SigningKey, load_verify_key
from fsm_protocol.schema import Device, Report, Supply, encode_report

VECTORS = Path(__file__).resolve().parent.parent / "vectors" / "envelope"
REASONS = {
    cls.reason: cls
    for cls in (
        errors.MalformedEnvelope,
        errors.UnsupportedVersion,
        errors.TooLarge,
        errors.UnknownKey,
        errors.BadSignature,
        errors.DecryptionFailed,
        errors.ChunkError,
        errors.SchemaError,
    )
}


def _load(name: str) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / name).read_text())
    return cases


def _fixed_rng(*chunks: bytes) -> Callable[[int], bytes]:
    queue = list(chunks)

    def rng(n: int) -> bytes:
        out = queue.pop(0)
        assert len(out) == n
        return out

    return rng


def _keys(case: dict[str, Any]) -> tuple[SigningKey, EncryptionKey]:
    return (
        SigningKey(crypto.ed25519_from_raw(bytes.fromhex(case["signing_seed"]))),
        EncryptionKey(crypto.x25519_from_raw(bytes.fromhex(case["server_secret"]))),
    )


@pytest.mark.parametrize("case", _load("valid.json"), ids=lambda c: c["desc"][:40])
def test_valid_vector_seals_to_exactly_its_bytes_and_opens(case: dict[str, Any]) -> None:
    signing, server = _keys(case)
    assert signing.public.to_text() == case["verify_key"]
    assert server.public.to_text() == case["server_public_key"]
    report = msgspec.convert(case["report"], Report)
    expected = bytes.fromhex(case["envelope"])
    sealed = seal(
        report,
        signing_key=signing,
        server_key=server.public,
        now=datetime.fromisoformat(case["now"]),
        rng=_fixed_rng(bytes.fromhex(case["ephemeral_secret"]), bytes.fromhex(case["nonce"])),
    )
    assert sealed.hex() == expected.hex()
    opened = open_envelope(expected, verify_key=load_verify_key(case["verify_key"]), encryption_key=server)
    assert opened == report
    header = peek(expected)
    assert (header.client_id, header.seq, header.kind) == (report.client_id, report.seq, report.kind)
    if "chunks" in case:
        chunks = [bytes.fromhex(c) for c in case["chunks"]]
        assert split(expected, case["chunk_bytes"]) == chunks
        assert join(reversed(chunks)) == expected


@pytest.mark.parametrize("case", _load("invalid.json"), ids=lambda c: c["desc"][:50])
def test_invalid_vector_is_refused_with_its_reason(case: dict[str, Any]) -> None:
    limits = {k: case[k] for k in ("max_envelope_bytes", "max_report_bytes") if k in case}
    with pytest.raises((errors.EnvelopeError, errors.SchemaError)) as caught:
        open_envelope(
            bytes.fromhex(case["envelope"]),
            verify_key=load_verify_key(case["verify_key"]),
            encryption_key=EncryptionKey(crypto.x25519_from_raw(bytes.fromhex(case["server_secret"]))),
            **limits,
        )
    assert type(caught.value) is REASONS[case["reason"]], caught.value.message
    assert caught.value.reason == case["reason"]


def test_every_reason_has_an_invalid_vector() -> None:
    assert {c["reason"] for c in _load("invalid.json")} == set(REASONS)


def test_every_invalid_vector_says_why() -> None:
    for case in _load("invalid.json"):
        assert len(case["desc"]) > 10 and case["reason"] in REASONS


# --- generating the vectors (run this file as a script) -----------------------------------


def _seed(label: str) -> bytes:
    """Fixed, obviously-not-random key material: SHA-256 of a label."""
    return crypto.sha256(label.encode())


def _valid_reports() -> Iterator[tuple[str, Report, datetime]]:
    t0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
    yield "empty periodic report", Report(client_id="acme-hq", seq=1, kind="periodic", created_at=t0), t0
    device = Device(
        ip="192.0.2.10",
        observed_at=t0 - timedelta(seconds=30),
        manufacturer="Kyocera",
        model="ECOSYS M3655idn",
        serial="VCF9Z12345",
        counters={"total": 123456, "print_black": 100000, "copy_black": 23456},
        supplies=[
            Supply(
                index=1,
                description="TK-3190",
                kind="toner",
                color="black",
                level=-3,
                max=-2,
                state="some_remaining",
            )
        ],
        sources={"serial": "1.3.6.1.2.1.43.5.1.1.17.1"},
    )
    yield (
        "one device with supply sentinels",
        Report(
            client_id="acme-hq",
            customer="ACME",
            site="HQ",
            seq=42,
            kind="periodic",
            created_at=t0,
            period_start=t0 - timedelta(days=1),
            period_end=t0,
            devices=[device],
        ),
        t0 + timedelta(minutes=5),
    )
    yield (
        "resend with unicode and the largest seq",
        Report(
            client_id="kunde_7.zh",
            customer="Müller & Söhne — Zürich 東京",
            site="Bâtiment B",
            seq=2**64 - 1,
            kind="resend",
            resend_of=17,
            created_at=t0,
            devices=[device],
        ),
        t0 + timedelta(hours=1),
    )


def _generate() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    signing = SigningKey(crypto.ed25519_from_raw(_seed("fsm test vector client")))
    server = EncryptionKey(crypto.x25519_from_raw(_seed("fsm test vector server")))
    other_signing = SigningKey(crypto.ed25519_from_raw(_seed("fsm test vector other client")))
    other_server = EncryptionKey(crypto.x25519_from_raw(_seed("fsm test vector other server")))
    keys = {
        "signing_seed": _seed("fsm test vector client").hex(),
        "verify_key": signing.public.to_text(),
        "server_secret": _seed("fsm test vector server").hex(),
        "server_public_key": server.public.to_text(),
    }
    valid = []
    for n, (desc, report, now) in enumerate(_valid_reports()):
        eph, nonce = _seed(f"ephemeral {n}"), _seed(f"nonce {n}")[:12]
        as_given = msgspec.to_builtins(report)
        envelope = seal(
            report, signing_key=signing, server_key=server.public, now=now, rng=_fixed_rng(eph, nonce)
        )
        case = {
            "desc": desc,
            **keys,
            "ephemeral_secret": eph.hex(),
            "nonce": nonce.hex(),
            "now": now.isoformat(),
            "report": as_given,
            "envelope": envelope.hex(),
        }
        if n == 1:
            case["chunk_bytes"] = 256
            case["chunks"] = [c.hex() for c in split(envelope, 256)]
        valid.append(case)

    base = bytes.fromhex(valid[1]["envelope"])
    size = parse(base).size

    def edit(offset: int, value: bytes) -> bytes:
        return base[:offset] + value + base[offset + len(value) :]

    def forge(
        plain: bytes,
        *,
        compressed: bytes | None = None,
        report_len: int | None = None,
        server_key: Any = server.public,
        client_id: str = "acme-hq",
    ) -> bytes:
        return _seal_payload(
            zlib.compress(plain) if compressed is None else compressed,
            report_len=len(plain) if report_len is None else report_len,
            client_id=client_id,
            seq=42,
            kind="periodic",
            signing_key=signing,
            server_key=server_key,
            rng=_fixed_rng(_seed("forged ephemeral"), _seed("forged nonce")[:12]),
        )

    good_json = encode_report(msgspec.convert(valid[1]["report"], Report))

    class Mismatched:  # names the real server key id but encrypts to another key
        key_id = server.key_id
        raw = other_server.public.raw

    bomb = zlib.compressobj(9)
    bomb_bytes = b"".join([bomb.compress(bytes(1 << 20)) for _ in range(16)]) + bomb.flush()
    invalid = [
        ("empty input", b"", "malformed"),
        ("wrong magic (a PNG file)", b"\x89PNG" + base[4:], "malformed"),
        ("version 2 header", edit(4, b"\x02"), "version_not_supported"),
        ("reserved flag bit set", edit(5, b"\x01"), "malformed"),
        ("kind code 0 is never valid", edit(6, b"\x00"), "malformed"),
        ("kind changed from periodic to alert", edit(6, b"\x02"), "bad_signature"),
        ("client id length 0", edit(7, b"\x00"), "malformed"),
        ("seq changed", edit(15, b"\x2b"), "bad_signature"),
        ("chunk index 0", edit(16, b"\x00\x00"), "malformed"),
        (
            "payload length one too long",
            edit(20, (int.from_bytes(base[20:24], "big") + 1).to_bytes(4, "big")),
            "malformed",
        ),
        ("truncated by one byte", base[:-1], "malformed"),
        ("one byte appended", base + b"\x00", "malformed"),
        ("client id with a space", base[: size - 7] + b"acme hq" + base[size:], "malformed"),
        (
            "client id changed to another valid one",
            base[: size - 7] + b"acme-hr" + base[size:],
            "bad_signature",
        ),
        (
            "sealed to another server key",
            seal(
                msgspec.convert(valid[1]["report"], Report),
                signing_key=signing,
                server_key=other_server.public,
            ),
            "unknown_key",
        ),
        (
            "signed by another client key",
            seal(
                msgspec.convert(valid[1]["report"], Report),
                signing_key=other_signing,
                server_key=server.public,
            ),
            "bad_signature",
        ),
        ("ephemeral key changed", edit(36, bytes([base[36] ^ 1])), "bad_signature"),
        ("nonce changed", edit(68, bytes([base[68] ^ 1])), "bad_signature"),
        ("ciphertext bit flipped", edit(size + 5, bytes([base[size + 5] ^ 0x80])), "bad_signature"),
        ("signature bit flipped", edit(len(base) - 1, bytes([base[-1] ^ 1])), "bad_signature"),
        ("a chunk opened on its own", split(base, 256)[0], "bad_chunk"),
        (
            "validly signed, encrypted to a different key than the key id says",
            forge(good_json, server_key=Mismatched()),
            "decryption_failed",
        ),
        ("validly signed, payload is not zlib", forge(good_json, compressed=b"not zlib at all"), "malformed"),
        (
            "validly signed, inflates to less than declared",
            forge(good_json, report_len=len(good_json) + 10),
            "malformed",
        ),
        (
            "validly signed 16 MiB of zeros declaring 1000 bytes (compression bomb)",
            forge(b"", compressed=bomb_bytes, report_len=1000),
            "too_large",
        ),
        ("validly signed report declaring 64 MiB + 1", forge(b"x", report_len=(64 << 20) + 1), "too_large"),
        (
            "validly signed, JSON that is not schema v1",
            forge(b'{"client_id": "acme-hq", "seq": "x"}'),
            "bad_schema",
        ),
        (
            "validly signed, header names acme-hq but the report another client",
            forge(good_json.replace(b'"acme-hq"', b'"evil-co"')),
            "bad_schema",
        ),
    ]
    out = [
        {
            "desc": desc,
            "reason": reason,
            "verify_key": keys["verify_key"],
            "server_secret": keys["server_secret"],
            "envelope": env.hex(),
        }
        for desc, env, reason in invalid
    ]
    out.append(
        {
            "desc": "envelope one byte over max_envelope_bytes",
            "reason": "too_large",
            "verify_key": keys["verify_key"],
            "server_secret": keys["server_secret"],
            "max_envelope_bytes": len(base) - 1,
            "envelope": base.hex(),
        }
    )
    return valid, out


if __name__ == "__main__":
    valid_cases, invalid_cases = _generate()
    VECTORS.mkdir(parents=True, exist_ok=True)
    for name, cases in (("valid.json", valid_cases), ("invalid.json", invalid_cases)):
        (VECTORS / name).write_text(json.dumps(cases, indent=2, ensure_ascii=False) + "\n")
        print(f"wrote {len(cases)} cases to {VECTORS / name}")
