"""Loading PMD files: strict keys, errors naming file:key and the value, `extends`."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsm_client.errors import PmdError
from fsm_client.pmd.authoring.loader import default_dirs, load_pool
from fsm_protocol import vocabulary

BASE = """
name = "base"
[identity]
serial = [{ oid = "1.3.6.1.2.1.43.5.1.1.17.1" }]
model = [{ oid = "1.3.6.1.2.1.1.1.0" }]
[counters]
total = [{ oid = "1.3.6.1.2.1.43.10.2.1.4.1.1" }]
"""


@pytest.fixture
def pool_dir(tmp_path: Path) -> Path:
    (tmp_path / "printer-mib.toml").write_text(BASE)
    return tmp_path


def write(d: Path, name: str, text: str) -> Path:
    p = d / f"{name}.toml"
    p.write_text(text)
    return p


def test_shipped_pool_loads_and_every_pmd_extends_printer_mib() -> None:
    pool = load_pool(default_dirs())
    assert len(pool) >= 20
    for pmd in pool:
        assert pmd.chain[-1] == "printer-mib"
        # every field keeps the generic fallbacks after the vendor's own sources
        assert pmd.counters["total"][-1].oid == "1.3.6.1.2.1.43.10.2.1.4.1.1"


def test_shipped_pool_covers_the_families_of_issue_4() -> None:
    ids = {p.id for p in load_pool(default_dirs())}
    families = {
        "hp",
        "canon",
        "ricoh",
        "lanier",
        "savin",
        "gestetner",
        "nrg",
        "kyocera",
        "utax",
        "konica-minolta",
        "develop",
        "xerox",
        "fujifilm",
        "fuji-xerox",
        "sharp",
        "brother",
        "epson",
        "lexmark",
        "dell",
        "samsung",
        "oki",
        "toshiba",
        "zebra",
        "tsc",
    }
    assert families <= ids


def test_counter_names_of_shipped_pmds_are_in_the_vocabulary() -> None:
    for pmd in load_pool(default_dirs()):
        assert all(vocabulary.is_counter_name(n) for n in pmd.counters), pmd.id


def test_child_sources_come_before_the_inherited_ones(pool_dir: Path) -> None:
    write(
        pool_dir,
        "acme",
        """
manufacturer = "ACME"
[match]
sys_object_id = ["1.3.6.1.4.1.99999"]
[identity]
serial = [{ oid = "1.3.6.1.4.1.99999.1.0" }]
""",
    )
    acme = load_pool([pool_dir]).get("acme")
    assert [s.oid for s in acme.identity.serial] == ["1.3.6.1.4.1.99999.1.0", "1.3.6.1.2.1.43.5.1.1.17.1"]
    assert acme.identity.manufacturer[0].value == "ACME"
    assert acme.chain == ["acme", "printer-mib"]
    assert acme.match.sys_object_id == ["1.3.6.1.4.1.99999"]


def test_match_rules_are_not_inherited(pool_dir: Path) -> None:
    write(pool_dir, "acme", '[match]\nsys_descr = ["^ACME"]\n')
    write(pool_dir, "acme-brand", 'extends = "acme"\nmanufacturer = "Brand"\n')
    pool = load_pool([pool_dir])
    assert pool.get("acme-brand").match.sys_descr == []
    assert pool.get("acme-brand").chain == ["acme-brand", "acme", "printer-mib"]


def test_a_later_directory_replaces_a_file_of_the_same_id(pool_dir: Path, tmp_path: Path) -> None:
    write(pool_dir, "acme", 'name = "old"\n')
    override = tmp_path / "override"
    override.mkdir()
    write(override, "acme", 'name = "new"\n')
    assert load_pool([pool_dir, override]).get("acme").name == "new"


@pytest.mark.parametrize(
    "text, key, value",
    [
        ('[identity]\nserial = [{ oidx = "1.3.6.1" }]\n', "identity.serial[0]", "oidx"),
        ('[identity]\nserial = [{ oid = "1.3.6.x" }]\n', "identity.serial[0].oid", "'1.3.6.x'"),
        (
            '[identity]\nserial = [{ oid = "1.3.6.1", transforms = ["seriall"] }]\n',
            "identity.serial[0].transforms[0]",
            "'seriall'",
        ),
        ('[counters]\npages = [{ oid = "1.3.6.1" }]\n', "counters.pages", "'pages'"),
        (
            '[identity]\nserial = [{ oid = "1.3.6.1", value = "x" }]\n',
            "identity.serial[0]",
            "['oid', 'value']",
        ),
        ('[match]\nsys_descr = ["(unclosed"]\n', "match.sys_descr[0]", "'(unclosed'"),
        ('[supplies]\nlow_percent = "ten"\n', "supplies.low_percent", "(value 'ten')"),
        ('[[supplies.rules]]\nwhen_kind = ["tonerr"]\n', "supplies.rules[0].when_kind", "'tonerr'"),
        ('[[supplies.rules]]\nlevels = { high = { state = "ok" } }\n', "supplies.rules[0].levels", "'high'"),
        ('[[supplies.rules]]\nlevels = { 3 = { state = "full" } }\n', "supplies.rules[0].levels", "full"),
    ],
)
def test_errors_name_file_key_and_value(pool_dir: Path, text: str, key: str, value: str) -> None:
    path = write(pool_dir, "bad", text)
    with pytest.raises(PmdError) as err:
        load_pool([pool_dir])
    assert str(path) in err.value.message
    assert key in err.value.message
    assert value in err.value.message
    assert err.value.hint


def test_extends_cycle_is_reported(pool_dir: Path) -> None:
    write(pool_dir, "a", 'extends = "b"\n')
    write(pool_dir, "b", 'extends = "a"\n')
    with pytest.raises(PmdError, match="inheritance cycle"):
        load_pool([pool_dir])


def test_extends_an_unknown_pmd_is_reported(pool_dir: Path) -> None:
    write(pool_dir, "a", 'extends = "nowhere"\n')
    with pytest.raises(PmdError, match=r"a\.toml: extends: no PMD 'nowhere'"):
        load_pool([pool_dir])


def test_invalid_toml_names_the_file(pool_dir: Path) -> None:
    write(pool_dir, "broken", "name = \n")
    with pytest.raises(PmdError, match=r"broken\.toml: not valid TOML"):
        load_pool([pool_dir])


def test_a_pool_without_the_base_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "acme", 'name = "x"\n')
    with pytest.raises(PmdError, match=r"printer-mib\.toml"):
        load_pool([tmp_path])


def test_an_empty_or_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PmdError, match="no PMD files"):
        load_pool([tmp_path])
    with pytest.raises(PmdError, match="does not exist"):
        load_pool([tmp_path / "nope"])
