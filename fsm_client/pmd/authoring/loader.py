"""Load PMD files from directories into a pool, checking every key and resolving ``extends``.

Errors name the file, the key path and the bad value, e.g.::

    pmd/hp.toml: identity.serial[0].transforms[1]: unknown transform 'seriall'; known: ...

Inheritance: a PMD starts from the PMD it extends (default ``printer-mib``) and adds its
own keys. Source lists (identity, capabilities, counters) and ``supplies.rules`` are
*concatenated*, the child's first: a vendor OID is tried before the generic one it falls
back to. Other keys are replaced by the child's. ``match`` is never inherited.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from fsm_protocol import vocabulary

from ...errors import PmdError
from . import transforms
from .matcher import PmdPool
from .model import ExtraSupply, LevelRule, Pmd, Source

BASE_ID = "printer-mib"
#: Largest PMD file we parse; a PMD is a few KB.
MAX_PMD_BYTES = 512 * 1024
_OID = re.compile(r"^[0-2](?:\.(?:0|[1-9]\d{0,9}))+$")
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_HINT = "fix that key; docs/pmd-format.md describes every key and its default"


def _fail(path: Path, key: str, problem: str) -> PmdError:
    return PmdError(f"{path}: {key}: {problem}" if key else f"{path}: {problem}", hint=_HINT)


def _read(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_PMD_BYTES:
            raise _fail(path, "", f"file is {path.stat().st_size} bytes, over the {MAX_PMD_BYTES} limit")
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise PmdError(f"{path}: not valid TOML: {exc}", hint="fix the syntax at that line") from exc
    except OSError as exc:
        raise PmdError(
            f"cannot read PMD file {str(path)!r}: {exc.strerror}", hint="check the file's permissions"
        ) from exc


def _at(raw: Any, key: str) -> Any:
    """The value at a msgspec key path (``identity.serial[0].oid``) of the parsed TOML."""
    for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", key):
        try:
            raw = raw[int(index)] if index else raw[name]
        except (KeyError, IndexError, TypeError):
            return None
    return raw


def _convert(path: Path, raw: dict[str, Any]) -> Pmd:
    try:
        return msgspec.convert(raw, Pmd)
    except msgspec.ValidationError as exc:
        # msgspec: "Object contains unknown field `oidx` - at `$.identity.serial[0]`"
        text = str(exc)
        m = re.search(r" - at `\$\.?(.*)`$", text)
        key = m.group(1) if m else ""
        problem = text[: m.start()] if m else text
        value = _at(raw, key) if key else None
        if value is not None and not isinstance(value, dict | list):
            problem += f" (value {value!r})"
        raise _fail(path, key, problem) from exc


def _check_oid(path: Path, key: str, oid: str) -> None:
    if not _OID.match(oid):
        raise _fail(path, key, f"{oid!r} is not a dotted numeric OID (like '1.3.6.1.2.1.1.1.0')")


def _check_transforms(path: Path, key: str, entries: list[Any]) -> None:
    for i, entry in enumerate(entries):
        try:
            transforms.build([entry])
        except ValueError as exc:
            raise _fail(path, f"{key}[{i}]", str(exc)) from exc


def _check_sources(path: Path, key: str, sources: list[Source]) -> None:
    for i, s in enumerate(sources):
        k = f"{key}[{i}]"
        given = [
            n
            for n, v in (
                ("oid", s.oid),
                ("oids", s.oids or None),
                ("value", s.value),
                ("builtin", s.builtin),
                ("lookup", s.lookup),
            )
            if v is not None
        ]
        if len(given) != 1:
            raise _fail(
                path,
                k,
                f"a source needs exactly one of oid, oids, value, builtin, lookup; got {given or 'none'}",
            )
        if s.lookup is not None:
            _check_oid(path, f"{k}.lookup.key_column", s.lookup.key_column)
            _check_oid(path, f"{k}.lookup.value_column", s.lookup.value_column)
        if s.oid is not None:
            _check_oid(path, f"{k}.oid", s.oid)
        for j, oid in enumerate(s.oids):
            _check_oid(path, f"{k}.oids[{j}]", oid)
        _check_transforms(path, f"{k}.transforms", s.transforms)


def _check(path: Path, pmd: Pmd) -> None:
    """Everything msgspec's types cannot say: OIDs, regexes, transforms, vocabulary names."""
    _check_match(path, pmd)
    for section in ("identity", "capabilities"):
        obj = getattr(pmd, section)
        for field in obj.__struct_fields__:
            _check_sources(path, f"{section}.{field}", getattr(obj, field))
    _check_counters(path, pmd)
    table = pmd.supplies.table
    _check_oid(path, "supplies.table.entry", table.entry)
    _check_oid(path, "supplies.table.colorant_entry", table.colorant_entry)
    _check_transforms(path, "supplies.table.description_transforms", table.description_transforms)
    for i, rule in enumerate(pmd.supplies.rules):
        _check_level_rule(path, f"supplies.rules[{i}]", rule)
    for i, extra in enumerate(pmd.supplies.extra):
        _check_extra_supply(path, f"supplies.extra[{i}]", extra)
    for field in ("device_status", "printer_entry", "console"):
        _check_oid(path, f"status.{field}", getattr(pmd.status, field))
    _check_oid(path, "alerts.entry", pmd.alerts.entry)


