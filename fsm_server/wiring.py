"""Build the server's core objects from a ServerContext: the database, the registry, the pipeline.

Commands and daemons call these so every entry point opens things the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from fsm_common.configfile import no_store
from fsm_protocol.keys import (
    SERVER_KEY_FILE,
    SERVER_SIGN_KEY_FILE,
    SigningKey,
    load_encryption_key,
    load_signing_key,
)

from .backup.schedule import BackupPlan
from .config import CONFIG_ENV
from .context import ServerContext
from .db import open_database
from .db.connect import Database, database_url_from_env, sqlite_path
from .ingest.pipeline import Pipeline
from .registry import Registry


def encryption_key_path(ctx: ServerContext) -> Path:
    return ctx.config.keys.encryption_key or ctx.data_dir / "keys" / SERVER_KEY_FILE


def signing_key(ctx: ServerContext) -> SigningKey:
    """The server's Ed25519 key that signs billing exports (``server-sign.key`` beside server.key)."""
    return load_signing_key(
        encryption_key_path(ctx).parent / SERVER_SIGN_KEY_FILE,
        init_command="fsm-server keys init --signing-only",
    )


def open_db(ctx: ServerContext, *, only_reads: bool = False) -> Database:
    """The configured database (FSM_DATABASE_URL overrides [database] url), migrated.

    ``only_reads``: the command only shows what is there, so a SQLite file that does not exist is
    an error saying where it looked, not a new empty database.
    """
    url = database_url_from_env(ctx.config.database.url)
    path = sqlite_path(url, ctx.data_dir)
    if only_reads and path is not None and not path.is_file():
        if "FSM_DATABASE_URL" in os.environ:
            chosen_by = "database: $FSM_DATABASE_URL"
        elif url:
            chosen_by = f"database: [database] url of {ctx.config_choice.path}"
        else:
            chosen_by = f"data dir: {ctx.data_dir_from}"
        raise no_store(
            "database",
            path,
            choice=ctx.config_choice,
            chosen_by=chosen_by,
            env_var=CONFIG_ENV,
            creates="`fsm-server ingest` (or import, clients add)",
        )
    return open_database(url, data_dir=ctx.data_dir)


def backup_plan(ctx: ServerContext) -> BackupPlan:
    """Where backups go ([backup] dir, default <data_dir>/backups) and the key they may carry."""
    cfg = ctx.config.backup
    return BackupPlan(
        directory=cfg.dir or ctx.data_dir / "backups", settings=cfg, key_file=encryption_key_path(ctx)
    )


def registry(ctx: ServerContext, db: Database) -> Registry:
    return Registry(db, rotation_grace=timedelta(days=ctx.config.ingest.rotation_grace_days))


def pipeline(ctx: ServerContext, db: Database, *, now: Callable[[], datetime] | None = None) -> Pipeline:
    """A pipeline with the server's encryption key, the [ingest] limits and the [orders] defaults
    (``now``: its clock)."""
    key = load_encryption_key(encryption_key_path(ctx))
    return Pipeline(db, registry(ctx, db), key, limits=ctx.config.ingest, now=now, orders=ctx.config.orders)


__all__ = ["backup_plan", "encryption_key_path", "open_db", "pipeline", "registry", "signing_key"]
