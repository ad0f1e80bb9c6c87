"""Signed PMD bundles: the ZIP format, its checks, and the publisher's builder.

A bundle is a ZIP archive holding exactly::

    manifest.json   format, version, created_at, and path / sha256 / size of every file
    manifest.sig    the publisher's detached Ed25519 signature over manifest.json
    pmd/<id>.toml   the PMD files, flat, nothing else

Opening a bundle (``open_bundle``) never trusts the archive: the central directory is
checked against ``Limits`` (entry count, sizes, compression ratio, names: no absolute path,
no ``..``, no link, no directory, no duplicate, only ``pmd/<id>.toml``) BEFORE a byte is
decompressed; then the signature is verified against the pinned publisher keys; then every
file is read with a size bound and compared with the manifest's sha256 and size. Only a
bundle that passes all of it comes back, as bytes in memory: installing it is
``fsm_client.pmd.distribution.sets``' job, and nothing here writes outside the publisher's output file.

The signature is over ``SIGNATURE_CONTEXT + manifest.json`` so that a signature made for a
bundle can never be confused with one the same kind of key makes elsewhere.

This module is the one place that translates ``zipfile``/``zlib`` exceptions.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import stat
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from fsm_protocol.errors import BadSignature

from ...errors import PmdBundleError, PmdBundleSignatureError, PmdBundleUnknownKey, PmdError

if TYPE_CHECKING:
    from fsm_protocol.keys import SigningKey, VerifyKey

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
POOL_PREFIX = "pmd/"
SIGNATURE_CONTEXT = b"fsm-pmd-bundle-v1\n"
#: A PMD file name inside a bundle: the loader's id rule, flat under pmd/.
_POOL_ENTRY = re.compile(r"pmd/([a-z0-9][a-z0-9_-]{0,63})\.toml")  # used with fullmatch ($ allows "\n")
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: The zip time stamp of every entry (ZIP cannot store 1970); the manifest holds the real time.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Limits:
    """What a bundle may hold; checked from the central directory before decompressing."""

    max_bundle_bytes: int = 16 * 1024 * 1024  # the archive itself (also the download limit)
    max_entries: int = 1000
    max_file_bytes: int = 512 * 1024  # one PMD (the loader's MAX_PMD_BYTES)
    max_manifest_bytes: int = 1024 * 1024
    max_total_bytes: int = 64 * 1024 * 1024  # all entries, uncompressed
    max_ratio: int = 100  # uncompressed / compressed of one entry; TOML deflates ~5-10x


LIMITS = Limits()


class FileEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    path: str  # "pmd/<id>.toml"
    sha256: str  # lower-case hex
    size: int


class Manifest(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    format: int
    version: int  # monotonic integer; by default the UTC time of building, YYYYMMDDHHMMSS
    created_at: datetime
    files: list[FileEntry]


class Signature(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    algorithm: str  # "ed25519"
    key: str  # the signer's key fingerprint
    signature: str  # base64 of the 64-byte Ed25519 signature


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: every file's bytes, checked against the signed manifest."""

    manifest: Manifest
    manifest_bytes: bytes
    signature_bytes: bytes
    signer: str  # fingerprint of the publisher key that signed it
    files: dict[str, bytes] = field(repr=False)  # "<id>.toml" -> content

    @property
    def version(self) -> int:
        return self.manifest.version


def _reject(message: str, hint: str = "") -> PmdBundleError:
    return PmdBundleError(
        message, hint=hint or "get the bundle again from its publisher; the active PMD set was left unchanged"
    )


# --- checks on the central directory ------------------------------------------------------------


def _is_link(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def check_entries(infos: Sequence[zipfile.ZipInfo], limits: Limits = LIMITS) -> None:
    """Refuse an archive whose directory breaks a limit or names anything but our entries."""
    if len(infos) > limits.max_entries:
        raise _reject(f"the bundle has {len(infos)} entries, over the limit of {limits.max_entries}")
    seen: set[str] = set()
    total = 0
    for info in infos:
        if info.filename in seen:
            raise _reject(f"the bundle names {info.filename!r} twice")
        seen.add(info.filename)
        _check_name(info)
        _check_size(info, limits)
        total += info.file_size
        if total > limits.max_total_bytes:
            raise _reject(f"the bundle's entries add up to over {limits.max_total_bytes} bytes")
    for required in (MANIFEST_NAME, SIGNATURE_NAME):
        if required not in seen:
            raise _reject(f"the bundle has no {required}")


def _check_name(info: zipfile.ZipInfo) -> None:
    """An entry is a plain file at a portable relative path, one of the names a bundle holds."""
    name = info.filename
    shown = repr(name)
    if "\\" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name) or "\0" in name:
        raise _reject(f"bundle entry {shown} is an absolute or non-portable path")
    if any(part in ("..", ".") for part in name.split("/")):
        raise _reject(f"bundle entry {shown} contains '..' or '.' (path traversal)")
    if _is_link(info):
        raise _reject(f"bundle entry {shown} is a symbolic link")
    if info.is_dir():
        raise _reject(f"bundle entry {shown} is a directory; bundles hold files only")
    if name not in (MANIFEST_NAME, SIGNATURE_NAME) and not _POOL_ENTRY.fullmatch(name):
        raise _reject(f"bundle entry {shown} is not manifest.json, manifest.sig or pmd/<id>.toml")


