"""The exception trees: every error is an FsmError, carries a hint and a stable reason."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import click
import pytest
from click.testing import CliRunner

import fsm_client
import fsm_client.errors
import fsm_common
import fsm_devtools
import fsm_protocol
import fsm_protocol.errors
import fsm_server
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


def every_fsm_error() -> list[type[FsmError]]:
    """Every FsmError subclass defined in our packages, found by importing every module (not only
    the ones an ``errors.py`` exports: ``SeqConflict``, ``DuplicateKey``, ``MailStackError``...)."""
    for package in (fsm_protocol, fsm_common, fsm_client, fsm_server, fsm_devtools):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(info.name)
    found: list[type[FsmError]] = []
    pending: list[type[FsmError]] = [FsmError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending += cls.__subclasses__()
    return sorted((c for c in found if c.__module__.startswith("fsm_")), key=lambda c: c.__qualname__)


ALL_ERRORS = every_fsm_error()


def test_the_walk_finds_the_errors_no_all_lists() -> None:
    names = {cls.__name__ for cls in ALL_ERRORS}
    assert {"SeqConflict", "DuplicateKey", "MailStackError", "TransientTransportError"} <= names


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_every_fsm_error_has_a_reason_and_becomes_error_and_hint_lines(cls: type[FsmError]) -> None:
    assert cls.reason and cls.reason.replace("_", "").isalnum() and cls.reason.islower(), cls.reason
    assert cls.exit_code in (1, 3)

    @click.group(cls=FsmGroup)
    def cli() -> None:
        pass

    @cli.command()
    def boom() -> None:
        raise cls("it went wrong: 'x'", hint="do this instead")

    result = CliRunner().invoke(cli, ["boom"])
    assert result.exit_code == cls.exit_code
    assert "error: it went wrong: 'x'" in result.output
    assert "hint: do this instead" in result.output


def test_reason_codes_are_unique_across_every_fsm_error() -> None:
    seen: dict[str, str] = {}
    for cls in ALL_ERRORS:
        if "reason" in cls.__dict__:
            other = seen.get(cls.reason)
            assert other is None, f"{cls.__qualname__} reuses {cls.reason!r} of {other}"
            seen[cls.reason] = cls.__qualname__
