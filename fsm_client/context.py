"""What every client command gets: the loaded config, the data directory, and where both came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fsm_common.configfile import ConfigChoice, choose_data_dir, no_store

from .config import CONFIG_ENV, ClientConfig, load_config
from .store import STORE_FILE

#: The data directory when neither --data-dir nor [client] data_dir names one.
DEFAULT_DATA_DIR = Path("var/client")


@dataclass
class ClientContext:
    config: ClientConfig
    data_dir: Path
    config_choice: ConfigChoice = field(default_factory=lambda: ConfigChoice(None, "none given"))
    data_dir_from: str = "the default, ./var/client"  # what chose data_dir, for messages

    @classmethod
    def load(cls, config_path: str | None, data_dir: str | None) -> ClientContext:
        """The context of ``--config`` and ``--data-dir`` as given (None: the defaults)."""
        choice = ConfigChoice(Path(config_path) if config_path else None, "--config")
        return cls.from_choice(choice, data_dir)

    @classmethod
    def from_choice(
        cls, choice: ConfigChoice, data_dir: str | None, data_dir_by: str = "--data-dir"
    ) -> ClientContext:
        config = load_config(choice.path)
        where, chosen_by = choose_data_dir(
            data_dir,
            data_dir_by,
            config.client.data_dir,
            section="[client]",
            choice=choice,
            default=DEFAULT_DATA_DIR,
        )
        return cls(config, where, choice, chosen_by)

    def existing_store(self) -> Path:
        """The store of a command that only reads: one that is not there is an error, never created."""
        path = self.data_dir / STORE_FILE
        if not path.is_file():
            raise no_store(
                "client store",
                path,
                choice=self.config_choice,
                chosen_by=f"data dir: {self.data_dir_from}",
                env_var=CONFIG_ENV,
                creates="`fsm-client run` (or scan, send)",
            )
        return path


__all__ = ["DEFAULT_DATA_DIR", "ClientContext"]
