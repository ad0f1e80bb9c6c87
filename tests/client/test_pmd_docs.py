"""docs/pmd-format.md stays true: its annotated example loads, and it names every key,
transform, builtin and shipped PMD."""

from __future__ import annotations

import re
import shutil
import typing
from pathlib import Path

import msgspec
import pytest

from fsm_client.pmd.authoring import model
from fsm_client.pmd.authoring.loader import default_dirs, load_pool
from fsm_client.pmd.authoring.transforms import REGISTRY

DOC = Path(__file__).resolve().parents[2] / "docs" / "pmd-format.md"
TEXT = DOC.read_text(encoding="utf-8")


def example() -> str:
    m = re.search(r"```toml\n(# pmd/acme\.toml.*?)```", TEXT, re.S)
    assert m, "the annotated example is missing"
    return m.group(1)


def test_the_annotated_example_loads(tmp_path: Path) -> None:
    shutil.copy(default_dirs()[0] / "printer-mib.toml", tmp_path)
    (tmp_path / "acme.toml").write_text(example())
    acme = load_pool([tmp_path]).get("acme")
    assert acme.chain == ["acme", "printer-mib"]
    assert acme.supplies.rules[0].when_max == [3]


def _keys(struct: type[msgspec.Struct]) -> set[str]:
    return set(struct.__struct_fields__)


@pytest.mark.parametrize(
    "struct",
    [
        model.Pmd,
        model.Match,
        model.Identity,
        model.CapabilitySources,
        model.Source,
        model.Lookup,
        model.SupplyTable,
        model.Supplies,
        model.LevelRule,
        model.ExtraSupply,
        model.LevelMeaning,
        model.StatusSources,
        model.AlertSources,
    ],
)
def test_every_key_is_in_the_annotated_example(struct: type[msgspec.Struct]) -> None:
    text = example()
    missing = {
        k for k in _keys(struct) - {"id", "chain"} if not re.search(rf"(\b{k}\b\s*=|[.\[]{k}\])", text)
    }
    assert missing == set()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_transform_is_documented(name: str) -> None:
    assert f"| `{name}` |" in TEXT


@pytest.mark.parametrize("name", typing.get_args(model.Builtin))
def test_every_builtin_is_documented(name: str) -> None:
    assert f"| `{name}` |" in TEXT


def test_every_shipped_pmd_is_listed() -> None:
    for pmd in load_pool(default_dirs()):
        assert f"`{pmd.id}`" in TEXT, pmd.id
