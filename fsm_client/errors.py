"""Errors of the client, under fsm_protocol's FsmError.

    FsmError
    └── ClientError
        ├── SnmpError              a device or the SNMP engine failed
        │   ├── SnmpTimeout        no answer within timeout x retries ("unreachable")
        │   ├── SnmpAuthError      SNMPv3 user, keys or protocols refused by the agent
        │   └── SnmpProtocolError  the agent answered something unusable
        ├── PmdError               a PMD file does not load (names file and key)
        │   └── UnknownPmd         no PMD of that id in the pool
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


class SnmpAuthError(SnmpError):
    reason = "snmp_auth_failed"
    default_hint = "check the SNMPv3 user name, auth/priv protocols and keys configured for this device"


class SnmpProtocolError(SnmpError):
    reason = "snmp_protocol_error"


class PmdError(ClientError):
    reason = "bad_pmd"
    exit_code = 3


class UnknownPmd(PmdError):
    reason = "unknown_pmd"
    exit_code = 1


class StoreError(ClientError):
    reason = "store_error"


class TransportError(ClientError):
    reason = "transport_error"


class TransientTransportError(TransportError):
    reason = "transport_transient"


__all__ = [
    "ClientError",
    "PmdError",
    "SnmpAuthError",
    "SnmpError",
    "SnmpProtocolError",
    "SnmpTimeout",
    "StoreError",
    "TransientTransportError",
    "TransportError",
    "UnknownPmd",
]
