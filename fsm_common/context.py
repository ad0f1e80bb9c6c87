"""What every command of a program gets: the loaded config, the data directory, and where both
came from (for messages). Each program subclasses ``ProgramContext`` naming its config type, the
config section that holds ``data_dir`` and its default data directory (``fsm_client.context``,
``fsm_server.context``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

from .configfile import ConfigChoice, choose_data_dir, load_or_defaults

ConfigT = TypeVar("ConfigT")


@dataclass
class ProgramContext(Generic[ConfigT]):
    """The config and data directory of one command run.

    >>> ClientContext.load("client.toml", None).data_dir   # doctest: +SKIP
    PosixPath('var/client')
    """

    #: the program's config, a msgspec Struct (ConfigT: a ClassVar cannot name a type variable)
    CONFIG: ClassVar[type[Any]]
    #: the config section whose ``data_dir`` names the data directory, e.g. ``"client"``
    SECTION: ClassVar[str]
    #: the data directory when neither --data-dir nor the config names one
    DEFAULT_DATA_DIR: ClassVar[Path]

    config: ConfigT
    data_dir: Path
    config_choice: ConfigChoice = field(default_factory=lambda: ConfigChoice(None, "none given"))
    data_dir_from: str = ""  # what chose data_dir, for messages (empty: the default)

    def __post_init__(self) -> None:
        if not self.data_dir_from:
            self.data_dir_from = f"the default, ./{self.DEFAULT_DATA_DIR}"

    @classmethod
    def load_config(cls, path: Path | None) -> ConfigT:
        """The program's config read from ``path`` (None: every default)."""
        config: ConfigT = load_or_defaults(path, cls.CONFIG)
        return config

    @classmethod
    def configured_data_dir(cls, config: ConfigT) -> Path | None:
        """The data directory the config names in ``[SECTION] data_dir``, if any."""
        data_dir: Path | None = getattr(config, cls.SECTION).data_dir
        return data_dir

    @classmethod
    def load(cls, config_path: str | None, data_dir: str | None) -> Self:
        """The context of ``--config`` and ``--data-dir`` as given (None: the defaults)."""
        choice = ConfigChoice(Path(config_path) if config_path else None, "--config")
        return cls.from_choice(choice, data_dir)

    @classmethod
    def from_choice(cls, choice: ConfigChoice, data_dir: str | None, data_dir_by: str = "--data-dir") -> Self:
        """The context of a chosen config file and a data directory given on the command line or
        in its variable (``data_dir_by`` names which, for messages)."""
        config = cls.load_config(choice.path)
        where, chosen_by = choose_data_dir(
            data_dir,
            data_dir_by,
            cls.configured_data_dir(config),
            section=f"[{cls.SECTION}]",
            choice=choice,
            default=cls.DEFAULT_DATA_DIR,
        )
        return cls(config, where, choice, chosen_by)


__all__ = ["ProgramContext"]
