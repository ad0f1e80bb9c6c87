"""A real HTTPS server on loopback (Python's ``http.server`` with TLS) and a throw-away test CA.

Serves byte strings from ``routes`` (changeable while running); a ``Truncated`` route sends
a Content-Length larger than its body and closes the connection, as a download that broke.

>>> ca = TestCa.create(tmp_path)   # doctest: +SKIP
>>> with HttpsServer(ca, {"/bundle.zip": data}) as server:   # doctest: +SKIP
...     server.url("/bundle.zip")
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class HttpsServerError(RuntimeError):
    """The server did not complete a TLS handshake within ``ready_timeout``."""


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass(frozen=True)
class TestCa:
    """A CA certificate and a server certificate it signed, for 127.0.0.1 and localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    __test__ = False  # not a pytest test class

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        name: str = "fsm test CA",
        server_names: Sequence[str] = ("localhost", "127.0.0.1"),
    ) -> TestCa:
        """A new CA and a server certificate for ``server_names`` (host names or IP addresses)."""
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
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
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(
                x509.SubjectAlternativeName([_general_name(n) for n in server_names]), critical=False
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        ca_file, cert_file = directory / "ca.pem", directory / "server.pem"
        key_file = directory / "server.key"
        ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_file.chmod(0o600)
        return cls(ca_file, cert_file, key_file)


@dataclass(frozen=True)
class Truncated:
    """A response that declares ``declared`` bytes, sends ``body`` and closes."""

    body: bytes
    declared: int


@dataclass(frozen=True)
class Redirect:
    """A 302 answer pointing to ``location``."""

    location: str


class HttpsServer:
    """``ThreadingHTTPServer`` over TLS on 127.0.0.1; ``requests`` lists the paths asked for."""

    def __init__(
        self,
        ca: TestCa,
        routes: dict[str, bytes | Truncated | Redirect] | None = None,
        *,
        ready_timeout: float = 10.0,
    ) -> None:
        self.ca = ca
        self.routes: dict[str, bytes | Truncated | Redirect] = dict(routes or {})
        self.requests: list[str] = []
        self.ready_timeout = ready_timeout
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the server first"
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def start(self) -> HttpsServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                body = owner.routes.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                if isinstance(body, Redirect):
                    self.send_response(302)
                    self.send_header("Location", body.location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                if isinstance(body, Truncated):
                    self.send_header("Content-Length", str(body.declared))
                    self.end_headers()
                    self.wfile.write(body.body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca.cert_file, self.ca.key_file)
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="https-peer", daemon=True)
        self._thread.start()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Return once a TLS handshake with the server succeeds (its greeting)."""
        client = ssl.create_default_context(cafile=str(self.ca.ca_file))
        client.check_hostname = False  # a readiness probe; tests may serve a certificate for another name
        deadline = time.monotonic() + self.ready_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as raw,
                    client.wrap_socket(raw, server_hostname="127.0.0.1"),
                ):
                    return
            except OSError as exc:
                last = exc
                time.sleep(0.02)
        self.stop()
        raise HttpsServerError(
            f"the HTTPS server on 127.0.0.1 did not complete a TLS handshake within "
            f"ready_timeout={self.ready_timeout}s: {last}"
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HttpsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["HttpsServer", "HttpsServerError", "Redirect", "TestCa", "Truncated"]