def _check_match(path: Path, pmd: Pmd) -> None:
    for i, prefix in enumerate(pmd.match.sys_object_id):
        _check_oid(path, f"match.sys_object_id[{i}]", prefix)
    for i, pattern in enumerate(pmd.match.sys_descr):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise _fail(path, f"match.sys_descr[{i}]", f"bad regular expression {pattern!r}: {exc}") from exc


def _check_counters(path: Path, pmd: Pmd) -> None:
    for name, sources in pmd.counters.items():
        if not vocabulary.is_counter_name(name):
            raise _fail(
                path,
                f"counters.{name}",
                f"{name!r} is not a canonical counter name; use one of "
                f"{', '.join(vocabulary.COUNTERS)} or a vendor extra named x_<name>",
            )
        _check_sources(path, f"counters.{name}", sources)


def _check_level_rule(path: Path, key: str, rule: LevelRule) -> None:
    for kind in rule.when_kind:
        if kind not in vocabulary.SUPPLY_KIND_NAMES:
            raise _fail(
                path, f"{key}.when_kind", f"{kind!r} is not a supply kind; see vocabulary.SUPPLY_KINDS"
            )
    for unit in rule.when_unit:
        if unit not in vocabulary.SUPPLY_UNITS.values():
            raise _fail(
                path, f"{key}.when_unit", f"{unit!r} is not a supply unit; see vocabulary.SUPPLY_UNITS"
            )
    for level in rule.levels:
        if not re.fullmatch(r"-?\d+", level):
            raise _fail(path, f"{key}.levels", f"key {level!r} is not an integer level")
    if rule.when_description is not None:
        try:
            re.compile(rule.when_description)
        except re.error as exc:
            raise _fail(path, f"{key}.when_description", str(exc)) from exc


def _check_extra_supply(path: Path, key: str, extra: ExtraSupply) -> None:
    if extra.kind not in vocabulary.SUPPLY_KIND_NAMES:
        raise _fail(path, f"{key}.kind", f"{extra.kind!r} is not a supply kind; see SUPPLY_KINDS")
    if extra.color is not None and extra.color not in vocabulary.COLORS:
        raise _fail(path, f"{key}.color", f"{extra.color!r} is not a colour; see vocabulary.COLORS")
    if extra.unit is not None and extra.unit not in vocabulary.SUPPLY_UNITS.values():
        raise _fail(path, f"{key}.unit", f"{extra.unit!r} is not a supply unit; see SUPPLY_UNITS")
    _check_sources(path, f"{key}.level", extra.level)
    _check_sources(path, f"{key}.max", extra.max)


#: Paths whose lists are fallbacks to concatenate (child first) instead of replace.
def _concatenates(path: tuple[str, ...]) -> bool:
    return (len(path) == 2 and path[0] in ("identity", "capabilities", "counters")) or path in (
        ("supplies", "rules"),
        ("supplies", "extra"),
    )


def _merge(parent: dict[str, Any], child: dict[str, Any], path: tuple[str, ...] = ()) -> dict[str, Any]:
    out = dict(parent)
    for key, value in child.items():
        here = (*path, key)
        old = out.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            out[key] = _merge(old, value, here)
        elif isinstance(old, list) and isinstance(value, list) and _concatenates(here):
            out[key] = value + old
        else:
            out[key] = value
    return out


