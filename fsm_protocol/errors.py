"""The root of every error fsm raises, and the protocol's own subtree.

Each error says what is wrong (quoting the bad value) and carries a ``hint`` saying what
to do. Errors that decide a quarantine also carry a stable ``reason`` code: that code is
what the server records, so it never changes once released.

Tree (client and server subtrees live in ``fsm_client.errors`` / ``fsm_server.errors``)::

    FsmError
    ├── ConfigError                 bad or missing setting; exit code 3
    ├── OutputError                 an output path (--out, --dir) cannot be written
    └── ProtocolError
        ├── KeyFileError            unreadable, malformed or too-open key file
        ├── SchemaError             reason "bad_schema"
        ├── MimeError               reason "malformed_mime"
        │   └── NotFsmMail          reason "not_fsm_mail"
        └── EnvelopeError           reason "malformed"
            ├── MalformedEnvelope   reason "malformed"
            ├── UnsupportedVersion  reason "version_not_supported"
            ├── TooLarge            reason "too_large"
            ├── UnknownKey          reason "unknown_key"
            ├── BadSignature        reason "bad_signature"
            ├── DecryptionFailed    reason "decryption_failed"
            └── ChunkError          reason "bad_chunk"
"""

from __future__ import annotations


class FsmError(Exception):
    """Base of every error fsm raises on purpose.

    >>> raise FsmError("cannot read '/x'", hint="check the path")
    Traceback (most recent call last):
    fsm_protocol.errors.FsmError: cannot read '/x'
    """

    reason: str = "error"
    exit_code: int = 1
    default_hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint if hint is not None else self.default_hint
        if reason is not None:
            self.reason = reason


class ConfigError(FsmError):
    """A setting is missing, unknown or of the wrong type; raised at start-up."""

    reason = "bad_config"
    exit_code = 3


class OutputError(FsmError):
    """A file or directory the user asked for (``--out``, ``--dir``) cannot be written."""

    reason = "cannot_write"


class ProtocolError(FsmError):
    """Something in the wire format or its key material is wrong."""

    reason = "protocol_error"


class KeyFileError(ProtocolError):
    reason = "bad_key_file"


class SchemaError(ProtocolError):
    reason = "bad_schema"
    default_hint = "the sender runs a client that does not follow report schema v1"


class MimeError(ProtocolError):
    reason = "malformed_mime"


class NotFsmMail(MimeError):
    reason = "not_fsm_mail"
    default_hint = "this mail was not sent by fsm-client; it is kept in quarantine for a person to read"


class EnvelopeError(ProtocolError):
    reason = "malformed"


class MalformedEnvelope(EnvelopeError):
    """The bytes are not an envelope of the layout they claim (reason "malformed", as its base)."""


class UnsupportedVersion(EnvelopeError):
    reason = "version_not_supported"
    default_hint = "upgrade the side that runs the older fsm version"


class TooLarge(EnvelopeError):
    reason = "too_large"


class UnknownKey(EnvelopeError):
    reason = "unknown_key"


class BadSignature(EnvelopeError):
    reason = "bad_signature"
    default_hint = "the envelope was altered, or the client signs with a key other than the one registered"


class DecryptionFailed(EnvelopeError):
    reason = "decryption_failed"


class ChunkError(EnvelopeError):
    reason = "bad_chunk"


__all__ = [
    "BadSignature",
    "ChunkError",
    "ConfigError",
    "DecryptionFailed",
    "EnvelopeError",
    "FsmError",
    "KeyFileError",
    "MalformedEnvelope",
    "MimeError",
    "NotFsmMail",
    "OutputError",
    "ProtocolError",
    "SchemaError",
    "TooLarge",
    "UnknownKey",
    "UnsupportedVersion",
]
