"""What every server command gets: the loaded config, the data directory, and where both came from."""

from __future__ import annotations

from pathlib import Path

from fsm_common.context import ProgramContext

from .config import ServerConfig

#: The data directory when neither --data-dir nor [server] data_dir names one.
DEFAULT_DATA_DIR = Path("var/server")


class ServerContext(ProgramContext[ServerConfig]):
    CONFIG = ServerConfig
    SECTION = "server"
    DEFAULT_DATA_DIR = DEFAULT_DATA_DIR


__all__ = ["DEFAULT_DATA_DIR", "ServerContext"]
