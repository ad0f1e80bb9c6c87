"""Errors of the shared plumbing, under fsm_protocol's FsmError.

    FsmError
    └── TransportError             a relay (or the client's drop folder) refused a mail
        └── TransientTransportError  worth retrying later (4xx, connection refused)

Both programs send mail through ``fsm_common.smtp`` and catch these; the client re-exports them
among its own errors (``fsm_client.errors``).
"""

from __future__ import annotations

from typing import TypeVar

from fsm_protocol.errors import FsmError

_E = TypeVar("_E", bound=BaseException)


class TransportError(FsmError):
    reason = "transport_error"


class TransientTransportError(TransportError):
    reason = "transport_transient"


def in_chain(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of ``kind`` among ``exc`` and its causes (libraries wrap ssl errors)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


__all__ = ["TransientTransportError", "TransportError", "in_chain"]
