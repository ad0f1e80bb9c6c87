"""What every transport offers the outbox: send one mail, close, use as an async context manager.

Failures are `fsm_common.errors.TransportError` (permanent: the same mail will be refused again,
a person must act) or its subclass `TransientTransportError` (worth retrying later: relay down,
4xx answer, drop folder not mounted). Each carries the relay's code and text in plain words.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self, runtime_checkable


@runtime_checkable
class Transport(Protocol):
    """Delivers report mails built by `fsm_protocol.mime.build_message`."""

    async def send(self, message: bytes, *, mail_from: str, rcpt_to: Sequence[str]) -> str:
        """Hand over one mail; return the relay's answer (or the file written)."""
        ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@runtime_checkable
class EnvelopeTransport(Transport, Protocol):
    """A transport that carries the sealed envelope itself, not a mail around it (HTTPS)."""

    async def send_envelope(self, data: bytes) -> str:
        """Hand over one envelope or chunk; return the receiver's receipt as text."""
        ...


class BaseTransport:
    """Gives a transport its async-context-manager behaviour from `aclose()`."""

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


__all__ = ["BaseTransport", "EnvelopeTransport", "Transport"]
