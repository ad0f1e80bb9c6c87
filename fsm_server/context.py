"""What every server command gets: the loaded config and the data directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import ServerConfig, load_config


@dataclass
class ServerContext:
    config: ServerConfig
    data_dir: Path

    @classmethod
    def load(cls, config_path: str | None, data_dir: str | None) -> ServerContext:
        config = load_config(config_path)
        chosen = Path(data_dir) if data_dir else config.server.data_dir or Path("var/server")
        return cls(config=config, data_dir=chosen)


__all__ = ["ServerContext"]
