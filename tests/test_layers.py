"""The layer rule, read from the source: every import (function-level and TYPE_CHECKING ones
included) of every module, checked against what its package may use, and no import cycles.

    fsm_protocol  <-  fsm_common  <-  fsm_client, fsm_server  <-  fsm_devtools (tests, bench, demo)

A shipped program never imports the other program or the test tooling; the shared plumbing
imports neither program; the wire contract imports nothing of ours.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: What each of our packages may import, besides itself (and the standard library and dependencies).
ALLOWED: dict[str, frozenset[str]] = {
    "fsm_protocol": frozenset(),
    "fsm_common": frozenset({"fsm_protocol"}),
    "fsm_client": frozenset({"fsm_protocol", "fsm_common"}),
    "fsm_server": frozenset({"fsm_protocol", "fsm_common"}),
    "fsm_devtools": frozenset({"fsm_protocol", "fsm_common", "fsm_client", "fsm_server"}),
}


@dataclass(frozen=True)
class Arrow:
    """One import: ``source`` (a module) imports ``target`` (a module or package) at ``line``."""

    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.source}:{self.line} imports {self.target}"


def modules_under(root: Path) -> dict[str, Path]:
    """Our modules by dotted name (a package by its name, for its ``__init__.py``)."""
    found: dict[str, Path] = {}
    for package in ALLOWED:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def arrows_of(name: str, path: Path, known: set[str]) -> list[Arrow]:
    """Every import of ours in one module, resolved to the module it loads."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if is_package else name.split(".")[:-1]
    arrows: list[Arrow] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here[: len(here) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from pkg import mod` loads pkg.mod; `from pkg import name` loads pkg
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        arrows += [Arrow(name, t, node.lineno) for t in dict.fromkeys(targets) if t.split(".")[0] in ALLOWED]
    return arrows


def import_graph(root: Path) -> list[Arrow]:
    modules = modules_under(root)
    known = set(modules)
    return [arrow for name, path in modules.items() for arrow in arrows_of(name, path, known)]


def forbidden(arrows: list[Arrow]) -> list[Arrow]:
    return [
        a
        for a in arrows
        if (src := a.source.split(".")[0]) != (dst := a.target.split(".")[0]) and dst not in ALLOWED[src]
    ]


def cycles(arrows: list[Arrow]) -> list[list[str]]:
    """The import cycles: strongly connected groups of more than one module (Tarjan). A module's
    import of its own package is left out: a package's ``__init__`` re-exports its modules."""
    graph: dict[str, set[str]] = {}
    for a in arrows:
        if not a.source.startswith(a.target + "."):
            graph.setdefault(a.source, set()).add(a.target)
            graph.setdefault(a.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


# -- the tree -------------------------------------------------------------------------------------


def test_no_package_imports_a_layer_above_it_or_the_test_tooling() -> None:
    bad = forbidden(import_graph(ROOT))
    assert not bad, "imports across the layer rule:\n" + "\n".join(map(str, bad))


def test_no_import_cycles() -> None:
    found = cycles(import_graph(ROOT))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_every_package_of_ours_has_a_place_in_the_rule() -> None:
    packages = {p.name for p in ROOT.glob("fsm_*") if (p / "__init__.py").is_file()}
    assert packages == set(ALLOWED)


# -- the test of the test: it sees what it must ------------------------------------------------------


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for package in ALLOWED:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("rel", "text", "target"),
    [
        ("fsm_server/events/mail.py", "from fsm_client.transports import smtp\n", "fsm_client.transports"),
        (
            "fsm_server/events/rules.py",
            "def groups():\n    from fsm_client.alerts import GROUPS\n",
            "fsm_client.alerts",
        ),
        ("fsm_client/pmd/walktest.py", "import fsm_devtools.peers.snmpsim\n", "fsm_devtools.peers.snmpsim"),
        (
            "fsm_common/smtp.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import fsm_client\n",
            "fsm_client",
        ),
        ("fsm_protocol/keys.py", "from fsm_common import files\n", "fsm_common"),
    ],
    ids=["server-to-client", "function-level", "client-to-devtools", "type-checking", "protocol-to-common"],
)
def test_a_forbidden_import_is_found(tmp_path: Path, rel: str, text: str, target: str) -> None:
    bad = forbidden(import_graph(_tree(tmp_path, {rel: text})))
    assert [a.target for a in bad] == [target]


def test_allowed_imports_and_relative_ones_pass(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "fsm_common/signals.py": "from fsm_protocol.errors import FsmError\n",
            "fsm_protocol/errors.py": "class FsmError(Exception): ...\n",
            "fsm_client/pmd/update.py": "from ..errors import ClientError\nfrom . import sets\n",
            "fsm_client/pmd/sets.py": "",
            "fsm_client/errors.py": "",
            "fsm_devtools/demo.py": "from fsm_server import cli\nfrom fsm_client import cli as c\n",
        },
    )
    arrows = import_graph(root)
    assert not forbidden(arrows)
    assert {a.target for a in arrows if a.source == "fsm_client.pmd.update"} == {
        "fsm_client.errors",
        "fsm_client.pmd.sets",
    }


def test_an_import_cycle_is_found_also_through_a_function_level_import(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "fsm_client/pmd/active.py": "from .update import check\n",
            "fsm_client/pmd/update.py": "def check():\n    from .active import _has_pmds\n",
            "fsm_client/pmd/sets.py": "from . import update\n",
        },
    )
    assert cycles(import_graph(root)) == [["fsm_client.pmd.active", "fsm_client.pmd.update"]]
