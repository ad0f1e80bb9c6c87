"""Load a TOML config file into a strict msgspec Struct, with errors naming file and key."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from fsm_protocol.errors import ConfigError

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


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class Duration:
    """How often something runs, with a unit: ``"90s"``, ``"30m"``, ``"6h"``, ``"1d"``; ``"0"``,
    ``"off"`` (or the number 0) is never. A config key of this type refuses anything else, and
    a period under a minute or over a year (a loop that never rests, or never runs), naming the key.

    >>> Duration("6h").seconds, Duration("off").seconds, str(Duration("90m")), bool(Duration(0))
    (21600.0, 0.0, '90m', False)
    """

    __slots__ = ("seconds", "text")
    MIN_SECONDS = 60.0
    MAX_SECONDS = 366 * 86400.0

    def __init__(self, value: str | float) -> None:
        text = str(value).strip().lower()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd])", text)
        if text in ("0", "off"):
            seconds = 0.0
        elif isinstance(value, bool) or m is None:
            # a number is quoted back by ``explain`` already, a string is not
            shown = f"{value!r} is not" if isinstance(value, str) else "not"
            raise ValueError(
                f"{shown} a duration: give a number and a unit (s, m, h, d), e.g. '6h', or 'off'"
            )
        else:
            seconds = float(m[1]) * _UNITS[m[2]]
            if not self.MIN_SECONDS <= seconds <= self.MAX_SECONDS:
                raise ValueError(f"{value!r} is out of range: from 1m to 366d, or 'off'")
        self.text, self.seconds = text, seconds

    def __bool__(self) -> bool:
        return self.seconds > 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Duration) and other.seconds == self.seconds

    def __hash__(self) -> int:
        return hash(self.seconds)

    def __repr__(self) -> str:
        return f"Duration({self.text!r})"

    def __str__(self) -> str:
        return self.text


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Secret and isinstance(obj, str):
        return Secret(obj)
    if type_ is Duration and isinstance(obj, (str, int, float)):
        return Duration(obj)
    if type_ is Path and isinstance(obj, str):
        return Path(obj)
    raise NotImplementedError(f"unsupported config type {type_!r}")


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Secret):
        return "<secret>"
    if isinstance(obj, (Path, Duration)):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj)!r}")


#: msgspec ends every validation message with where it happened: "... - at `$.ingest.batch`"
_AT = re.compile(r"^(?P<what>.*) - at `\$(?P<path>[^`]*)`$", re.S)
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _value_at(data: Any, path: str) -> tuple[bool, Any]:
    """The parsed value at a msgspec path such as ``.mailboxes[0].port``, if it is there."""
    for name, index in _STEP.findall(path):
        if name and isinstance(data, dict) and name in data:
            data = data[name]
        elif index and isinstance(data, list) and int(index) < len(data):
            data = data[int(index)]
        else:
            return False, None
    return True, data


def explain(exc: msgspec.ValidationError, data: Any) -> str:
    """A validation error as ``key: what is wrong``, the key dotted as in ``ingest.batch``.

    >>> from typing import Annotated
    >>> Ingest = msgspec.defstruct("Ingest", [("batch", Annotated[int, msgspec.Meta(ge=1)], 50)])
    >>> Config = msgspec.defstruct("Config", [("ingest", Ingest)])
    >>> try:
    ...     msgspec.convert({"ingest": {"batch": 0}}, Config)
    ... except msgspec.ValidationError as exc:
    ...     print(explain(exc, {"ingest": {"batch": 0}}))
    ingest.batch = 0: expected `int` >= 1
    """
    m = _AT.match(str(exc))
    if not m:
        return str(exc)
    what, path = m["what"], m["path"]
    key = path.lstrip(".")
    field = re.fullmatch(r"Object (missing required|contains unknown) field `([^`]+)`", what)
    if field:
        full = f"{key}.{field[2]}" if key else field[2]
        return (
            f"{full}: missing (this setting is required)"
            if field[1] == "missing required"
            else f"{full}: not a setting (misspelt, or in the wrong [section]?)"
        )
    found, value = _value_at(data, path)
    # only numbers are quoted back: a string may be a password in the wrong place
    if found and isinstance(value, (int, float)) and not isinstance(value, bool):
        key = f"{key} = {value!r}"
    if what == "Expected `str` of length >= 1":
        what = "is empty (a value is required)"
    elif what.startswith("Expected"):
        what = "e" + what[1:]
    return f"{key}: {what}" if key else what


def convert(data: dict[str, Any], type_: type[T], *, source: str) -> T:
    """Turn parsed TOML into ``type_``; a wrong key, type or out-of-range value raises ConfigError
    naming the file and the key."""
    try:
        return msgspec.convert(data, type_, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(
            f"{source}: {explain(exc, data)}",
            hint="fix that key (config.example.toml shows every setting with its type and range)",
        ) from exc


def load_or_defaults(path: str | os.PathLike[str] | None, type_: type[T]) -> T:
    """The config at ``path``; with no path, every default of ``type_``."""
    return type_() if path is None else load(path, type_)


def choose_data_dir(
    given: str | None,
    given_by: str,
    configured: Path | None,
    *,
    section: str,
    choice: ConfigChoice,
    default: Path,
) -> tuple[Path, str]:
    """A program's data directory and what chose it (for messages): ``--data-dir`` (or its
    environment variable, ``given_by``), else ``data_dir`` in ``section`` of the config, else
    ``default``."""
    if given:
        return Path(given), given_by
    if configured:
        return configured, f"{section} data_dir of {choice.path}"
    return default, f"the default, ./{default}"


def load(path: str | os.PathLike[str], type_: type[T]) -> T:
    """Read ``path`` as TOML into ``type_`` (a Struct with ``forbid_unknown_fields``)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {str(p)!r} does not exist", hint="pass --config FILE") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(p)!r}: {exc.strerror}") from exc
    try:
        # TOML is UTF-8; a byte-order mark (Windows editors write one) is tolerated
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{p}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); TOML files are UTF-8",
            hint="save the file as UTF-8 (a binary file or another encoding was given as --config?)",
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}", hint="fix the syntax at that line") from exc
    return convert(data, type_, source=str(p))


