"""The server key in a backup: encrypted under a passphrase, never in the clear.

scrypt (N=2^17, r=8, p=1: about 128 MiB and a fraction of a second per try, so guessing is
expensive) derives a 256-bit key from the passphrase and a random 16-byte salt; AES-256-GCM with a
random 96-bit nonce seals the key file, the associated data binding the format and the file name.
Both come from ``cryptography``, which fsm already trusts for the wire format; age (pyrage) would
be a new native dependency for the same guarantee. The parameters are in the manifest
(archive.KeyEntry), so a later fsm can raise them and still open older backups.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from fsm_protocol.errors import FsmError
from fsm_protocol.keys import load_encryption_key

from ..errors import BackupError
from .archive import KeyEntry

if TYPE_CHECKING:
    from .archive import ArchiveWriter

MEMBER = "keys/server.key.enc"
MIN_PASSPHRASE = 12
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 17, 8, 1
AAD = b"fsm-backup server key v1:"


def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def check_passphrase(passphrase: str) -> str:
    if len(passphrase) < MIN_PASSPHRASE:
        raise BackupError(
            f"the backup passphrase has {len(passphrase)} characters; it needs at least {MIN_PASSPHRASE}",
            hint="choose a longer passphrase and keep it apart from the backups",
        )
    return passphrase


def read_passphrase_file(path: Path) -> str:
    """The passphrase on the first line of ``path`` (which only its owner may read)."""
    try:
        if os.stat(path).st_mode & 0o077:
            raise BackupError(
                f"passphrase file {str(path)!r} is open to group or others", hint=f"run `chmod 600 {path}`"
            )
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BackupError(
            f"cannot read the passphrase file {str(path)!r}: {exc.strerror or exc}",
            hint="check [backup] passphrase_file / --passphrase-file",
        ) from exc
    return check_passphrase(lines[0] if lines else "")


def wrap_key(writer: ArchiveWriter, key_file: Path, passphrase: str) -> KeyEntry:
    """Encrypt the key file into the archive; the key is loaded first, so a broken one fails here."""
    check_passphrase(passphrase)
    try:
        load_encryption_key(key_file)
        data = key_file.read_bytes()
    except (FsmError, OSError) as exc:
        raise BackupError(
            f"cannot add the server key {str(key_file)!r} to the backup: {getattr(exc, 'message', exc)}",
            hint="check [keys] encryption_key, or back up without --with-keys",
        ) from exc
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = AESGCM(_derive(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).encrypt(
        nonce, data, AAD + key_file.name.encode()
    )
    with writer.member(MEMBER) as out:
        out.write(sealed)
    return KeyEntry(
        member=MEMBER,
        file_name=key_file.name,
        kdf="scrypt",
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        salt=salt,
        nonce=nonce,
        cipher="AES-256-GCM",
        sha256=hashlib.sha256(sealed).hexdigest(),
    )


def unwrap_key(entry: KeyEntry, sealed: bytes, passphrase: str) -> bytes:
    """The key file's bytes; a wrong passphrase (or a changed member) is a BackupError."""
    if entry.kdf != "scrypt" or entry.cipher != "AES-256-GCM":
        raise BackupError(
            f"the key in this backup is sealed with {entry.kdf}/{entry.cipher}, which this fsm cannot open",
            hint="restore the key with the fsm version that wrote the backup",
        )
    if not (1 << 10 <= entry.n <= 1 << 22 and 1 <= entry.r <= 32 and 1 <= entry.p <= 16):
        raise BackupError(
            "the key parameters in the manifest are out of range",
            hint="the manifest was changed; take another backup file",
        )
    try:
        return AESGCM(_derive(passphrase, entry.salt, entry.n, entry.r, entry.p)).decrypt(
            entry.nonce, sealed, AAD + entry.file_name.encode()
        )
    except InvalidTag:
        raise BackupError(
            "the passphrase does not open the server key in this backup",
            hint="give the passphrase used when the backup was taken",
        ) from None


__all__ = ["MEMBER", "MIN_PASSPHRASE", "check_passphrase", "read_passphrase_file", "unwrap_key", "wrap_key"]
