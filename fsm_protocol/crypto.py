"""Thin wrappers over `cryptography`: X25519, HKDF-SHA256, AES-256-GCM, Ed25519, PEM key files.

This is the one module that touches `cryptography` and the one place its exceptions are
translated into fsm errors (see ``CRYPTOGRAPHY_ERRORS`` for what maps to what); nothing above
it catches a library exception. Functions take and return plain bytes or the library's key
objects, which callers keep to avoid re-parsing keys on every envelope.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import BadSignature, DecryptionFailed, KeyFileError

#: Anything cryptography reads without a copy (``collections.abc.Buffer`` needs Python 3.12).
Buffer = bytes | bytearray | memoryview

KEY_BYTES = 32  # X25519 and Ed25519 public and private keys, the AES-256 key
NONCE_BYTES = 12  # AES-GCM nonce
TAG_BYTES = 16  # AES-GCM tag
SIGNATURE_BYTES = 64  # Ed25519

#: Every `cryptography` exception this module can meet, and the fsm error it becomes.
CRYPTOGRAPHY_ERRORS: dict[type[Exception], type[Exception]] = {
    InvalidSignature: BadSignature,
    InvalidTag: DecryptionFailed,
    UnsupportedAlgorithm: KeyFileError,
}


# --- Ed25519 ---------------------------------------------------------------------------------


def ed25519_generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def ed25519_from_raw(raw: bytes) -> Ed25519PrivateKey:
    """An Ed25519 private key from its 32-byte seed (test vectors)."""
    return Ed25519PrivateKey.from_private_bytes(raw)


def ed25519_public_raw(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes_raw()


def ed25519_public_from_raw(raw: bytes) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise KeyFileError(f"not an Ed25519 public key ({len(raw)} bytes): {exc}") from exc


def ed25519_sign(key: Ed25519PrivateKey, data: Buffer) -> bytes:
    return key.sign(data)


def ed25519_verify(key: Ed25519PublicKey, signature: Buffer, data: Buffer) -> None:
    """Raise BadSignature unless ``signature`` is ``key``'s signature over ``data``."""
    try:
        key.verify(signature, data)
    except InvalidSignature as exc:
        raise BadSignature("the envelope's Ed25519 signature does not verify") from exc


# --- X25519 ----------------------------------------------------------------------------------


def x25519_generate() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def x25519_from_raw(raw: bytes) -> X25519PrivateKey:
    """An X25519 private key from 32 raw bytes (seal's ``rng``; test vectors)."""
    return X25519PrivateKey.from_private_bytes(raw)


def x25519_public_raw(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return public.public_bytes_raw()


def x25519_public_from_raw(raw: bytes) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise KeyFileError(f"not an X25519 public key ({len(raw)} bytes): {exc}") from exc


def x25519_agree(private: X25519PrivateKey, public: X25519PublicKey | bytes) -> bytes:
    """The shared secret; DecryptionFailed for a low-order point (an all-zero secret)."""
    try:
        if isinstance(public, bytes):
            public = X25519PublicKey.from_public_bytes(public)
        return private.exchange(public)
    except ValueError as exc:
        raise DecryptionFailed(f"X25519 agreement failed: {exc}") from exc


# --- HKDF and AES-GCM ------------------------------------------------------------------------


def hkdf_sha256(secret: bytes, *, salt: bytes, info: bytes, length: int = KEY_BYTES) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(secret)


def aes_gcm_encrypt(key: bytes, nonce: bytes, plaintext: Buffer, aad: Buffer) -> bytes:
    """Ciphertext followed by the 16-byte tag."""
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext: Buffer, aad: Buffer) -> bytes:
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise DecryptionFailed(
            "AES-GCM authentication failed: the envelope was not sealed to this server key",
            hint="the client may hold an outdated server.pub; give it the current one",
        ) from exc


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# --- key files (PEM, PKCS#8) -----------------------------------------------------------------


def private_key_to_pem(key: Ed25519PrivateKey | X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_key_from_pem(data: bytes, *, where: str) -> Ed25519PrivateKey | X25519PrivateKey:
    """Parse an unencrypted PKCS#8 PEM private key; KeyFileError naming ``where`` otherwise."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(
            f"{where} is not an unencrypted PEM private key: {exc}",
            hint="generate a new key with `keys init`, or point the config at the right file",
        ) from exc
    if not isinstance(key, Ed25519PrivateKey | X25519PrivateKey):
        raise KeyFileError(
            f"{where} holds a key of type {type(key).__name__}, not an Ed25519 or X25519 key",
            hint="fsm uses Ed25519 (client) and X25519 (server) keys made by `keys init`",
        )
    return key


__all__ = [
    "CRYPTOGRAPHY_ERRORS",
    "KEY_BYTES",
    "NONCE_BYTES",
    "SIGNATURE_BYTES",
    "TAG_BYTES",
    "aes_gcm_decrypt",
    "aes_gcm_encrypt",
    "ed25519_from_raw",
    "ed25519_generate",
    "ed25519_public_from_raw",
    "ed25519_public_raw",
    "ed25519_sign",
    "ed25519_verify",
    "hkdf_sha256",
    "private_key_from_pem",
    "private_key_to_pem",
    "sha256",
    "x25519_agree",
    "x25519_from_raw",
    "x25519_generate",
    "x25519_public_from_raw",
    "x25519_public_raw",
]
