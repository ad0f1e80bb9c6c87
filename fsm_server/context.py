"""What every server command gets: the loaded config, the data directory, and where both came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fsm_common.configfile import ConfigChoice, choose_data_dir

from .config import ServerConfig, load_config

#: The data directory when neither --data-dir nor [server] data_dir names one.
DEFAULT_DATA_DIR = Path("var/server")


@dataclass
class ServerContext:
    config: ServerConfig
    data_dir: Path
    config_choice: ConfigChoice = field(default_factory=lambda: ConfigChoice(None, "none given"))
    data_dir_from: str = "the default, ./var/server"  # what chose data_dir, for messages

    @classmethod
    def load(cls, config_path: str | None, data_dir: str | None) -> ServerContext:
        """The context of ``--config`` and ``--data-dir`` as given (None: the defaults)."""
        choice = ConfigChoice(Path(config_path) if config_path else None, "--config")
        return cls.from_choice(choice, data_dir)

    @classmethod
    def from_choice(
        cls, choice: ConfigChoice, data_dir: str | None, data_dir_by: str = "--data-dir"
    ) -> ServerContext:
        config = load_config(choice.path)
        where, chosen_by = choose_data_dir(
            data_dir,
            data_dir_by,
            config.server.data_dir,
            section="[server]",
            choice=choice,
            default=DEFAULT_DATA_DIR,
        )
        return cls(config, where, choice, chosen_by)


__all__ = ["DEFAULT_DATA_DIR", "ServerContext"]
