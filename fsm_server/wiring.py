"""Build the server's core objects from a ServerContext: the database, the registry, the pipeline.

Commands and daemons call these so every entry point opens things the same way.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fsm_protocol.keys import SERVER_KEY_FILE, load_encryption_key

from .context import ServerContext
from .db.connect import Database, database_url_from_env, open_database
from .ingest.pipeline import Pipeline
from .registry import Registry


def encryption_key_path(ctx: ServerContext) -> Path:
    return ctx.config.keys.encryption_key or ctx.data_dir / "keys" / SERVER_KEY_FILE


def open_db(ctx: ServerContext) -> Database:
    """The configured database (FSM_DATABASE_URL overrides [database] url), migrated."""
    return open_database(database_url_from_env(ctx.config.database.url), data_dir=ctx.data_dir)


def registry(ctx: ServerContext, db: Database) -> Registry:
    return Registry(db, rotation_grace=timedelta(days=ctx.config.ingest.rotation_grace_days))


def pipeline(ctx: ServerContext, db: Database) -> Pipeline:
    """A pipeline with the server's encryption key and the [ingest] limits."""
    key = load_encryption_key(encryption_key_path(ctx))
    return Pipeline(db, registry(ctx, db), key, limits=ctx.config.ingest)


__all__ = ["encryption_key_path", "open_db", "pipeline", "registry"]