@dataclass(frozen=True)
class ConfigChoice:
    """Which config file a program reads and how it was chosen, for messages about where data is."""

    path: Path | None  # None: no file, every default
    how: str  # "--config", "$FSM_CLIENT_CONFIG", "found" (in the search list) or "none found"
    looked: tuple[str, ...] = ()  # every place tried, in order, when no file was named

    @property
    def found(self) -> bool:
        """The file was not named by the user but found in one of the documented places."""
        return self.how == "found"

    def describe(self) -> str:
        """``config 'x.toml' (from --config)``, or where it was looked for in vain."""
        if self.path is None:
            return f"no config file: looked at {', '.join(self.looked)}"
        if self.found:
            return f"config {str(self.path)!r}, found (none named by {' or '.join(self.looked[:2])})"
        return f"config {str(self.path)!r} from {self.how}"


def no_store(
    what: str, path: Path, *, choice: ConfigChoice, chosen_by: str, env_var: str, creates: str
) -> ConfigError:
    """The error of a command that only reads and finds no ``what`` at ``path``: it never creates an
    empty one, and says what chose ``path`` (``chosen_by``), where it looked for a config, and how to
    point at the right one."""
    return ConfigError(
        f"no {what} at {str(path)!r}, and a command that only reads does not create one "
        f"({chosen_by}; {choice.describe()})",
        hint=f"name the right config with --config FILE or ${env_var}, or the data with --data-dir DIR; "
        f"{creates} creates the {what}",
    )


def locate(
    given: str | os.PathLike[str] | None, *, given_by: str, env_var: str, search: Sequence[str]
) -> ConfigChoice:
    """The config file to read: ``given`` (by ``--config`` or ``$env_var``, as ``given_by`` says),
    else the first of ``search`` that exists, else none (every default)."""
    if given is not None:
        return ConfigChoice(Path(given), given_by)
    looked = ("--config", f"${env_var}", *search)
    for place in search:
        if Path(place).is_file():
            return ConfigChoice(Path(place), "found", looked)
    return ConfigChoice(None, "none found", looked)


def dump(obj: Any) -> dict[str, Any]:
    """The loaded config as plain data with every Secret masked (for `config show`, logs)."""
    return msgspec.to_builtins(obj, enc_hook=_enc_hook)  # type: ignore[no-any-return]


__all__ = [
    "ConfigChoice",
    "Duration",
    "Secret",
    "choose_data_dir",
    "convert",
    "dump",
    "explain",
    "load",
    "load_or_defaults",
    "locate",
    "no_store",
]
