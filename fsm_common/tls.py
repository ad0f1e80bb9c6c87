"""The TLS context of every mail connection (SMTP relay, IMAP mailbox): certificates are always
verified, against the system's CAs or the one CA file the config names."""

from __future__ import annotations

import ssl
from pathlib import Path

from fsm_protocol.errors import ConfigError


def tls_context(ca_file: Path | None, *, what: str, knob: str, peer: str) -> ssl.SSLContext:
    """A verifying client context. Errors name the setting as ``what`` ("smtp ca_file"); hints
    name it as ``knob`` ("[smtp] ca_file") and the server whose certificate it is as ``peer``."""
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except FileNotFoundError:
        raise ConfigError(f"{what} {str(ca_file)!r} does not exist", hint=f"fix {knob}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"{what} {str(ca_file)!r} holds no usable PEM certificate: {exc}",
            hint=f"{knob} must be the PEM certificate of the CA that signed the {peer}'s certificate",
        ) from None


__all__ = ["tls_context"]
