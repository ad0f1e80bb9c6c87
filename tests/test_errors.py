"""The exception trees: every error is an FsmError, carries a hint and a stable reason."""

from __future__ import annotations

import inspect

import click
import pytest
from click.testing import CliRunner

import fsm_client.errors
import fsm_protocol.errors
import fsm_server.errors
from fsm_common.cli import FsmGroup
from fsm_protocol.errors import ConfigError, FsmError


@pytest.mark.parametrize("module", [fsm_protocol.errors, fsm_client.errors, fsm_server.errors])
def test_every_exported_error_is_an_fsm_error_with_a_reason(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert names == sorted(names)
    for name in names:
        cls = getattr(module, name)
        assert inspect.isclass(cls) and issubclass(cls, FsmError), name
        assert cls.reason and cls.reason.islower(), name


def test_reason_codes_are_unique_per_class() -> None:
    seen: dict[str, str] = {}
    for module in (fsm_protocol.errors, fsm_client.errors, fsm_server.errors):
        for name in module.__all__:
            cls = getattr(module, name)
            if "reason" in cls.__dict__:
                assert cls.reason not in seen, f"{name} reuses {cls.reason!r} of {seen.get(cls.reason)}"
                seen[cls.reason] = name


def test_cli_prints_error_and_hint_and_uses_exit_code() -> None:
    @click.group(cls=FsmGroup)
    def cli() -> None:
        pass

    @cli.command()
    def boom() -> None:
        raise ConfigError("bad key 'snmp.port'", hint="set it to a number")

    result = CliRunner().invoke(cli, ["boom"])
    assert result.exit_code == 3
    assert "error: bad key 'snmp.port'" in result.output
    assert "hint: set it to a number" in result.output
