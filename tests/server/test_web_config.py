"""The [web] part of config.example.toml loads strictly and shows every setting; a bad one is
refused naming its key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import msgspec
import pytest

from fsm_protocol import configfile
from fsm_protocol.errors import ConfigError
from fsm_server.config import ServerConfig, WebSection

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def part() -> str:
    m = re.search(r"begin fsm-server-web\n(.*?)\n# =+ end fsm-server web", EXAMPLE.read_text(), re.S)
    assert m, "config.example.toml lacks the fsm-server-web markers"
    return m.group(1)


def test_the_example_loads_and_states_the_defaults() -> None:
    config = configfile.convert(tomllib.loads(part()), ServerConfig, source="config.example.toml")
    assert config.web == WebSection()


def test_every_setting_is_shown() -> None:
    text = part()
    for field in msgspec.structs.fields(WebSection):
        assert re.search(rf"^#? ?{field.encode_name} = ", text,
                         re.M), f"[web] {field.encode_name} is not shown"


@pytest.mark.parametrize(("key", "value"), [("idle_timeout_minutes", 0), ("absolute_timeout_hours", 10_000.0),
                                            ("throttle_free_failures", 0), ("port", 70000)])
def test_a_value_out_of_range_is_refused_naming_its_key(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=key):
        configfile.convert({"web": {key: value}}, ServerConfig, source="server.toml")
