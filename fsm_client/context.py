"""What every client command gets: the loaded config, the data directory, and where both came from."""

from __future__ import annotations

from pathlib import Path

from fsm_common.configfile import no_store
from fsm_common.context import ProgramContext

from .config import CONFIG_ENV, ClientConfig
from .store import STORE_FILE

#: The data directory when neither --data-dir nor [client] data_dir names one.
DEFAULT_DATA_DIR = Path("var/client")


class ClientContext(ProgramContext[ClientConfig]):
    CONFIG = ClientConfig
    SECTION = "client"
    DEFAULT_DATA_DIR = DEFAULT_DATA_DIR

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
