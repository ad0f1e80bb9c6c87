"""Build and parse the report mail: a short text part and the envelope (or chunk) as an attachment.

This module is the boundary for the stdlib ``email`` package: its exceptions and defects
become MimeError here. The mail's ``X-Fsm-*`` headers and Subject let an operator read a
mailbox at a glance; the envelope's own header is what counts, and the two must agree.

>>> from fsm_protocol.header import _EXAMPLE, pack
>>> env = pack(_EXAMPLE) + bytes(16) + bytes(64)
>>> mail = parse_message(build_message(env, from_addr="c@x.test", to_addr="d@y.test"))
>>> mail.envelope == env, mail.client_id, mail.seq, (mail.chunk_index, mail.chunk_count)
(True, 'acme-hq', 42, (1, 1))
"""

from __future__ import annotations

import binascii
import email.errors
import email.policy
import email.utils
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser

from .crypto import sha256
from .envelope import peek
from .errors import MimeError, NotFsmMail, TooLarge
from .header import MAGIC, Header
from .schema import utcnow

#: Largest mail `parse_message` reads by default: a 5 MiB chunk is about 7 MiB as base64.
DEFAULT_MAX_MAIL_BYTES = 16 * 1024 * 1024
ATTACHMENT_SUFFIX = ".fsm"
FSM_HEADERS = ("X-Fsm-Version", "X-Fsm-Client", "X-Fsm-Seq", "X-Fsm-Kind", "X-Fsm-Chunk")


@dataclass(frozen=True, slots=True)
class FsmMail:
    """What a report mail carries: the envelope (or chunk) and where it belongs."""

    envelope: bytes
    client_id: str
    seq: int
    kind: str
    chunk_index: int
    chunk_count: int
    message_id: str | None


def attachment_name(header: Header) -> str:
    """``<client>-<seq>-<i>of<n>.fsm``: the attachment's file name (and the file-drop stem)."""
    return f"{header.client_id}-{header.seq}-{header.chunk_index}of{header.chunk_count}{ATTACHMENT_SUFFIX}"


def _subject(header: Header) -> str:
    part = f" (part {header.chunk_index} of {header.chunk_count})" if header.is_chunk else ""
    return f"fsm {header.kind} report {header.client_id} #{header.seq}{part}"


def _body(header: Header, size: int) -> str:
    return (
        "This mail carries a sealed report from fsm-client for fsm-server.\n\n"
        f"Client:   {header.client_id}\n"
        f"Sequence: {header.seq}\n"
        f"Kind:     {header.kind}\n"
        f"Part:     {header.chunk_index} of {header.chunk_count}\n"
        f"Envelope: {attachment_name(header)} ({size} bytes, encrypted and signed)\n\n"
        "Only the dealer's fsm-server can open it. Please do not reply or forward.\n"
    )


def build_message(
    envelope_or_chunk: bytes,
    *,
    from_addr: str,
    to_addr: str,
    now: datetime | None = None,
    message_id: str | None = None,
) -> bytes:
    """One RFC 5322 message (CRLF line ends) carrying one envelope or chunk.

    The default Message-ID is derived from the envelope's bytes, so building the same
    envelope twice (a resend) gives the same id.
    """
    header = peek(envelope_or_chunk, max_bytes=len(envelope_or_chunk))
    domain = from_addr.rpartition("@")[2] or "fsm.invalid"
    if message_id is None:
        digest = sha256(envelope_or_chunk)[:8].hex()
        part = f"{header.chunk_index}of{header.chunk_count}"
        message_id = f"<fsm.{header.client_id}.{header.seq}.{part}.{digest}@{domain}>"
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = from_addr
    msg["To"] = to_addr
    msg["Date"] = email.utils.format_datetime(now if now is not None else utcnow())
    msg["Message-ID"] = message_id
    msg["Subject"] = _subject(header)
    msg["X-Fsm-Version"] = str(header.version)
    msg["X-Fsm-Client"] = header.client_id
    msg["X-Fsm-Seq"] = str(header.seq)
    msg["X-Fsm-Kind"] = header.kind
    msg["X-Fsm-Chunk"] = f"{header.chunk_index}/{header.chunk_count}"
    msg.set_content(_body(header, len(envelope_or_chunk)))
    msg.add_attachment(
        envelope_or_chunk, maintype="application", subtype="octet-stream", filename=attachment_name(header)
    )
    return msg.as_bytes()


