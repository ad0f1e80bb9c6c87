"""Serving the portal: uvicorn over TLS 1.2 or later, an optional plain-HTTP listener that only
redirects, proxy headers believed from the configured proxies only, and a self-signed
certificate for first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ..context import ServerContext
from ..errors import WebError
from .app import create_app, public_url

SELF_SIGNED_DAYS = 90


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    self_signed: bool = False


def _san(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    try:
        ip = ipaddress.ip_address(host)
        if not ip.is_unspecified and str(ip) not in ("127.0.0.1", "::1"):
            names.append(x509.IPAddress(ip))
    except ValueError:
        if host and host != "localhost":
            names.append(x509.DNSName(host))
    return names


def make_self_signed(directory: Path, host: str, *, now: datetime | None = None) -> TlsFiles:
    """A P-256 certificate for ``host`` (and localhost) in ``directory``, valid 90 days; an existing
    one is kept while it has more than a week left."""
    now = now or datetime.now(UTC)
    cert_path, key_path = directory / "self-signed.crt", directory / "self-signed.key"
    if cert_path.is_file() and key_path.is_file():
        with contextlib.suppress(ValueError):
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            if cert.not_valid_after_utc - now > timedelta(days=7) and all(
                n in cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                for n in _san(host)
            ):
                return TlsFiles(cert_path, key_path, self_signed=True)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, host or "localhost"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fsm portal (self-signed)"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=SELF_SIGNED_DAYS))
            .add_extension(x509.SubjectAlternativeName(_san(host)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256())
        )
        key_path.touch(mode=0o600, exist_ok=True)
        key_path.chmod(0o600)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise WebError(
            f"cannot write a self-signed certificate in {str(directory)!r}: {exc.strerror or exc}",
            hint="choose a --data-dir this user can write",
        ) from exc
    return TlsFiles(cert_path, key_path, self_signed=True)


def tls_files(ctx: ServerContext, host: str, *, self_signed: bool) -> TlsFiles:
    """The certificate and key to serve with: [web] cert_file/key_file, or a self-signed pair."""
    web = ctx.config.web
    if self_signed:
        return make_self_signed(ctx.data_dir / "web", host)
    if web.cert_file is None or web.key_file is None:
        raise WebError(
            "the portal is served over HTTPS only, and [web] cert_file and key_file are not set",
            hint="set them in the config to your certificate and key (PEM), or start with "
            "`fsm-server web --self-signed` to try it with a certificate browsers warn about",
        )
    for what, path in (("cert_file", web.cert_file), ("key_file", web.key_file)):
        if not path.is_file():
            raise WebError(
                f"[web] {what} {str(path)!r} does not exist or is not a file",
                hint="give the PEM file's full path",
            )
    return TlsFiles(web.cert_file, web.key_file)


def tls_context(files: TlsFiles) -> ssl.SSLContext:
    """TLS 1.2 or later, the certificate loaded (WebError naming the file when it cannot be)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(files.cert, files.key)
    except (ssl.SSLError, OSError) as exc:
        raise WebError(
            f"cannot load the certificate {str(files.cert)!r} with key {str(files.key)!r}: {exc}",
            hint="both must be PEM, the key unencrypted and matching the certificate",
        ) from exc
    return context


class _TlsConfig(uvicorn.Config):
    """uvicorn's config with our TLS context (uvicorn's own sets no minimum version)."""

    def __init__(self, app: Any, *, tls: ssl.SSLContext, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._tls = tls

    def load(self) -> None:
        super().load()
        self.ssl = self._tls


def redirect_app(https_port: int) -> Any:
    """An ASGI app that answers every request with a redirect to the same path over HTTPS."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), "localhost")
        bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        port = "" if https_port == 443 else f":{https_port}"
        path = scope.get("raw_path", b"/").decode("latin-1") or "/"
        query = scope.get("query_string", b"").decode("latin-1")
        location = f"https://{bare}{port}{path}" + (f"?{query}" if query else "")
        await send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [
                    (b"location", location.encode("latin-1")),
                    (b"content-length", b"0"),
                    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    return app


def servers(
    ctx: ServerContext, *, host: str, port: int, files: TlsFiles, app: Any = None
) -> tuple[uvicorn.Server, uvicorn.Server | None]:
    """The HTTPS server and, with [web] redirect_port, the redirecting HTTP one."""
    web = ctx.config.web
    app = app or create_app(ctx, base_url=public_url(ctx, host, port))
    proxies = list(web.trusted_proxies)
    main = uvicorn.Server(
        _TlsConfig(
            app,
            tls=tls_context(files),
            host=host,
            port=port,
            proxy_headers=bool(proxies),
            forwarded_allow_ips=proxies or None,
            server_header=False,
            log_level="info",
            lifespan="off",
            ssl_certfile=str(files.cert),
            ssl_keyfile=str(files.key),
        )
    )
    redirect = None
    if web.redirect_port is not None:
        redirect = uvicorn.Server(
            uvicorn.Config(
                redirect_app(port),
                host=host,
                port=web.redirect_port,
                proxy_headers=False,
                server_header=False,
                log_level="warning",
                lifespan="off",
            )
        )
    return main, redirect


async def serve(main: uvicorn.Server, redirect: uvicorn.Server | None) -> None:
    """Run both until the HTTPS server stops (SIGINT/SIGTERM)."""
    if redirect is None:
        await main.serve()
        return
    task = asyncio.create_task(redirect.serve())
    try:
        await main.serve()
    finally:
        redirect.should_exit = True
        await task


@contextlib.contextmanager
def running_in_thread(main: uvicorn.Server, redirect: uvicorn.Server | None = None) -> Iterator[None]:
    """Serve in a background thread until the block ends (tests, the demo)."""
    import threading
    import time

    thread = threading.Thread(target=lambda: asyncio.run(serve(main, redirect)), name="fsm-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not main.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise WebError("the portal did not start within 30 s", hint="see the log above")
        time.sleep(0.02)
    try:
        yield
    finally:
        main.should_exit = True
        thread.join(timeout=15)


__all__ = [
    "SELF_SIGNED_DAYS",
    "TlsFiles",
    "make_self_signed",
    "redirect_app",
    "running_in_thread",
    "serve",
    "servers",
    "tls_context",
    "tls_files",
]
