"""Helpers the client-runtime tests share: real key pairs, configs, opening what was sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsm_client.config import ClientConfig
from fsm_protocol import configfile
from fsm_protocol.chunking import join
from fsm_protocol.envelope import open_envelope, peek
from fsm_protocol.keys import (
    generate_client_keys,
    generate_server_keys,
    load_encryption_key,
    load_signing_key,
)
from fsm_protocol.schema import Report


class Keys:
    """A client key pair and a server key pair in ``directory``."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.client_key, self.client_pub = generate_client_keys(directory)
        self.server_key, self.server_pub = generate_server_keys(directory)
        self.verify_key = load_signing_key(self.client_key).public
        self.encryption_key = load_encryption_key(self.server_key)

    def open(self, chunks: list[bytes]) -> Report:
        """Join and open an envelope's chunks the way the server does."""
        return open_envelope(join(chunks), verify_key=self.verify_key, encryption_key=self.encryption_key)


def make_config(keys: Keys, **sections: dict[str, Any]) -> ClientConfig:
    """A strict ClientConfig (as loaded from TOML) using ``keys``, plus the given sections."""
    data: dict[str, Any] = {
        "client": {"id": "acme-hq", "customer": "ACME", "site": "HQ"},
        "keys": {"signing_key": str(keys.client_key), "server_public_key": str(keys.server_pub)},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return configfile.convert(data, ClientConfig, source="test")


def seq_of(chunk: bytes) -> tuple[int, int, int]:
    h = peek(chunk)
    return h.seq, h.chunk_index, h.chunk_count
