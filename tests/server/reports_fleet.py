"""A fleet whose history is fed through the real ingest pipeline, for the report and event tests.

Every reading is put in a Report, sealed by fsm_protocol with the client's real key, wrapped in
the report mail and handed to ``Pipeline.process``; nothing is written to the database by hand.
"""

from __future__ import annotations

import smtplib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from fsm_devtools.corpus import ClientKit, ServerKit, mails_for, seal
from fsm_devtools.peers.mailstack import MailStack
from fsm_protocol.schema import Alert, Capabilities, Device, Report, Status, Supply
from fsm_server.ingest.pipeline import Pipeline


def reading(
    serial: str,
    at: datetime,
    *,
    ip: str = "10.0.0.10",
    total: int | None = None,
    black: int | None = None,
    supplies: Iterable[tuple[str, str | None, float | None]] = (),
    alerts: Iterable[str] = (),
    conditions: Iterable[str] = (),
    manufacturer: str = "Ricoh",
    model: str = "MP C3004",
    location: str | None = "2nd floor",
) -> Device:
    """One device reading: ``supplies`` as (kind, color, percent); ``black`` defaults to half the total."""
    black = total // 2 if black is None and total is not None else black
    counters = {} if total is None else {"total": total, "total_black": black}
    return Device(
        ip=ip,
        observed_at=at,
        manufacturer=manufacturer,
        model=model,
        serial=serial,
        firmware="1.0",
        mac=None,
        hostname=f"mfp-{serial.lower()}",
        location=location,
        pmd="ricoh",
        capabilities=Capabilities(color=True),
        counters=counters,
        supplies=[
            Supply(
                index=i + 1,
                description=f"{color or kind} {kind}".strip(),
                kind=kind,
                color=color,
                level=None if pct is None else round(pct),
                max=None if pct is None else 100,
                unit="percent",
                percent=pct,
                state="unknown" if pct is None else ("low" if pct <= 10 else "ok"),
            )
            for i, (kind, color, pct) in enumerate(supplies)
        ],
        status=Status(device="running", printer="idle", conditions=list(conditions)),
        alerts=[
            Alert(
                code=code,
                severity="critical" if code in ("jam", "door_open") else "warning",
                group="general",
                description=code.replace("_", " "),
            )
            for code in alerts
        ],
    )


def sealed_mail(
    client: ClientKit,
    server: ServerKit,
    seq: int,
    at: datetime,
    devices: list[Device],
    *,
    kind: str = "periodic",
    customer: str = "ACME",
    site: str = "HQ",
) -> bytes:
    """Report ``seq`` of ``client`` carrying ``devices``, sealed for ``server``, as the one mail the
    client sends for it."""
    report = Report(
        client_id=client.name,
        customer=customer,
        site=site,
        seq=seq,
        kind=kind,
        created_at=at,
        devices=devices,
    )  # type: ignore[arg-type]
    [mail] = mails_for(seal(report, client, server))
    return mail


def mail_alert_report(
    stack: MailStack, client: ClientKit, server: ServerKit, device: Device, *, seq: int = 1
) -> None:
    """Seal alert report ``seq`` carrying ``device`` and mail it to dealer@ through the mail stack's
    Postfix, as a client does; back once Dovecot has it."""
    mail = sealed_mail(client, server, seq, device.observed_at, [device], kind="alert")
    with smtplib.SMTP(stack.host, stack.smtp_port) as smtp:
        smtp.sendmail("client@fsm.test", ["dealer@fsm.test"], mail)
    stack.wait_for_messages(1, user="dealer")


@dataclass
class Feeder:
    """Seals reports of one client and loads them through the pipeline, numbering them in order."""

    pipeline: Pipeline
    client: ClientKit
    server: ServerKit
    customer: str = "ACME"
    site: str = "HQ"
    seq: int = 0
    verdicts: list[str] = field(default_factory=list)

    def send(self, at: datetime, devices: list[Device], *, kind: str = "periodic") -> None:
        self.seq += 1
        mail = sealed_mail(
            self.client, self.server, self.seq, at, devices, kind=kind, customer=self.customer, site=self.site
        )
        verdict = self.pipeline.process(mail, source="test")
        assert verdict.outcome == "loaded", verdict
        self.verdicts.append(verdict.outcome)


__all__ = ["Feeder", "mail_alert_report", "reading", "sealed_mail"]
