"""Errors of the client, under fsm_protocol's FsmError.

    FsmError
    └── ClientError
        ├── SnmpError              a device or the SNMP engine failed
        │   ├── SnmpTimeout        no answer within timeout x retries ("unreachable")
        │   └── SnmpProtocolError  the agent answered something unusable
        ├── PmdError               a PMD file does not load (names file and key)
        ├── StoreError             the local store cannot be opened or migrated
        └── TransportError         the relay or drop folder refused an envelope
            └── TransientTransportError  worth retrying later (4xx, connection refused)
"""

from __future__ import annotations

from fsm_protocol.errors import FsmError


class ClientError(FsmError):
    reason = "client_error"


class SnmpError(ClientError):
    reason = "snmp_error"


class SnmpTimeout(SnmpError):
    reason = "unreachable"
    default_hint = "check the address, that UDP 161 is open to this host, and the community or SNMPv3 user"


class SnmpProtocolError(SnmpError):
    reason = "snmp_protocol_error"


class PmdError(ClientError):
    reason = "bad_pmd"
    exit_code = 3


class StoreError(ClientError):
    reason = "store_error"


class TransportError(ClientError):
    reason = "transport_error"


class TransientTransportError(TransportError):
    reason = "transport_transient"


__all__ = [
    "ClientError",
    "PmdError",
    "SnmpError",
    "SnmpProtocolError",
    "SnmpTimeout",
    "StoreError",
    "TransientTransportError",
    "TransportError",
]
