"""The second factor: TOTP (RFC 6238, 30-second steps, 6 digits, one step of clock drift either
way, each step's code accepted once) and one-time recovery codes kept as SHA-256 hashes.

>>> secret = new_secret()
>>> code = pyotp.TOTP(secret).at(1_000_000)
>>> accepted_step(secret, code, last_step=0, now=1_000_000) == 1_000_000 // 30
True
>>> accepted_step(secret, code, last_step=1_000_000 // 30, now=1_000_000) is None  # used already
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import pyotp

ISSUER = "fsm portal"
RECOVERY_CODES = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper without doubt


def new_secret() -> str:
    return pyotp.random_base32(32)  # 160 bits, RFC 4226's recommended length


def otpauth_uri(secret: str, user_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=user_name, issuer_name=ISSUER)


def accepted_step(secret: str, code: str, *, last_step: int, now: float | None = None) -> int | None:
    """The time step ``code`` belongs to (now or one step either side) if later than ``last_step``."""
    digits = "".join(ch for ch in code if not ch.isspace())
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    at = time.time() if now is None else now
    current = int(at) // totp.interval
    found = None
    for step in (current - 1, current, current + 1):
        # compare every candidate: the time taken does not tell which one matched
        if hmac.compare_digest(totp.generate_otp(step), digits) and step > last_step:
            found = step
    return found


def code_hash(code: str) -> str:
    normal = "".join(ch for ch in code.lower() if ch.isalnum())
    return hashlib.sha256(normal.encode()).hexdigest()


def new_recovery_codes(n: int = RECOVERY_CODES) -> list[str]:
    """``n`` codes of 16 characters (about 79 bits each), shown as xxxx-xxxx-xxxx-xxxx."""
    codes = []
    for _ in range(n):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return codes


def looks_like_recovery_code(text: str) -> bool:
    return len("".join(ch for ch in text if ch.isalnum())) == 16


__all__ = [
    "ISSUER",
    "RECOVERY_CODES",
    "accepted_step",
    "code_hash",
    "looks_like_recovery_code",
    "new_recovery_codes",
    "new_secret",
    "otpauth_uri",
]
