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
import io
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from fsm_protocol.errors import BadSignature
from fsm_protocol.keys import SigningKey, VerifyKey

from ..config import ReportsSection
from ..errors import BillingError
from ..reports.csv import METERS_HEADER, meter_cells, write_table
from ..reports.meters import MeterRow
from ..reports.scope import devices_in_scope
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


def build(
    period_id: int, signer: SigningKey, settings: ReportsSection | None = None, *, now: datetime | None = None
) -> tuple[str, bytes]:
    """(CSV text, signed manifest JSON) of an approved (or already exported) period; marks it exported."""
    cfg = settings or ReportsSection()
    view = workflow.show(period_id)
    if view.state not in ("approved", "exported") or view.approved_by is None or view.approved_at is None:
        raise BillingError(
            f"period {period_id} is {view.state}; only an approved period is exported",
            hint="approve it first: `fsm-server billing approve PERIOD`",
        )
    devices = devices_in_scope(view.customer)
    out = io.StringIO()
    lines: list[list[object]] = []
    rows: list[ManifestRow] = []
    for m in view.meters:
        if m.excluded:
            continue
        info = devices[m.device_id]
        row = MeterRow(
            device=info,
            counter=m.counter,
            meter=cfg.meter_names.get(m.counter, m.counter),
            start_at=m.start_at,
            start_value=m.start_value,
            end_at=m.end_at,
            end_value=m.end_value,
            usage=m.usage,
            reads=0,
            flags=[*m.flags, *(["corrected"] if m.corrections else [])],
        )
        lines.append(meter_cells(row))
        rows.append(
            ManifestRow(
                line=len(lines) + 1,
                meter_id=m.id,
                start=Source(*m.start_source),
                end=Source(*m.end_source),
                correction=m.corrections[-1][2] if m.corrections else None,
            )
        )
    write_table(out, METERS_HEADER, lines)
    text = out.getvalue()
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
        excluded=[(m.id, m.exclude_note or "") for m in view.meters if m.excluded],
    )
    signature = signer.sign(msgspec.json.encode(manifest))
    signed = msgspec.json.format(
        msgspec.json.encode(Signed(manifest=manifest, signature=base64.b64encode(signature).decode("ascii"))),
        indent=1,
    )
    workflow.mark_exported(period_id, manifest.csv_sha256, now=when)
    return text, signed


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
