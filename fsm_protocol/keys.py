"""Key files: generate, load (private files must be 0600), fingerprints and key ids.

A client signs with an Ed25519 key (``client.key``, public half ``client.pub``); a server
decrypts with an X25519 key (``server.key`` / ``server.pub``) and signs what it exports (billing
manifests) with an Ed25519 key of its own (``server-sign.key`` / ``server-sign.pub``). Private
files are unencrypted PKCS#8 PEM, created 0600 from their first byte and refused at load
when group or others may touch them. A public file holds one line, the form operators paste and
servers store::

    fsm-ed25519 <base64 of the 32-byte public key>      (client.pub)
    fsm-x25519 <base64 of the 32-byte public key>       (server.pub)

Fingerprints are ``SHA256:`` plus the unpadded base64 of SHA-256(raw public key), as OpenSSH
prints them; a server key's ``key_id`` is the first 8 bytes of that digest in hex.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp())
>>> private, public = generate_client_keys(d)
>>> load_signing_key(private).public == load_verify_key(public)
True
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from . import crypto
from .errors import KeyFileError
from .files import write_atomic

CLIENT_KEY_FILE = "client.key"
CLIENT_PUB_FILE = "client.pub"
SERVER_KEY_FILE = "server.key"
SERVER_PUB_FILE = "server.pub"
SERVER_SIGN_KEY_FILE = "server-sign.key"
SERVER_SIGN_PUB_FILE = "server-sign.pub"
SIGN_PREFIX = "fsm-ed25519"
BOX_PREFIX = "fsm-x25519"
FINGERPRINT_PREFIX = "SHA256:"
KEY_ID_BYTES = 8


def fingerprint_from_raw(digest: bytes) -> str:
    """The printable form of a 32-byte SHA-256 key digest."""
    return FINGERPRINT_PREFIX + base64.b64encode(digest).decode("ascii").rstrip("=")


@functools.lru_cache(maxsize=1024)  # called for every envelope sealed or opened, with few distinct keys
def fingerprint_to_raw(fingerprint: str) -> bytes:
    """The 32-byte digest back from ``SHA256:...``; ValueError when it is not one."""
    if not fingerprint.startswith(FINGERPRINT_PREFIX):
        raise ValueError(f"fingerprint {fingerprint!r} does not start with {FINGERPRINT_PREFIX!r}")
    digest = base64.b64decode(fingerprint.removeprefix(FINGERPRINT_PREFIX) + "=", validate=True)
    if len(digest) != 32 or fingerprint_from_raw(digest) != fingerprint:
        raise ValueError(f"fingerprint {fingerprint!r} is not canonical SHA-256 base64")
    return digest


def _fingerprint(public_raw: bytes) -> str:
    return fingerprint_from_raw(crypto.sha256(public_raw))


def _key_id(public_raw: bytes) -> str:
    return crypto.sha256(public_raw)[:KEY_ID_BYTES].hex()


class _PublicKey:
    """A 32-byte public key with its one-line text form; equal when the bytes are."""

    __slots__ = ("fingerprint", "raw")
    prefix = ""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != crypto.KEY_BYTES:
            raise KeyFileError(f"a public key has {crypto.KEY_BYTES} bytes, this one {len(raw)}")
        self.raw = bytes(raw)
        self.fingerprint = _fingerprint(self.raw)

    def to_text(self) -> str:
        """The one-line form found in the .pub file."""
        return f"{self.prefix} {base64.b64encode(self.raw).decode('ascii')}"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.raw == self.raw

    def __hash__(self) -> int:
        return hash((self.prefix, self.raw))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fingerprint!r})"


class VerifyKey(_PublicKey):
    """A client's Ed25519 public key: what a server registers to check signatures."""

    __slots__ = ("_key",)
    prefix = SIGN_PREFIX

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        self._key = crypto.ed25519_public_from_raw(self.raw)

    def verify(self, signature: crypto.Buffer, data: crypto.Buffer) -> None:
        """Raise BadSignature unless ``signature`` is this key's signature over ``data``."""
        crypto.ed25519_verify(self._key, signature, data)


