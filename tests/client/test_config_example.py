"""The client part of config.example.toml loads strictly and shows every setting."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import msgspec

from fsm_client.config import ClientConfig
from fsm_common import configfile

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def client_part() -> str:
    text = EXAMPLE.read_text()
    m = re.search(r"begin fsm-client\n(.*?)\n# =+ end fsm-client", text, re.S)
    assert m, "config.example.toml lacks the fsm-client begin/end markers"
    return m.group(1)


def test_the_client_example_loads_into_the_strict_config() -> None:
    config = configfile.convert(tomllib.loads(client_part()), ClientConfig, source="config.example.toml")
    assert config.schedule.report == "daily 06:00" and config.transport.kind == "smtp"


def test_the_client_example_states_the_defaults() -> None:
    loaded = configfile.dump(configfile.convert(tomllib.loads(client_part()), ClientConfig, source="x"))
    defaults = configfile.dump(ClientConfig())
    for section in ("schedule", "alerts", "transport", "smtp", "filedrop", "outbox", "snmp", "client"):
        assert loaded[section] == defaults[section], section


def test_every_client_runtime_setting_is_shown() -> None:
    text = client_part()
    for section in ("schedule", "alerts", "transport", "smtp", "filedrop", "outbox"):
        struct = type(getattr(ClientConfig(), section))
        for field in msgspec.structs.fields(struct):
            assert re.search(rf"^#? ?{field.encode_name} = ", text, re.M), f"[{section}] {field.encode_name}"
