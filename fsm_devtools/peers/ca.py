"""A throw-away test CA and one server certificate it signed, for the peers that speak TLS (the
mail stack, the HTTPS servers), so clients verify TLS exactly as in production.

>>> ca = TestCa.create(tmp_path / "tls", server_names=["mail.fsm.test", "127.0.0.1"])  # doctest: +SKIP
>>> ssl.create_default_context(cafile=ca.ca_file)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
CERT_FILE = "server.pem"
KEY_FILE = "server.key"

_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    path.chmod(mode)  # os.open's mode passes through the umask


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class TestCa:
    """A CA certificate (``ca_file``) and a server certificate it signed (``cert_file``, key in
    ``key_file``, 0600) for ``server_names``, the first of which is its common name."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    __test__ = False  # not a pytest test class

    @classmethod
    def in_dir(cls, directory: Path) -> TestCa:
        """The files of a CA made in ``directory`` (made or not)."""
        return cls(directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE)

    @property
    def complete(self) -> bool:
        return all(p.exists() for p in (self.ca_file, self.cert_file, self.key_file))

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        name: str = "fsm test CA",
        server_names: Sequence[str] = ("localhost", "127.0.0.1"),
        days: int = 30,
    ) -> TestCa:
        """A new CA and a server certificate for ``server_names`` (host names or IP addresses),
        valid from yesterday for ``days``. The directory becomes world-readable (0755, the
        certificates 0644) so that daemons that drop privileges can read them; the private keys
        (``server.key``, ``ca.key``) are 0600. ``ca.pem`` is written last: it marks a complete set."""
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(ca_ski, critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_names[0])]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(
                x509.SubjectAlternativeName([_general_name(n) for n in server_names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        made = cls.in_dir(directory)
        _write(made.key_file, _pem_key(key), 0o600)
        _write(directory / CA_KEY_FILE, _pem_key(ca_key), 0o600)
        _write(made.cert_file, cert.public_bytes(serialization.Encoding.PEM), 0o644)
        _write(made.ca_file, ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
        return made

    @classmethod
    def once(cls, directory: Path, *, name: str, server_names: Sequence[str], days: int) -> TestCa:
        """The CA already made in ``directory``, else a new one (as ``create``): a peer whose state
        outlives a run keeps one CA, so clients that trusted it keep trusting it."""
        found = cls.in_dir(directory)
        if found.complete:
            return found
        return cls.create(directory, name=name, server_names=server_names, days=days)


__all__ = ["CA_FILE", "CERT_FILE", "KEY_FILE", "TestCa"]
