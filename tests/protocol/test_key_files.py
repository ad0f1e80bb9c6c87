"""Key files: created 0600 from the first byte, refused when too open, public keys as one line."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from fsm_client.cli import main as client_main
from fsm_protocol.errors import KeyFileError
from fsm_protocol.keys import (
    generate_client_keys,
    generate_server_keys,
    load_encryption_key,
    load_server_public_key,
    load_signing_key,
    load_verify_key,
)
from fsm_server.cli import main as server_main


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def no_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FSM_CLIENT_CONFIG", raising=False)
    monkeypatch.delenv("FSM_SERVER_CONFIG", raising=False)


@pytest.mark.parametrize(
    ("program", "private", "public", "prefix"),
    [
        (client_main, "client.key", "client.pub", "fsm-ed25519 "),
        (server_main, "server.key", "server.pub", "fsm-x25519 "),
    ],
)
def test_keys_init_makes_a_0600_private_file_and_a_public_line(
    tmp_path: Path, no_config: None, program: object, private: str, public: str, prefix: str
) -> None:
    result = CliRunner().invoke(program, ["--data-dir", str(tmp_path), "keys", "init"])  # type: ignore[arg-type]
    assert result.exit_code == 0, result.output
    keys = tmp_path / "keys"
    assert _mode(keys / private) == 0o600
    assert _mode(keys) == 0o700
    assert (keys / private).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    line = (keys / public).read_text()
    assert line.startswith(prefix) and line.count("\n") == 1
    assert line.strip() in result.output
    assert not list(keys.glob(".*.tmp"))


def test_private_key_is_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        private, public = generate_server_keys(tmp_path / "k")
    finally:
        os.umask(old)
    assert _mode(private) == 0o600
    assert _mode(public) == 0o644


@pytest.mark.parametrize(("program", "private"), [(client_main, "client.key"), (server_main, "server.key")])
def test_loading_a_0644_key_fails_saying_how_to_fix_it(
    tmp_path: Path, no_config: None, program: object, private: str
) -> None:
    runner = CliRunner()
    assert runner.invoke(program, ["--data-dir", str(tmp_path), "keys", "init"]).exit_code == 0  # type: ignore[arg-type]
    path = tmp_path / "keys" / private
    path.chmod(0o644)
    result = runner.invoke(program, ["--data-dir", str(tmp_path), "keys", "show"])  # type: ignore[arg-type]
    assert result.exit_code == 1
    assert f"error: private key {path} is open to group or others (mode 0644)" in result.output
    assert f"hint: run `chmod 600 {path}`" in result.output
    path.chmod(0o600)
    assert runner.invoke(program, ["--data-dir", str(tmp_path), "keys", "show"]).exit_code == 0  # type: ignore[arg-type]


def test_keys_show_json_gives_what_enrolment_needs(tmp_path: Path, no_config: None) -> None:
    import json

    runner = CliRunner()
    runner.invoke(server_main, ["--data-dir", str(tmp_path), "keys", "init"])
    result = runner.invoke(server_main, ["--data-dir", str(tmp_path), "keys", "show", "--json"])
    info = json.loads(result.output)
    server_pub = load_server_public_key(tmp_path / "keys" / "server.pub")
    assert info["public_key"] == server_pub.to_text()
    assert info["key_id"] == server_pub.key_id
    assert info["fingerprint"] == server_pub.fingerprint


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path, no_config: None) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path), "keys", "init"]
    assert runner.invoke(client_main, args).exit_code == 0
    before = (tmp_path / "keys" / "client.pub").read_text()
    again = runner.invoke(client_main, args)
    assert again.exit_code == 1
    assert "already exists; refusing to overwrite" in again.output and "--force" in again.output
    assert runner.invoke(client_main, [*args, "--force"]).exit_code == 0
    assert (tmp_path / "keys" / "client.pub").read_text() != before


def test_init_writes_where_dir_says(tmp_path: Path, no_config: None) -> None:
    result = CliRunner().invoke(
        client_main, ["--data-dir", str(tmp_path / "d"), "keys", "init", "--dir", str(tmp_path / "elsewhere")]
    )
    assert result.exit_code == 0, result.output
    assert _mode(tmp_path / "elsewhere" / "client.key") == 0o600
    assert not (tmp_path / "d" / "keys").exists()


def test_public_keys_load_from_file_or_text_and_match_the_private_ones(tmp_path: Path) -> None:
    private, public = generate_client_keys(tmp_path)
    signing = load_signing_key(private)
    assert load_verify_key(public) == signing.public
    assert load_verify_key(signing.public.to_text()) == signing.public
    assert load_verify_key(signing.public.to_text() + " acme-hq client\n") == signing.public
    server_private, server_public = generate_server_keys(tmp_path)
    encryption = load_encryption_key(server_private)
    assert load_server_public_key(server_public).key_id == encryption.key_id
    assert len(encryption.key_id) == 16
    assert signing.fingerprint.startswith("SHA256:") and len(signing.fingerprint) == 50


def test_reprs_never_show_private_material(tmp_path: Path) -> None:
    private, _ = generate_client_keys(tmp_path)
    key = load_signing_key(private)
    assert repr(key) == f"SigningKey({key.fingerprint!r})"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fsm-x25519 AAAA", "is not an fsm-ed25519 public key"),
        ("fsm-ed25519 not-base64!", "is not base64"),
        ("fsm-ed25519 AAAA", "is 3 bytes, not 32"),
        ("fsm-ed25519 AAAA\nfsm-ed25519 AAAA", "is not an fsm-ed25519 public key"),
    ],
)
def test_bad_public_key_text_is_refused(text: str, message: str) -> None:
    with pytest.raises(KeyFileError, match=message):
        load_verify_key(text)


def test_wrong_kind_of_private_key_is_refused(tmp_path: Path) -> None:
    server_private, _ = generate_server_keys(tmp_path)
    with pytest.raises(KeyFileError, match="not a client signing key"):
        load_signing_key(server_private)


def test_missing_and_garbage_private_keys_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist") as caught:
        load_signing_key(tmp_path / "nope.key")
    assert "fsm-client keys init" in caught.value.hint
    junk = tmp_path / "junk.key"
    junk.write_bytes(b"hello")
    junk.chmod(0o600)
    with pytest.raises(KeyFileError, match=r"junk\.key is not an unencrypted PEM private key"):
        load_encryption_key(junk)
