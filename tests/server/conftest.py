"""Fixtures of the server tests: keys, a registered client, a pipeline on the database under test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from portal_kit import undo_clock_moves

from fsm_devtools.corpus import ClientKit, ServerKit, make_client, make_server
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry


@pytest.fixture(autouse=True)
def _clock_moves_undone() -> Iterator[None]:
    """A test that moved the clock forward (portal_kit.skip_ahead) leaves it as it found it."""
    yield
    undo_clock_moves()


@pytest.fixture(scope="session")
def server_kit(tmp_path_factory: pytest.TempPathFactory) -> ServerKit:
    """The server's key pair."""
    return make_server(tmp_path_factory.mktemp("server-keys"))


@pytest.fixture(scope="session")
def client_kit(tmp_path_factory: pytest.TempPathFactory) -> ClientKit:
    """A client's key pair, named acme-hq."""
    return make_client(tmp_path_factory.mktemp("client-keys"), "acme-hq")


@pytest.fixture(scope="session")
def stranger_kit(tmp_path_factory: pytest.TempPathFactory) -> ClientKit:
    """A client no server has registered."""
    return make_client(tmp_path_factory.mktemp("stranger-keys"), "stranger")


@pytest.fixture
def registry(db: Database, client_kit: ClientKit) -> Registry:
    """The registry with acme-hq registered."""
    reg = Registry(db)
    reg.add(client_kit.name, client_kit.pub_path)
    return reg


@pytest.fixture
def pipeline(db: Database, registry: Registry, server_kit: ServerKit) -> Pipeline:
    """A pipeline holding the server key, on the database under test, acme-hq registered."""
    return Pipeline(db, registry, server_kit.encryption_key)


def pub_text(path: Path) -> str:
    return path.read_text()
