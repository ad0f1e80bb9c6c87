"""What every client command gets: the loaded config and the data directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import ClientConfig, load_config


@dataclass
class ClientContext:
    config: ClientConfig
    data_dir: Path

    @classmethod
    def load(cls, config_path: str | None, data_dir: str | None) -> ClientContext:
        config = load_config(config_path)
        chosen = Path(data_dir) if data_dir else config.client.data_dir or Path("var/client")
        return cls(config=config, data_dir=chosen)


__all__ = ["ClientContext"]
