"""The export an ERP imports: the meters CSV (``reports.csv``: ERP meter names from ``[reports]
meter_names``, cells a spreadsheet cannot run) of an approved period, and beside it
``<csv>.manifest.json``: per CSV line the envelopes (client, seq, sha256) its start and end meter
came from, the CSV's SHA-256, signed with the server's Ed25519 key (``server-sign.key``).
``verify`` checks both files against the server's public signing key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from fsm_common.collector import collector_paused
from fsm_protocol.errors import BadSignature
from fsm_protocol.keys import SigningKey, VerifyKey

from ..config import ReportsSection
from ..db import sql
from ..db.connect import Database, translated
from ..errors import BillingError
from ..reports.csv import METERS_HEADER, cells_text, device_cells, header_text, meter_text
from ..reports.scope import DeviceInfo, bound_database, devices_in_scope
from . import workflow

FORMAT = "fsm-billing-manifest/1"
MANIFEST_SUFFIX = ".manifest.json"


class Source(msgspec.Struct, array_like=True):
    client: str
    seq: int
    sha256: str


class ManifestRow(msgspec.Struct, kw_only=True):
    line: int  # the CSV line (1: the header)
    meter_id: int
    start: Source
    end: Source
    correction: str | None = None  # the note of the correction billed instead of the collected numbers


class Manifest(msgspec.Struct, kw_only=True):
    format: str
    customer: str
    period_id: int
    start: datetime
    end: datetime
    approved_by: str
    approved_at: datetime
    exported_at: datetime
    csv_sha256: str
    signer: str  # the public signing key's fingerprint
    rows: list[ManifestRow]
    excluded: list[tuple[int, str]]  # (meter id, note) of meters left out


class Signed(msgspec.Struct, kw_only=True):
    manifest: Manifest
    signature: str  # base64 Ed25519 signature over the manifest's JSON as msgspec encodes it


def manifest_path(csv_path: Path) -> Path:
    return csv_path.with_name(csv_path.name + MANIFEST_SUFFIX)


#: An approved period's meters to export as billed (the newest correction's numbers where a dealer
#: made one, with its note), in (device, counter) order.
EXPORT_SQL = """
SELECT m.id, m.device_id, m.counter, m.start_at, m.end_at,
       COALESCE(c.start_value, m.start_value), COALESCE(c.end_value, m.end_value),
       COALESCE(c.usage, m.usage), m.flags, c.note,
       m.start_client, m.start_seq, m.start_sha256, m.end_client, m.end_seq, m.end_sha256
FROM billing_meter m
LEFT JOIN (SELECT x.meter_id AS meter_id, MAX(x.id) AS id FROM billing_correction x
           JOIN billing_meter y ON y.id = x.meter_id WHERE y.period_id = ? GROUP BY x.meter_id) n
    ON n.meter_id = m.id
