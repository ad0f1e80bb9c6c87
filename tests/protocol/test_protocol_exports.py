"""fsm_protocol's public API: `__all__` is sorted, complete and importable."""

from __future__ import annotations

import importlib
import pkgutil

import fsm_protocol

MODULES = [
    "chunking",
    "crypto",
    "display",
    "envelope",
    "errors",
    "header",
    "identity",
    "keys",
    "mime",
    "schema",
]


def test_all_is_sorted_and_every_name_exists() -> None:
    assert fsm_protocol.__all__ == sorted(fsm_protocol.__all__, key=lambda n: (not n.isupper(), n))
    for name in fsm_protocol.__all__:
        assert hasattr(fsm_protocol, name), name


def test_package_reexports_every_public_name_of_its_api_modules() -> None:
    """Complete: each API module's `__all__` is in the package's (header and crypto are internals)."""
    exported = set(fsm_protocol.__all__)
    for name in ["chunking", "envelope", "errors", "identity", "keys", "mime", "schema"]:
        module = importlib.import_module(f"fsm_protocol.{name}")
        missing = set(module.__all__) - exported
        assert not missing, f"fsm_protocol does not re-export {sorted(missing)} from {name}"
        for attr in module.__all__:
            assert getattr(fsm_protocol, attr) is getattr(module, attr)
    assert fsm_protocol.Header is importlib.import_module("fsm_protocol.header").Header


def test_contract_names_are_exported() -> None:
    contract = {
        "seal",
        "peek",
        "open_envelope",
        "split",
        "join",
        "build_message",
        "parse_message",
        "FsmMail",
        "DEFAULT_CHUNK_BYTES",
        "DEFAULT_MAX_MAIL_BYTES",
        "Header",
        "generate_client_keys",
        "generate_server_keys",
        "load_signing_key",
        "load_encryption_key",
        "load_verify_key",
        "load_server_public_key",
        "SigningKey",
        "VerifyKey",
        "EncryptionKey",
        "ServerPublicKey",
    }
    assert contract <= set(fsm_protocol.__all__)


def test_each_module_all_is_sorted_and_exists() -> None:
    found = {m.name for m in pkgutil.iter_modules(fsm_protocol.__path__)}
    assert set(MODULES) <= found
    for name in MODULES:
        module = importlib.import_module(f"fsm_protocol.{name}")
        names = module.__all__
        assert names == sorted(names, key=lambda n: (not n.isupper(), n)), name
        for attr in names:
            assert hasattr(module, attr), f"{name}.{attr}"
