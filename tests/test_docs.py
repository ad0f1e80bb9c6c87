"""Every command and option of both programs is in the docs (sqlite-utils' test_docs.py pattern):
a command or option added without a word in docs/ fails here, naming it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from fsm_client.cli import main as client_main
from fsm_server.cli import main as server_main

DOCS = Path(__file__).resolve().parents[1] / "docs"
PROGRAMS = {"fsm-client": client_main, "fsm-server": server_main}


def docs_text() -> str:
    return "\n".join(p.read_text() for p in sorted(DOCS.glob("*.md")))


def commands(group: click.Group, prefix: str) -> Iterator[tuple[str, click.Command]]:
    """(``fsm-client pmd update``, its command) for every command below ``group``, groups included."""
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, command
        if isinstance(command, click.Group):
            yield from commands(command, path)


def all_commands() -> list[tuple[str, click.Command]]:
    return [c for program, group in PROGRAMS.items() for c in commands(group, program)]


def options(command: click.Command) -> list[str]:
    """The long options of ``command`` (its first long spelling; --help and --version left out)."""
    out = []
    for param in command.params:
        if isinstance(param, click.Option):
            longs = [o for o in param.opts + param.secondary_opts if o.startswith("--")]
            if longs and longs[0] not in ("--help", "--version"):
                out.append(longs[0])
    return out


def mentioned(path: str, text: str) -> bool:
    """The docs name the command: ``fsm-server devices`` written out (global options may stand
    between), or its words at the start of a code span (```pmd update```, as tables write them)."""
    program, *words = path.split()
    pattern = (
        rf"(?:{re.escape(program)}(?:\s+--?[\w-]+(?:[ =][^\s`]+)?)*\s+|`)"
        + r"\s+".join(map(re.escape, words))
        + r"(?![\w-])"
    )
    return re.search(pattern, text) is not None


@pytest.mark.parametrize(("path", "command"), all_commands(), ids=[p for p, _ in all_commands()])
def test_every_command_is_documented(path: str, command: click.Command) -> None:
    assert mentioned(path, docs_text()), f"`{path}` is not in docs/*.md: document it"


@pytest.mark.parametrize(("path", "command"), all_commands(), ids=[p for p, _ in all_commands()])
def test_every_option_is_documented(path: str, command: click.Command) -> None:
    text = docs_text()
    missing = [o for o in options(command) if not re.search(re.escape(o) + r"\b", text)]
    assert not missing, f"options of `{path}` not in docs/*.md: {', '.join(missing)}"


def test_every_command_has_help() -> None:
    missing = [path for path, command in all_commands() if not (command.help or "").strip()]
    assert not missing, f"commands without help text: {missing}"


def test_the_walk_finds_nested_commands() -> None:
    paths = [p for p, _ in all_commands()]
    assert "fsm-client pmd update" in paths and "fsm-server clients add" in paths
    assert not mentioned("fsm-server no-such-command", docs_text())