LEFT JOIN billing_correction c ON c.id = n.id
WHERE m.period_id = ? AND NOT m.excluded
ORDER BY m.device_id, m.counter
"""
EXCLUDED_SQL = """
SELECT id, exclude_note FROM billing_meter WHERE period_id = ? AND excluded ORDER BY device_id, counter
"""


def build(
    period_id: int, signer: SigningKey, settings: ReportsSection | None = None, *, now: datetime | None = None
) -> tuple[str, bytes]:
    """(CSV text, signed manifest JSON) of an approved (or already exported) period; marks it exported.
    The meters are read once, as rows, straight into the CSV lines and the manifest."""
    cfg = settings or ReportsSection()
    view = workflow.period(period_id)
    if view.state not in ("approved", "exported") or view.approved_by is None or view.approved_at is None:
        raise BillingError(
            f"period {period_id} is {view.state}; only an approved period is exported",
            hint="approve it first: `fsm-server billing approve PERIOD`",
        )
    db = bound_database()
    with translated("cannot read the period's meters"), collector_paused():
        text, rows = _lines(db, period_id, devices_in_scope(view.customer, db), cfg)
        excluded = [(meter_id, note or "") for meter_id, note in sql.rows(db, EXCLUDED_SQL, [period_id])]
    when = now or datetime.now(UTC)
    manifest = Manifest(
        format=FORMAT,
        customer=view.customer,
        period_id=view.id,
        start=view.start,
        end=view.end,
        approved_by=view.approved_by,
        approved_at=view.approved_at,
        exported_at=when,
        csv_sha256=hashlib.sha256(text.encode()).hexdigest(),
        signer=signer.fingerprint,
        rows=rows,
        excluded=excluded,
    )
    signature = signer.sign(msgspec.json.encode(manifest))
    signed = msgspec.json.format(
        msgspec.json.encode(Signed(manifest=manifest, signature=base64.b64encode(signature).decode("ascii"))),
        indent=1,
    )
    workflow.mark_exported(period_id, manifest.csv_sha256, now=when)
    return text, signed


def _lines(
    db: Database, period_id: int, devices: dict[int, DeviceInfo], cfg: ReportsSection
) -> tuple[str, list[ManifestRow]]:
    """The CSV text and the manifest rows of a period's meters to export. The text of a device's
    cells and of a counter's names is made once (40,000 meters, 10,000 devices)."""
    out = [header_text(METERS_HEADER)]
    rows: list[ManifestRow] = []
    device_text: dict[int, str] = {}
    names_text: dict[str, str] = {}
    flag_words: dict[tuple[str, bool], str] = {}
    for r in sql.rows(db, EXPORT_SQL, [period_id, period_id]):
        meter_id, device_id, counter, start_at, end_at, start, end, usage, flags, note = r[:10]
        device = device_text.get(device_id)
        if device is None:
            device = device_text[device_id] = cells_text(device_cells(devices[device_id]))
        named = names_text.get(counter)
        if named is None:
            named = names_text[counter] = cells_text([cfg.meter_names.get(counter, counter), counter])
        key = (flags, note is not None)
        words = flag_words.get(key)
        if words is None:  # names from billing.collect.BLOCKING
            words = " ".join([*msgspec.json.decode(flags), *(["corrected"] if key[1] else [])])
            flag_words[key] = words
        out.append(meter_text(device + named, sql.utc(start_at), start, sql.utc(end_at), end, usage, words))
        rows.append(
            ManifestRow(
                line=len(out),
                meter_id=meter_id,
                start=Source(r[10], r[11], r[12]),
                end=Source(r[13], r[14], r[15]),
                correction=note,
            )
        )
    return "".join(out), rows


def verify(path: Path, key: VerifyKey) -> Manifest:
    """The manifest of an export, once its signature (by ``key``) and the CSV's digest check;
    ``path`` is the CSV or its manifest. BillingError naming what does not match otherwise."""
    csv_path = (
        path.with_name(path.name.removesuffix(MANIFEST_SUFFIX))
        if path.name.endswith(MANIFEST_SUFFIX)
        else path
    )
    mpath = manifest_path(csv_path)
    try:
        signed = msgspec.json.decode(mpath.read_bytes(), type=Signed)
        signature = base64.b64decode(signed.signature, validate=True)
        data = csv_path.read_bytes()
    except FileNotFoundError as exc:
        raise BillingError(
            f"{exc.filename} does not exist",
            hint=f"an export is two files: FILE.csv and FILE.csv{MANIFEST_SUFFIX}",
        ) from exc
    except OSError as exc:
        raise BillingError(f"cannot read {exc.filename}: {exc.strerror}") from exc
    except (msgspec.ValidationError, msgspec.DecodeError, binascii.Error) as exc:
        raise BillingError(
            f"{mpath} is not an fsm billing manifest: {exc}",
            hint="the file was damaged or is not what `fsm-server billing export` wrote",
        ) from exc
    if signed.manifest.format != FORMAT:
        raise BillingError(f"{mpath} has format {signed.manifest.format!r}, not {FORMAT!r}")
    try:
        key.verify(signature, msgspec.json.encode(signed.manifest))
    except BadSignature as exc:
        raise BillingError(
            f"the signature of {mpath} does not match its content (key {key.fingerprint}): "
            "the manifest was changed after export, or another key signed it",
            hint="do not bill from it; export the period again",
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != signed.manifest.csv_sha256:
        raise BillingError(
            f"{csv_path} is not the CSV the manifest was signed for (SHA-256 {digest}, "
            f"signed {signed.manifest.csv_sha256})",
            hint="the CSV was changed after export; do not bill from it",
        )
    return signed.manifest


__all__ = [
    "EXCLUDED_SQL",
    "EXPORT_SQL",
    "FORMAT",
    "MANIFEST_SUFFIX",
    "Manifest",
    "ManifestRow",
    "Signed",
    "Source",
    "build",
    "manifest_path",
    "verify",
]