def _decode_part(part: Message) -> bytes:
    cte = str(part.get("Content-Transfer-Encoding", "7bit")).strip().lower()
    if cte == "base64":
        text = part.get_payload(decode=False)
        if not isinstance(text, str):
            raise MimeError("the attachment has no body")
        try:
            return binascii.a2b_base64("".join(text.split()).encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError) as exc:
            raise MimeError(
                f"the attachment's base64 is damaged: {exc}",
                hint="a relay or archive mangled the mail; ask the client to resend",
            ) from exc
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raise MimeError("the attachment has no body")
    return payload


def _envelopes(msg: Message) -> list[bytes]:
    """Every attachment that is (or claims to be, by name) an fsm envelope."""
    found = []
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() == "text":
            continue
        named = (part.get_filename() or "").endswith(ATTACHMENT_SUFFIX)
        if named or part.get_content_type() == "application/octet-stream":
            data = _decode_part(part)
            if named or data.startswith(MAGIC):
                found.append(data)
    return found


def parse_message(raw: bytes, *, max_bytes: int = DEFAULT_MAX_MAIL_BYTES) -> FsmMail:
    """Take the envelope out of a report mail; the size is checked before anything is parsed.

    Raises TooLarge, NotFsmMail (no fsm headers and no envelope), MimeError (mangled or
    inconsistent), and peek's errors for a damaged envelope.
    """
    if len(raw) > max_bytes:
        raise TooLarge(
            f"mail is {len(raw)} bytes, over the limit of {max_bytes}",
            hint="raise max_mail_bytes only if the clients' chunk size is larger",
        )
    try:
        msg = BytesParser(policy=email.policy.default).parsebytes(raw)
        stated = {name: str(msg[name]).strip() for name in FSM_HEADERS if msg[name] is not None}
        message_id = str(msg["Message-ID"]).strip() if msg["Message-ID"] is not None else None
        envelopes = _envelopes(msg)
    except (email.errors.MessageError, ValueError, TypeError, LookupError) as exc:
        raise MimeError(
            f"the mail cannot be parsed: {exc}", hint="it is kept in quarantine for a person to read"
        ) from exc
    if not envelopes:
        if not stated:
            raise NotFsmMail("the mail has no fsm envelope attachment and no X-Fsm headers")
        raise MimeError(
            f"the mail names client {stated.get('X-Fsm-Client')!r} seq {stated.get('X-Fsm-Seq')!r} "
            "but carries no envelope attachment",
            hint="a relay or mail filter removed the attachment; ask the client to resend",
        )
    if len(envelopes) > 1:
        raise MimeError(f"the mail carries {len(envelopes)} envelope attachments; fsm sends one per mail")
    envelope = envelopes[0]
    header = peek(envelope, max_bytes=max_bytes)
    expected = {
        "X-Fsm-Version": str(header.version),
        "X-Fsm-Client": header.client_id,
        "X-Fsm-Seq": str(header.seq),
        "X-Fsm-Kind": header.kind,
        "X-Fsm-Chunk": f"{header.chunk_index}/{header.chunk_count}",
    }
    for name, value in stated.items():
        if value != expected[name]:
            raise MimeError(
                f"mail header {name}: {value!r} disagrees with the envelope, which says {expected[name]!r}",
                hint="the mail was edited after sending; the envelope is authoritative but kept for review",
            )
    return FsmMail(
        envelope=envelope,
        client_id=header.client_id,
        seq=header.seq,
        kind=header.kind,
        chunk_index=header.chunk_index,
        chunk_count=header.chunk_count,
        message_id=message_id,
    )


__all__ = [
    "ATTACHMENT_SUFFIX",
    "DEFAULT_MAX_MAIL_BYTES",
    "FSM_HEADERS",
    "FsmMail",
    "attachment_name",
    "build_message",
    "parse_message",
]
