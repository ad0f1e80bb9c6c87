"""crypto.py is the one boundary for `cryptography`: each library exception becomes an fsm error."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fsm_protocol import crypto
from fsm_protocol.errors import BadSignature, DecryptionFailed, FsmError, KeyFileError


def test_the_mapping_names_only_fsm_errors() -> None:
    assert set(crypto.CRYPTOGRAPHY_ERRORS) == {InvalidSignature, InvalidTag, UnsupportedAlgorithm}
    assert all(issubclass(target, FsmError) for target in crypto.CRYPTOGRAPHY_ERRORS.values())


def test_invalid_signature_becomes_bad_signature() -> None:
    key = crypto.ed25519_generate()
    signature = crypto.ed25519_sign(key, b"header and ciphertext")
    crypto.ed25519_verify(key.public_key(), signature, b"header and ciphertext")
    with pytest.raises(BadSignature) as caught:
        crypto.ed25519_verify(key.public_key(), signature, b"header and ciphertexT")
    assert isinstance(caught.value.__cause__, InvalidSignature)


def test_invalid_tag_becomes_decryption_failed() -> None:
    key, nonce = bytes(32), bytes(12)
    sealed = crypto.aes_gcm_encrypt(key, nonce, b"report", b"aad")
    assert crypto.aes_gcm_decrypt(key, nonce, memoryview(sealed), b"aad") == b"report"
    with pytest.raises(DecryptionFailed, match="not sealed to this server key") as caught:
        crypto.aes_gcm_decrypt(bytes([1]) + key[1:], nonce, sealed, b"aad")
    assert isinstance(caught.value.__cause__, InvalidTag)


def test_a_low_order_ephemeral_key_fails_decryption_not_the_process() -> None:
    with pytest.raises(DecryptionFailed, match="X25519 agreement failed"):
        crypto.x25519_agree(crypto.x25519_generate(), bytes(32))


def test_a_pem_of_another_algorithm_is_a_key_file_error() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFileError, match="holds a key of type ECPrivateKey, not an Ed25519 or X25519 key"):
        crypto.private_key_from_pem(pem, where="k.pem")


def test_encrypted_pem_is_a_key_file_error() -> None:
    pem = crypto.ed25519_generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(KeyFileError, match=r"k\.pem is not an unencrypted PEM private key"):
        crypto.private_key_from_pem(pem, where="k.pem")
