"""Helpers the client-runtime tests share: real key pairs, configs, opening what was sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fsm_client.config import ClientConfig
from fsm_common import configfile
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

    def __init__(self, directory: Path, *, existing: bool = False) -> None:
        """Generate both pairs in ``directory`` (or, with ``existing``, load the ones there)."""
        directory.mkdir(parents=True, exist_ok=True)
        if existing:
            self.client_key, self.client_pub = directory / "client.key", directory / "client.pub"
            self.server_key, self.server_pub = directory / "server.key", directory / "server.pub"
        else:
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
        if isinstance(values, dict):
            data.setdefault(name, {}).update(values)
        else:
            data[name] = values
    return configfile.convert(data, ClientConfig, source="test")


def seq_of(chunk: bytes) -> tuple[int, int, int]:
    h = peek(chunk)
    return h.seq, h.chunk_index, h.chunk_count


REPO = Path(__file__).resolve().parents[2]
#: A real recording (Brother HL-5370DW, from LibreNMS test data) the simulated printers start from.
BASE_RECORDING = REPO / "demo" / "snmp-walks" / "brother-hl-5370dw" / "device.snmprec"
ERROR_STATE_OID = "1.3.6.1.2.1.25.3.5.1.2.1"
#: hrPrinterDetectedErrorState bytes (bit 0 is the MSB of the first byte).
ERROR_STATE = {"ok": "00", "jammed": "04", "door_open": "08", "no_toner": "10"}


class Printers:
    """snmpsim serving copies of a real recording as printers whose error state a test sets.

    Each printer is a recording ``<name>.snmprec`` selected by the community ``<name>``;
    changing its error state replaces the recording snmpsim serves (``Snmpsim.replace``): a real
    agent whose state changes."""

    def __init__(self, names: list[str], workdir: Path, *, first_ip: str = "127.0.0.20") -> None:
        from fsm_client.snmp.snmpsim import Snmpsim, loopback_range

        workdir.mkdir(parents=True, exist_ok=True)
        self.names = names
        recordings = []
        for name in names:
            path = workdir / f"{name}.snmprec"
            path.write_text(BASE_RECORDING.read_text())
            recordings.append(path)
        self.ips = dict(zip(names, loopback_range(first_ip, len(names)), strict=True))
        self.sim = Snmpsim(recordings=recordings, endpoints=list(self.ips.values()))

    def start(self) -> Printers:
        self.sim.start()
        return self

    def stop(self) -> None:
        self.sim.stop()

    @property
    def port(self) -> int:
        return self.sim.port

    def set_state(self, name: str, state: str) -> None:
        path = self.sim.data_dir / f"{name}.snmprec"
        wanted = f"{ERROR_STATE_OID}|4x|{ERROR_STATE[state]}"
        lines = [
            wanted if line.startswith(ERROR_STATE_OID + "|") else line
            for line in path.read_text().splitlines()
        ]
        self.sim.replace(name, "\n".join(lines) + "\n")

    def client_sections(self, *, timeout: float = 0.5) -> dict[str, Any]:
        """[snmp], [[credentials]] and [[targets]]: each printer is a target at its own address,
        read with the credential (community) that selects its recording."""
        return {
            "snmp": {"port": self.port, "timeout": timeout, "retries": 0},
            "credentials": [{"name": n, "community": n} for n in self.names],
            "targets": [{"range": ip, "credentials": [n]} for n, ip in self.ips.items()],
        }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_toml(path: Path, sections: dict[str, Any]) -> Path:
    """Write config sections (tables and arrays of tables, one level deep) as a TOML file."""
    lines: list[str] = []
    for name, body in sections.items():
        items = body if isinstance(body, list) else [body]
        for item in items:
            lines.append(f"[[{name}]]" if isinstance(body, list) else f"[{name}]")
            lines += [
                f"{k} = {_toml_value(v)}"
                for k, v in item.items()
                if v is not None and not isinstance(v, dict)
            ]
            lines.append("")
    path.write_text("\n".join(lines))
    return path
