"""The client's TOML config, declared once with its defaults (see config.example.toml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import msgspec

from fsm_protocol import configfile
from fsm_protocol.configfile import Secret


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ClientSection(_Section):
    id: str = "fsm-client"
    customer: str = ""
    site: str = ""
    data_dir: Path | None = None  # default: --data-dir, else ./var/client


class KeysSection(_Section):
    signing_key: Path | None = None  # default: <data_dir>/keys/client.key
    server_public_key: Path | None = None  # the dealer's server.pub


class Credential(_Section):
    """One way to talk to a device; targets name these by ``name``. PMDs never hold them."""

    name: str
    version: Literal["1", "2c", "3"] = "2c"
    community: Secret = Secret("public")
    user: str = ""
    auth_protocol: Literal["", "MD5", "SHA", "SHA-224", "SHA-256", "SHA-384", "SHA-512"] = ""
    auth_key: Secret = Secret("")
    priv_protocol: Literal["", "DES", "AES", "AES-128", "AES-192", "AES-256"] = ""
    priv_key: Secret = Secret("")
    context: str = ""


class Target(_Section):
    range: str  # CIDR, a.b.c.d-e, a single address or a host name
    exclude: list[str] = []
    credentials: list[str] = []  # tried in order; empty means all, in declaration order


class SnmpSection(_Section):
    port: int = 161
    timeout: float = 2.0
    retries: int = 1
    concurrency: int = 32  # devices read at once
    discovery_rate: int = 5000  # probes per second during a sweep


class ClientConfig(_Section):
    client: ClientSection = msgspec.field(default_factory=ClientSection)
    keys: KeysSection = msgspec.field(default_factory=KeysSection)
    snmp: SnmpSection = msgspec.field(default_factory=SnmpSection)
    credentials: list[Credential] = msgspec.field(
        default_factory=lambda: [Credential(name="public")]
    )
    targets: list[Target] = []


def load_config(path: str | Path | None) -> ClientConfig:
    """Load the client config; with no path, every default."""
    if path is None:
        return ClientConfig()
    return configfile.load(path, ClientConfig)


__all__ = [
    "ClientConfig",
    "ClientSection",
    "Credential",
    "KeysSection",
    "SnmpSection",
    "Target",
    "load_config",
]
