"""Errors of the shared plumbing, under fsm_protocol's FsmError.

    FsmError
    └── TransportError             a relay (or the client's drop folder) refused a mail
        └── TransientTransportError  worth retrying later (4xx, connection refused)

Both programs send mail through ``fsm_common.smtp`` and catch these; the client re-exports them
among its own errors (``fsm_client.errors``).
"""

from __future__ import annotations

from fsm_protocol.errors import FsmError


class TransportError(FsmError):
    reason = "transport_error"


class TransientTransportError(TransportError):
    reason = "transport_transient"


__all__ = ["TransientTransportError", "TransportError"]
