"""Fixtures the client tests share."""

from __future__ import annotations

import pytest
from client_fixtures import Keys

from fsm_client.pmd.authoring.loader import default_dirs, load_pool
from fsm_client.pmd.authoring.matcher import PmdPool


@pytest.fixture(scope="module")
def pool() -> PmdPool:
    """The shipped PMD pool, as the client loads it."""
    return load_pool(default_dirs())


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    """A client and a server key pair, made once per test module."""
    return Keys(tmp_path_factory.mktemp("keys"))