class ServerPublicKey(_PublicKey):
    """A server's X25519 public key: what a client seals to."""

    __slots__ = ("_key", "key_id")
    prefix = BOX_PREFIX

    def __init__(self, raw: bytes) -> None:
        super().__init__(raw)
        self._key = crypto.x25519_public_from_raw(self.raw)  # refuses bytes that are no key at all
        self.key_id = _key_id(self.raw)

    def agree(self, ephemeral: X25519PrivateKey) -> bytes:
        """The X25519 shared secret of a sealer's ephemeral key with this server key."""
        return crypto.x25519_agree(ephemeral, self._key)


class SigningKey:
    """A client's Ed25519 private key. Its repr shows only the fingerprint."""

    __slots__ = ("_key", "fingerprint", "public")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public = VerifyKey(crypto.ed25519_public_raw(key))
        self.fingerprint = self.public.fingerprint

    def sign(self, data: crypto.Buffer) -> bytes:
        return crypto.ed25519_sign(self._key, data)

    def __repr__(self) -> str:
        return f"SigningKey({self.fingerprint!r})"


class EncryptionKey:
    """A server's X25519 private key. Its repr shows only the fingerprint and key id."""

    __slots__ = ("_key", "fingerprint", "key_id", "public")

    def __init__(self, key: X25519PrivateKey) -> None:
        self._key = key
        self.public = ServerPublicKey(crypto.x25519_public_raw(key))
        self.fingerprint = self.public.fingerprint
        self.key_id = self.public.key_id

    def agree(self, peer_public: bytes) -> bytes:
        """The X25519 shared secret with an envelope's ephemeral public key."""
        return crypto.x25519_agree(self._key, peer_public)

    def __repr__(self) -> str:
        return f"EncryptionKey({self.fingerprint!r}, key_id={self.key_id!r})"


# --- writing ---------------------------------------------------------------------------------


def write_private_file(path: Path, data: bytes) -> None:
    """Write a private key file (0600 from creation, fsynced, renamed into place)."""
    write_atomic(path, data, 0o600, exact_mode=True)


def _write_pair(
    directory: Path, private_name: str, public_name: str, private_pem: bytes, public_text: str, force: bool
) -> tuple[Path, Path]:
    directory = Path(directory)
    private, public = directory / private_name, directory / public_name
    if not force:
        for path in (private, public):
            if path.exists() or path.is_symlink():
                raise KeyFileError(
                    f"{path} already exists; refusing to overwrite a key",
                    hint="use --force to replace it (every peer must then get the new public key), "
                    "or --dir to write somewhere else",
                )
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_atomic(private, private_pem, 0o600, exact_mode=True)
        write_atomic(public, (public_text + "\n").encode("ascii"), 0o644, exact_mode=True)
    except OSError as exc:
        raise KeyFileError(
            f"cannot write keys to {directory}: {exc.strerror}", hint="choose a writable directory with --dir"
        ) from exc
    return private, public