def _own_raw(raw: dict[str, Any]) -> dict[str, Any]:
    """The file's keys as they take part in inheritance: ``manufacturer`` becomes the last
    of the file's own manufacturer sources, so a vendor's regex may refine it."""
    own = {k: v for k, v in raw.items() if k not in ("id", "extends", "match", "name", "chain")}
    if "manufacturer" in own:
        identity = dict(own.get("identity", {}))
        identity["manufacturer"] = [*identity.get("manufacturer", []), {"value": own.pop("manufacturer")}]
        own["identity"] = identity
    return own


def load_files(paths: Sequence[Path]) -> PmdPool:
    """Load the given files (a later file with the same id replaces an earlier one)."""
    raws: dict[str, tuple[Path, dict[str, Any], Pmd]] = {}
    for path in paths:
        pmd_id = path.stem
        if not _ID.match(pmd_id):
            raise PmdError(
                f"{path}: PMD id {pmd_id!r} (the file name) must be lower-case letters, digits, - or _",
                hint="rename the file",
            )
        raw = _read(path)
        if "chain" in raw:
            raise _fail(path, "chain", "is set by the loader, not by files")
        if "id" in raw and raw["id"] != pmd_id:
            raise _fail(path, "id", f"{raw['id']!r} differs from the file name {pmd_id!r}")
        pmd = _convert(path, raw)
        _check(path, pmd)
        raws[pmd_id] = (path, raw, pmd)
    if raws and BASE_ID not in raws:
        raise PmdError(
            f"the PMD pool has no {BASE_ID}.toml, which every PMD extends",
            hint="restore pmd/printer-mib.toml from the release",
        )

    resolved: dict[str, tuple[dict[str, Any], list[str]]] = {}

    def resolve(pmd_id: str, seen: tuple[str, ...]) -> tuple[dict[str, Any], list[str]]:
        if pmd_id in resolved:
            return resolved[pmd_id]
        path, raw, pmd = raws[pmd_id]
        parent_id = pmd.extends if pmd.extends is not None else (None if pmd_id == BASE_ID else BASE_ID)
        if parent_id is None:
            merged, chain = _own_raw(raw), [pmd_id]
        else:
            if parent_id in seen or parent_id == pmd_id:
                cycle = " -> ".join((*seen, pmd_id, parent_id))
                raise _fail(path, "extends", f"inheritance cycle {cycle}")
            if parent_id not in raws:
                raise _fail(path, "extends", f"no PMD {parent_id!r} in the pool")
            parent_raw, parent_chain = resolve(parent_id, (*seen, pmd_id))
            merged, chain = _merge(parent_raw, _own_raw(raw)), [pmd_id, *parent_chain]
        resolved[pmd_id] = (merged, chain)
        return merged, chain

    pool: dict[str, Pmd] = {}
    for pmd_id, (path, _raw, own) in raws.items():
        merged, chain = resolve(pmd_id, ())
        pmd = _convert(path, merged)
        pool[pmd_id] = msgspec.structs.replace(
            pmd, id=pmd_id, name=own.name or pmd_id, extends=own.extends, match=own.match, chain=chain
        )
    return PmdPool(pool, files={k: v[0] for k, v in raws.items()})


def load_pool(dirs: Sequence[Path]) -> PmdPool:
    """Every ``*.toml`` of ``dirs``; a later directory's file replaces an earlier one's."""
    files: dict[str, Path] = {}
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise PmdError(f"PMD directory {str(d)!r} does not exist", hint="check the path")
        for p in sorted(d.glob("*.toml")):
            files[p.stem] = p
    if not files:
        raise PmdError(
            f"no PMD files (*.toml) in {', '.join(map(str, dirs))}",
            hint="point to the pmd/ directory of the release",
        )
    return load_files(list(files.values()))


def default_dirs() -> list[Path]:
    """The PMD pool shipped with this release (``pmd/`` beside the packages)."""
    return [Path(__file__).resolve().parents[3] / "pmd"]


__all__ = ["BASE_ID", "MAX_PMD_BYTES", "default_dirs", "load_files", "load_pool"]