def _check_size(info: zipfile.ZipInfo, limits: Limits) -> None:
    """An entry is stored or deflated, not encrypted, and within its size and ratio limits (as its
    directory declares them; reading checks the real sizes)."""
    shown = repr(info.filename)
    if info.flag_bits & 0x1:
        raise _reject(f"bundle entry {shown} is encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise _reject(
            f"bundle entry {shown} uses compression method {info.compress_type}; "
            "only stored and deflate are accepted"
        )
    small = info.filename in (MANIFEST_NAME, SIGNATURE_NAME)
    cap = limits.max_manifest_bytes if small else limits.max_file_bytes
    if info.file_size > cap:
        raise _reject(f"bundle entry {shown} is {info.file_size} bytes uncompressed, over the limit of {cap}")
    if info.file_size > limits.max_ratio * max(info.compress_size, 1):
        raise _reject(
            f"bundle entry {shown} expands {info.file_size} bytes from {info.compress_size} "
            f"(over {limits.max_ratio}:1): refusing a likely zip bomb"
        )


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes:
    """One entry, never more than ``cap`` bytes inflated (zipfile also stops at the declared
    size and checks the CRC, so a directory that lies about sizes fails here)."""
    with zf.open(info) as f:
        data = f.read(cap + 1)
    if len(data) > cap or len(data) != info.file_size:
        raise _reject(f"bundle entry {info.filename!r} does not have the size its directory declares")
    return data


#: What zipfile and zlib raise on a damaged or hostile archive; translated here only.
ZIP_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    OSError,
)


# --- signatures ----------------------------------------------------------------------------------


def sign_manifest(manifest_bytes: bytes, signing_key: SigningKey) -> bytes:
    """The manifest.sig for ``manifest_bytes``."""
    sig = signing_key.sign(SIGNATURE_CONTEXT + manifest_bytes)
    return (
        msgspec.json.encode(
            Signature("ed25519", signing_key.public.fingerprint, base64.b64encode(sig).decode("ascii"))
        )
        + b"\n"
    )


def verify_manifest(
    manifest_bytes: bytes, signature_bytes: bytes, publisher_keys: Sequence[VerifyKey]
) -> str:
    """The fingerprint of the pinned key whose signature ``signature_bytes`` is, else an error."""
    if not publisher_keys:
        raise PmdBundleUnknownKey(
            "no publisher key is pinned, so no bundle can be trusted",
            hint="add the publisher's public key to [pmd.update] publisher_keys",
        )
    try:
        sig = msgspec.json.decode(signature_bytes, type=Signature)
        raw = base64.b64decode(sig.signature, validate=True)
    except (msgspec.DecodeError, ValueError) as exc:
        raise PmdBundleSignatureError(f"manifest.sig is malformed: {exc}") from exc
    if sig.algorithm != "ed25519":
        raise PmdBundleSignatureError(f"manifest.sig uses algorithm {sig.algorithm!r}; only ed25519 is known")
    by_fp = {k.fingerprint: k for k in publisher_keys}
    key = by_fp.get(sig.key)
    if key is None:
        raise PmdBundleUnknownKey(
            f"the bundle is signed by publisher key {sig.key!r}, which is not pinned "
            f"(pinned: {', '.join(sorted(by_fp))})",
            hint="if you trust this publisher, add its public key to [pmd.update] publisher_keys",
        )
    try:
        key.verify(raw, SIGNATURE_CONTEXT + manifest_bytes)
    except BadSignature:
        raise PmdBundleSignatureError(
            f"the bundle's signature does not verify with publisher key {sig.key!r}"
        ) from None
    return key.fingerprint


# --- opening -------------------------------------------------------------------------------------


def open_bundle(data: bytes, *, publisher_keys: Sequence[VerifyKey], limits: Limits = LIMITS) -> Bundle:
    """Check ``data`` fully (see the module docstring) and return its verified content."""
    if len(data) > limits.max_bundle_bytes:
        raise _reject(f"the bundle is {len(data)} bytes, over the limit of {limits.max_bundle_bytes}")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            infos = zf.infolist()
            check_entries(infos, limits)
            by_name = {i.filename: i for i in infos}
            manifest_bytes = _read_entry(zf, by_name[MANIFEST_NAME], limits.max_manifest_bytes)
            signature_bytes = _read_entry(zf, by_name[SIGNATURE_NAME], limits.max_manifest_bytes)
            signer = verify_manifest(manifest_bytes, signature_bytes, publisher_keys)
            manifest = _decode_manifest(manifest_bytes)
            listed = {f.path: f for f in manifest.files}
            present = {n for n in by_name if n.startswith(POOL_PREFIX)}
            if set(listed) != present:
                missing = sorted(set(listed) - present)
                extra = sorted(present - set(listed))
                raise _reject(
                    f"the bundle's files do not match its manifest (missing {missing}, not listed {extra})"
                )
            files: dict[str, bytes] = {}
            for path, entry in sorted(listed.items()):
                content = _read_entry(zf, by_name[path], limits.max_file_bytes)
                digest = hashlib.sha256(content).hexdigest()
                if len(content) != entry.size or not hmac.compare_digest(digest, entry.sha256):
                    raise _reject(
                        f"{path} does not match its sha256 in the signed manifest: "
                        "the bundle was altered after signing"
                    )
                files[path.removeprefix(POOL_PREFIX)] = content
    except PmdError:
        raise
    except ZIP_ERRORS as exc:
        raise _reject(
            f"the bundle is not a complete, readable ZIP archive ({exc})",
            hint="the file may be truncated: download it again; the active PMD set was left unchanged",
        ) from exc
    return Bundle(manifest, manifest_bytes, signature_bytes, signer, files)


