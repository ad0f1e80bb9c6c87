"""Passwords: argon2id hashes (argon2-cffi's defaults, re-hashed at login when they change) and the
policy: at least 12 characters, at most 256, no composition rules, none of a shipped list of
common passwords (``common-passwords.txt``, its source named in its header).

>>> check_policy("correct horse battery staple")
>>> check_policy("password1234")  # doctest: +ELLIPSIS
Traceback (most recent call last):
fsm_server.errors.AccountError: this password is in the list of common passwords, which attackers try first
>>> h = hash_password("correct horse battery staple")
>>> verify_password(h, "correct horse battery staple"), verify_password(h, "wrong")
(True, False)
"""

from __future__ import annotations

import functools
import threading
import unicodedata
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..errors import AccountError

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 takes any length; a bound keeps a megabyte "password" from costing memory
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt")

_hasher = PasswordHasher()  # argon2id, RFC 9106's low-memory profile (m=64 MiB, t=3, p=4)
# each hash holds 64 MiB for a third of a second: a burst of logins waits here instead of
# taking the machine's memory
_slots = threading.BoundedSemaphore(4)


def _normal(password: str) -> str:
    # the same password typed on another keyboard or system must match (ASVS 6.2.9: NFKC)
    return unicodedata.normalize("NFKC", password)


@functools.cache
def common_passwords() -> frozenset[str]:
    lines = COMMON_PASSWORDS.read_text(encoding="utf-8").splitlines()
    return frozenset(line for line in lines if line and not line.startswith("# "))


def check_policy(password: str, *, user_name: str = "") -> None:
    """AccountError saying why ``password`` is refused; None when it is acceptable."""
    text = _normal(password)
    if len(text) < MIN_LENGTH:
        raise AccountError(
            f"the password has {len(text)} characters; it needs at least {MIN_LENGTH}",
            hint="a few unrelated words make a long password that is easy to remember",
        )
    if len(text) > MAX_LENGTH:
        raise AccountError(
            f"the password has {len(text)} characters; at most {MAX_LENGTH} are accepted",
            hint="choose a shorter one",
        )
    if text.lower() in common_passwords():
        raise AccountError(
            "this password is in the list of common passwords, which attackers try first",
            hint="choose another one, e.g. a few unrelated words",
        )
    if user_name and user_name.casefold() in text.casefold():
        raise AccountError("the password contains the user name", hint="choose one without it")


def hash_password(password: str) -> str:
    with _slots:
        return _hasher.hash(_normal(password))


def verify_password(password_hash: str, password: str) -> bool:
    try:
        with _slots:
            return _hasher.verify(password_hash, _normal(password)[: MAX_LENGTH * 4])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with other parameters than today's: re-hash at the next login."""
    return _hasher.check_needs_rehash(password_hash)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("fsm dummy password, never valid")


def burn_time(password: str) -> None:
    """Verify against a dummy hash: an unknown user costs as much time as a wrong password."""
    verify_password(_dummy_hash(), password)


__all__ = [
    "COMMON_PASSWORDS",
    "MAX_LENGTH",
    "MIN_LENGTH",
    "burn_time",
    "check_policy",
    "common_passwords",
    "hash_password",
    "needs_rehash",
    "verify_password",
]