def generate_client_keys(directory: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Create ``client.key`` (Ed25519, 0600) and ``client.pub`` in ``directory``."""
    key = crypto.ed25519_generate()
    return _write_pair(
        directory,
        CLIENT_KEY_FILE,
        CLIENT_PUB_FILE,
        crypto.private_key_to_pem(key),
        SigningKey(key).public.to_text(),
        force,
    )


def generate_server_keys(directory: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Create ``server.key`` (X25519, 0600) and ``server.pub`` in ``directory``."""
    key = crypto.x25519_generate()
    return _write_pair(
        directory,
        SERVER_KEY_FILE,
        SERVER_PUB_FILE,
        crypto.private_key_to_pem(key),
        EncryptionKey(key).public.to_text(),
        force,
    )


def generate_server_signing_keys(directory: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Create ``server-sign.key`` (Ed25519, 0600) and ``server-sign.pub`` in ``directory``: the key
    the server signs its exports with, so an ERP or an auditor can check them."""
    key = crypto.ed25519_generate()
    return _write_pair(
        directory,
        SERVER_SIGN_KEY_FILE,
        SERVER_SIGN_PUB_FILE,
        crypto.private_key_to_pem(key),
        SigningKey(key).public.to_text(),
        force,
    )


# --- loading ---------------------------------------------------------------------------------


def _read_private(path: Path, init_command: str) -> bytes:
    path = Path(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{path} is not a regular file", hint="point the config at the key file")
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"private key {path} is open to group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
                "refusing to use it",
                hint=f"run `chmod 600 {path}` (and consider the key leaked if others could read it)",
            )
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyFileError(
            f"private key {path} does not exist",
            hint=f"create one with `{init_command}`, or set the key path in the config",
        ) from exc
    except PermissionError as exc:
        raise KeyFileError(
            f"cannot read private key {path}: permission denied",
            hint="run as the user that owns the key file",
        ) from exc
    except OSError as exc:
        raise KeyFileError(f"cannot read private key {path}: {exc.strerror}") from exc


def load_signing_key(path: Path, *, init_command: str = "fsm-client keys init") -> SigningKey:
    """Load an Ed25519 key (a client's, or the server's signing key with ``init_command`` naming
    what makes it); refuses a file group or others may access."""
    key = crypto.private_key_from_pem(_read_private(path, init_command), where=str(path))
    if not isinstance(key, Ed25519PrivateKey):
        whose = "a client" if init_command.startswith("fsm-client") else "the server's"
        raise KeyFileError(
            f"{path} holds an X25519 (server) key, not {whose} signing key",
            hint=f"give the Ed25519 key made by `{init_command}`",
        )
    return SigningKey(key)


def load_encryption_key(path: Path) -> EncryptionKey:
    """Load a server's X25519 key; refuses a file group or others may access."""
    key = crypto.private_key_from_pem(_read_private(path, "fsm-server keys init"), where=str(path))
    if not isinstance(key, X25519PrivateKey):
        raise KeyFileError(
            f"{path} holds an Ed25519 (client) key, not a server encryption key",
            hint="the server needs the server.key made by `fsm-server keys init`",
        )
    return EncryptionKey(key)


def _public_text(path_or_text: Path | str, prefix: str) -> tuple[str, str]:
    """The text of a public key and where it came from (for messages)."""
    if isinstance(path_or_text, str) and path_or_text.lstrip().startswith("fsm-"):
        return path_or_text, "the given key text"
    path = Path(path_or_text)
    try:
        return path.read_text("ascii"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(
            f"cannot read public key {path}: {exc}",
            hint=f"give the .pub file or its one line, `{prefix} <base64>`",
        ) from exc


def _parse_public(path_or_text: Path | str, prefix: str) -> bytes:
    text, where = _public_text(path_or_text, prefix)
    # One line: the prefix, the key, and optionally a comment (a name) after it.
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    fields = lines[0].split() if len(lines) == 1 else []
    if len(fields) < 2 or fields[0] != prefix:
        found = fields[0] if fields else (lines[0][:20] if lines else "nothing")
        raise KeyFileError(
            f"{where} is not an {prefix} public key (found {found!r})",
            hint=f"a public key is one line: `{prefix} <base64>`",
        )
    try:
        raw = base64.b64decode(fields[1], validate=True)
    except binascii.Error as exc:
        raise KeyFileError(f"{where}: key {fields[1]!r} is not base64") from exc
    if len(raw) != crypto.KEY_BYTES:
        raise KeyFileError(f"{where}: key is {len(raw)} bytes, not {crypto.KEY_BYTES}")
    return raw


def load_verify_key(path_or_text: Path | str) -> VerifyKey:
    """A client's public key from its .pub file or its one-line text."""
    return VerifyKey(_parse_public(path_or_text, SIGN_PREFIX))


def load_server_public_key(path_or_text: Path | str) -> ServerPublicKey:
    """A server's public key from its .pub file or its one-line text."""
    return ServerPublicKey(_parse_public(path_or_text, BOX_PREFIX))


__all__ = [
    "BOX_PREFIX",
    "CLIENT_KEY_FILE",
    "CLIENT_PUB_FILE",
    "FINGERPRINT_PREFIX",
    "KEY_ID_BYTES",
    "SERVER_KEY_FILE",
    "SERVER_PUB_FILE",
    "SERVER_SIGN_KEY_FILE",
    "SERVER_SIGN_PUB_FILE",
    "SIGN_PREFIX",
    "EncryptionKey",
    "ServerPublicKey",
    "SigningKey",
    "VerifyKey",
    "fingerprint_from_raw",
    "fingerprint_to_raw",
    "generate_client_keys",
    "generate_server_keys",
    "generate_server_signing_keys",
    "load_encryption_key",
    "load_server_public_key",
    "load_signing_key",
    "load_verify_key",
    "write_private_file",
]