def _decode_manifest(data: bytes) -> Manifest:
    try:
        manifest = msgspec.json.decode(data, type=Manifest)
    except msgspec.DecodeError as exc:
        raise _reject(f"manifest.json is not a valid manifest: {exc}") from exc
    if manifest.format != FORMAT_VERSION:
        raise _reject(
            f"manifest.json has format {manifest.format}; this client reads format {FORMAT_VERSION}",
            hint="upgrade fsm-client",
        )
    if manifest.version < 1:
        raise _reject(f"manifest.json has version {manifest.version}; versions start at 1")
    if manifest.created_at.tzinfo is None:
        raise _reject("manifest.json created_at has no time zone")
    seen: set[str] = set()
    for f in manifest.files:
        if not _POOL_ENTRY.fullmatch(f.path) or f.path in seen:
            raise _reject(f"manifest.json lists {f.path!r}, not a unique pmd/<id>.toml path")
        if not _SHA256.fullmatch(f.sha256) or f.size < 0:
            raise _reject(f"manifest.json entry {f.path!r} has a malformed sha256 or size")
        seen.add(f.path)
    if not manifest.files:
        raise _reject("manifest.json lists no PMD files")
    return manifest


# --- building (the publisher's side) ---------------------------------------------------------------


def build_bundle(
    files: Mapping[str, bytes], *, version: int, signing_key: SigningKey, created_at: datetime
) -> bytes:
    """A signed bundle of ``files`` ({"<id>.toml": content}); nothing is validated here."""
    entries = [
        FileEntry(POOL_PREFIX + name, hashlib.sha256(content).hexdigest(), len(content))
        for name, content in sorted(files.items())
    ]
    manifest = Manifest(
        format=FORMAT_VERSION, version=version, created_at=created_at.astimezone(UTC), files=entries
    )
    manifest_bytes = msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in (
            (MANIFEST_NAME, manifest_bytes),
            (SIGNATURE_NAME, sign_manifest(manifest_bytes, signing_key)),
            *((POOL_PREFIX + n, files[n]) for n in sorted(files)),
        ):
            info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
    return out.getvalue()


def default_version(now: datetime) -> int:
    """The version the publisher tool gives when none is asked for: UTC YYYYMMDDHHMMSS."""
    return int(now.astimezone(UTC).strftime("%Y%m%d%H%M%S"))


def build_from_dir(
    pmd_dir: Path, *, signing_key: SigningKey, version: int | None = None, now: datetime | None = None
) -> tuple[bytes, Manifest]:
    """Validate every PMD of ``pmd_dir`` with the real loader, then build and sign a bundle.

    A PMD that fails to load raises PmdError naming the file and key: nothing is published.
    """
    from ..authoring.loader import load_pool  # lazily: the loader pulls in the transform registry

    now = now or datetime.now(UTC)
    pmd_dir = Path(pmd_dir)
    load_pool([pmd_dir])
    files: dict[str, bytes] = {}
    for path in sorted(pmd_dir.glob("*.toml")):
        if path.is_symlink() or not path.is_file():
            raise PmdError(f"{path} is not a regular file", hint="bundles carry plain files only")
        files[path.name] = path.read_bytes()
    chosen = version if version is not None else default_version(now)
    if chosen < 1:
        raise PmdError(f"bundle version {chosen} is not a positive integer", hint="pass --version N >= 1")
    data = build_bundle(files, version=chosen, signing_key=signing_key, created_at=now)
    if len(data) > LIMITS.max_bundle_bytes:
        raise PmdError(
            f"the bundle would be {len(data)} bytes, over the {LIMITS.max_bundle_bytes} clients accept",
            hint="split the pool or drop unused PMDs",
        )
    return data, msgspec.json.decode(_manifest_of(data), type=Manifest)


def _manifest_of(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return zf.read(MANIFEST_NAME)


__all__ = [
    "FORMAT_VERSION",
    "LIMITS",
    "MANIFEST_NAME",
    "POOL_PREFIX",
    "SIGNATURE_CONTEXT",
    "SIGNATURE_NAME",
    "ZIP_ERRORS",
    "Bundle",
    "FileEntry",
    "Limits",
    "Manifest",
    "Signature",
    "build_bundle",
    "build_from_dir",
    "check_entries",
    "default_version",
    "open_bundle",
    "sign_manifest",
    "verify_manifest",
]
