"""Load a TOML config file into a strict msgspec Struct, with errors naming file and key."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from .errors import ConfigError

T = TypeVar("T")


class Secret(str):
    """A string that never prints itself: passwords, communities, SNMPv3 keys.

    >>> s = Secret("hunter2")
    >>> repr(s), str(s), s.reveal()
    ('<secret>', '<secret>', 'hunter2')
    """

    def __repr__(self) -> str:
        return "<secret>"

    def __str__(self) -> str:
        return "<secret>"

    def __format__(self, spec: str) -> str:
        return "<secret>"

    def reveal(self) -> str:
        return str.__str__(self)


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Secret and isinstance(obj, str):
        return Secret(obj)
    if type_ is Path and isinstance(obj, str):
        return Path(obj)
    raise NotImplementedError(f"unsupported config type {type_!r}")


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Secret):
        return "<secret>"
    if isinstance(obj, Path):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj)!r}")


def convert(data: dict[str, Any], type_: type[T], *, source: str) -> T:
    """Turn parsed TOML into ``type_``; a wrong key or type raises ConfigError naming it."""
    try:
        return msgspec.convert(data, type_, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        # msgspec says e.g. "Object contains unknown field `x` - at `$.snmp`"
        raise ConfigError(
            f"{source}: {exc}",
            hint="fix that key (see config.example.toml for every setting and its type)",
        ) from exc


def load(path: str | os.PathLike[str], type_: type[T]) -> T:
    """Read ``path`` as TOML into ``type_`` (a Struct with ``forbid_unknown_fields``)."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {str(p)!r} does not exist", hint="pass --config FILE") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}", hint="fix the syntax at that line") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(p)!r}: {exc.strerror}") from exc
    return convert(data, type_, source=str(p))


def dump(obj: Any) -> dict[str, Any]:
    """The loaded config as plain data with every Secret masked (for `config show`, logs)."""
    return msgspec.to_builtins(obj, enc_hook=_enc_hook)  # type: ignore[no-any-return]


__all__ = ["Secret", "convert", "dump", "load"]
