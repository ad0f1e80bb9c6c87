"""Errors of the client, under fsm_protocol's FsmError.

FsmError
└── ClientError
    ├── SnmpError              a device or the SNMP engine failed
    │   ├── SnmpTimeout        no answer within timeout x retries ("unreachable")
    │   ├── SnmpAuthError      SNMPv3 user, keys or protocols refused by the agent
    │   ├── SnmpProtocolError  the agent answered something unusable
    │   └── SnmpsimError       the private snmpsim (`pmd test`) could not be started
    ├── PmdError               a PMD file does not load (names file and key)
    │   └── PmdBundleError     a PMD bundle is refused (format, limits, paths, hashes, a PMD)
    │       ├── PmdBundleNotNewer        its version is not newer than the highest installed
    │       ├── PmdBundleSignatureError  the publisher's signature does not verify
    │       └── PmdBundleUnknownKey      signed by a key that is not pinned in [pmd.update]
    ├── PmdUpdateError         fetching or installing an update failed (worth retrying)
    │   └── UnknownPmd         no PMD of that id in the pool
    ├── StoreError             the local store cannot be opened or migrated
    │   ├── AlreadyRunning     another `fsm-client run` holds the data dir
    │   └── StoreFull          the data disk is full: nothing more can be stored until there is room

TransportError and TransientTransportError (a relay or the drop folder refused an envelope;
worth retrying later) are the shared plumbing's (fsm_common.errors), re-exported here.
"""

from __future__ import annotations

from fsm_common.errors import TransientTransportError, TransportError
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


class SnmpsimError(SnmpError):
    """snmpsim could not be started (the message names the log and the timeout)."""

    reason = "snmpsim_error"
    default_hint = "run scripts/setup (or set FSM_SNMPSIM_VENV), or read the recording directly (--direct)"


class PmdError(ClientError):
    reason = "bad_pmd"
    exit_code = 3


class UnknownPmd(PmdError):
    reason = "unknown_pmd"
    exit_code = 1


class PmdBundleError(PmdError):
    """A PMD bundle is refused; the active set is left as it was."""

    reason = "pmd_bundle_rejected"
    exit_code = 1


class PmdBundleNotNewer(PmdBundleError):
    reason = "pmd_bundle_not_newer"


class PmdBundleSignatureError(PmdBundleError):
    reason = "pmd_bundle_bad_signature"
    default_hint = "the bundle was altered after signing; download it again from the publisher"


class PmdBundleUnknownKey(PmdBundleError):
    reason = "pmd_bundle_unknown_key"


class PmdUpdateError(ClientError):
    """Fetching or installing a PMD update failed for a reason that may pass (network, disk)."""

    reason = "pmd_update_failed"


class StoreError(ClientError):
    reason = "store_error"


class AlreadyRunning(StoreError):
    reason = "already_running"
    exit_code = 3


class StoreFull(StoreError):
    reason = "disk_full"
    default_hint = (
        "free space on that disk (or move the data dir to a larger one); everything stored "
        "so far is kept, and fsm-client goes on by itself once writes succeed again"
    )


__all__ = [
    "AlreadyRunning",
    "ClientError",
    "PmdBundleError",
    "PmdBundleNotNewer",
    "PmdBundleSignatureError",
    "PmdBundleUnknownKey",
    "PmdError",
    "PmdUpdateError",
    "SnmpAuthError",
    "SnmpError",
    "SnmpProtocolError",
    "SnmpTimeout",
    "SnmpsimError",
    "StoreError",
    "StoreFull",
    "TransientTransportError",
    "TransportError",
    "UnknownPmd",
]
