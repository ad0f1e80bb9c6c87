"""Keys for protocol tests: generated fresh per session, plus a second pair to swap in."""

from __future__ import annotations

import pytest

from fsm_protocol import crypto
from fsm_protocol.keys import EncryptionKey, SigningKey


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey(crypto.ed25519_generate())


@pytest.fixture(scope="session")
def other_signing_key() -> SigningKey:
    return SigningKey(crypto.ed25519_generate())


@pytest.fixture(scope="session")
def encryption_key() -> EncryptionKey:
    return EncryptionKey(crypto.x25519_generate())


@pytest.fixture(scope="session")
def other_encryption_key() -> EncryptionKey:
    return EncryptionKey(crypto.x25519_generate())
