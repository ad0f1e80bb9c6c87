"""Get a PMD bundle (file, HTTPS URL or synced directory), verify it, install it; daily if configured.

``install_from(source, config=..., data_dir=..., now=...)`` is what ``fsm-client pmd update``
runs: read the bundle (size-bounded), ``bundle.open_bundle`` with the pinned publisher keys
of ``[pmd.update]``, then ``PmdSets.install`` with a check that the staged set loads with
the real loader together with the shipped set and the local overrides.

``Updater`` is the daily schedule: ``update_if_due(now)`` checks the configured ``url`` or
``directory`` once a day at ``[pmd.update] hour`` (local time of ``schedule.timezone``),
and on start-up when it never checked. A check whose download failed (network, TLS, a
truncated transfer) is retried after ``RETRY_AFTER``; a bundle that was refused or is not
newer is handled for the day. Its state lives in ``<data_dir>/pmd-sets/update.json``.
``update_if_due`` blocks (a download may take up to ``timeout``): from an event loop, run
it with ``await asyncio.to_thread(updater.update_if_due, now)``; ``next_due(now)`` says
when to wake up for it.

HTTPS uses ``urllib`` with certificate and host-name verification always on (the system
CAs, or ``ca_file``); plain ``http://`` is refused. This module is the one place that
translates ``urllib``/``ssl``/``http.client`` exceptions.
"""

from __future__ import annotations

import dataclasses
import http.client
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from fsm_protocol.errors import ConfigError, KeyFileError
from fsm_protocol.files import write_atomic

from ...config import ClientConfig
from ...errors import PmdBundleError, PmdBundleNotNewer, PmdError, PmdUpdateError
from .bundle import LIMITS, Bundle, Limits, open_bundle
from .sets import InstalledSet, PmdSets

UPDATE_STATE = "update.json"
#: After a failed download, the next try waits this long (the daily slot stays due).
RETRY_AFTER = timedelta(hours=1)
#: Bundles looked at in a synced directory (newest names first).
MAX_DIRECTORY_BUNDLES = 50
_CHUNK = 64 * 1024


# --- configuration ---------------------------------------------------------------------------------


def publisher_keys(config: ClientConfig) -> list[Any]:
    """The pinned publisher keys of ``[pmd.update] publisher_keys`` (text or .pub paths)."""
    from fsm_protocol.keys import load_verify_key

    keys = []
    for i, entry in enumerate(config.pmd.update.publisher_keys):
        try:
            keys.append(load_verify_key(entry))
        except KeyFileError as exc:
            raise ConfigError(
                f"pmd.update.publisher_keys[{i}]: {exc.message}",
                hint="give the publisher's .pub file or its one line `fsm-ed25519 <base64>`",
            ) from exc
    return keys


def configured_source(config: ClientConfig) -> str | None:
    u = config.pmd.update
    if u.url and u.directory:
        raise ConfigError(
            "[pmd.update] sets both url and directory",
            hint="keep one: url for HTTPS downloads, directory for a synced folder",
        )
    return u.url or (str(u.directory) if u.directory else None)


# --- reading a source ------------------------------------------------------------------------------


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to another https:// URL (never downgrade to plain HTTP)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme != "https":
            raise PmdUpdateError(
                f"{req.full_url} redirects to {newurl!r}, which is not https://",
                hint="bundles are fetched over HTTPS only; fix [pmd.update] url or the server's redirect",
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_url(
    url: str, *, ca_file: Path | None = None, timeout: float = 60.0, max_bytes: int = LIMITS.max_bundle_bytes
) -> bytes:
    """Download ``url`` over verified HTTPS, refusing more than ``max_bytes`` and short bodies."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https":
        raise ConfigError(
            f"PMD update URL {url!r} is not https://",
            hint="bundles are fetched over HTTPS only; for a local copy give the file "
            "path, or set [pmd.update] directory",
        )
    try:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot read [pmd.update] ca_file {str(ca_file)!r}: {exc}",
            hint="point ca_file at a PEM file of CA certificates",
        ) from exc
    host = parts.hostname or url
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context), _HttpsOnlyRedirects)
    request = urllib.request.Request(
        url, headers={"User-Agent": "fsm-client-pmd-update", "Accept-Encoding": "identity"}
    )
    try:
        with opener.open(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            expected = int(declared) if declared and declared.isdigit() else None
            if expected is not None and expected > max_bytes:
                raise PmdBundleError(
                    f"{url} offers {expected} bytes, over the {max_bytes} a bundle may have",
                    hint="check the URL; the active PMD set was left unchanged",
                )
            body = bytearray()
            while chunk := response.read(_CHUNK):
                body += chunk
                if len(body) > max_bytes:
                    raise PmdBundleError(
                        f"{url} sent more than {max_bytes} bytes; stopped reading",
                        hint="check the URL; the active PMD set was left unchanged",
                    )
    except http.client.IncompleteRead as exc:
        raise PmdUpdateError(
            f"the download of {url} was truncated after {len(exc.partial)} bytes"
            f"{f' of {exc.expected + len(exc.partial)}' if exc.expected else ''}",
            hint="the server closed the connection early; the next check retries",
        ) from exc
    except urllib.error.HTTPError as exc:
        raise PmdUpdateError(
            f"{url} answered HTTP {exc.code} {exc.reason}", hint="check [pmd.update] url"
        ) from exc
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise PmdUpdateError(
                f"the TLS certificate of {host} is not trusted: {reason.verify_message}",
                hint="if the server uses a private CA, set [pmd.update] ca_file to that CA's PEM file; "
                "verification is never turned off",
            ) from exc
        raise PmdUpdateError(
            f"cannot fetch {url}: {reason}", hint="check the URL and that this host may reach it"
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise PmdUpdateError(
            f"the TLS certificate of {host} is not trusted: {exc.verify_message}",
            hint="set [pmd.update] ca_file to the CA that signed it",
        ) from exc
    except TimeoutError as exc:
        raise PmdUpdateError(
            f"fetching {url} timed out after {timeout:g}s",
            hint="raise [pmd.update] timeout or check the network",
        ) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise PmdUpdateError(f"cannot fetch {url}: {exc}", hint="check the URL and the network") from exc
    if expected is not None and len(body) != expected:
        raise PmdUpdateError(
            f"the download of {url} was truncated: {len(body)} of {expected} bytes",
            hint="the next check retries",
        )
    return bytes(body)


def read_file(path: Path, *, max_bytes: int = LIMITS.max_bundle_bytes) -> bytes:
    """A bundle file, refusing one larger than ``max_bytes`` before reading it."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise PmdBundleError(
                f"{path} is {size} bytes, over the {max_bytes} a bundle may have",
                hint="check the file; the active PMD set was left unchanged",
            )
        with path.open("rb") as f:
            return f.read(max_bytes + 1)
    except FileNotFoundError as exc:
        raise PmdUpdateError(f"bundle file {str(path)!r} does not exist", hint="check the path") from exc
    except OSError as exc:
        raise PmdUpdateError(
            f"cannot read bundle {str(path)!r}: {exc.strerror}", hint="check the file's permissions"
        ) from exc


# --- installing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpdateResult:
    """What one update did: outcome is installed, up_to_date, not_due, not_configured or failed."""

    outcome: str
    at: datetime
    source: str | None = None
    version: int | None = None  # the bundle's version (installed or offered)
    active: int | None = None  # the active bundle version afterwards (None: shipped)
    message: str = ""
    reason: str | None = None  # the error's reason code when failed
    transient: bool = False  # a failed download worth retrying before the next daily slot

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "at": self.at.isoformat(),
            "source": self.source,
            "version": self.version,
            "active": self.active,
            "message": self.message,
            "reason": self.reason,
        }


def _checker(config: ClientConfig | None, data_dir: Path) -> Callable[[Path], None]:
    """Load the staged set alone over the shipped one, and with the local overrides on top."""
    from ..authoring.loader import load_pool
    from .dirs import has_pmds, local_dir, shipped_dir

    def check(staged: Path) -> None:
        load_pool([shipped_dir(), staged])
        local = local_dir(config, data_dir)
        if has_pmds(local):
            load_pool([shipped_dir(), staged, local])

    return check


def install_bundle(
    bundle: Bundle, *, source: str, config: ClientConfig | None, data_dir: Path, now: datetime
) -> InstalledSet:
    return PmdSets.in_data_dir(data_dir).install(
        bundle, source=source, now=now, check=_checker(config, data_dir)
    )


def _newest_in_directory(directory: Path, keys: list[Any], limits: Limits) -> tuple[Bundle, str, list[str]]:
    """The verified bundle with the highest version among ``directory/*.zip``, and what was refused."""
    if not directory.is_dir():
        raise PmdUpdateError(
            f"PMD bundle directory {str(directory)!r} does not exist",
            hint="check [pmd.update] directory, or that the sync ran",
        )
    paths = sorted(directory.glob("*.zip"), reverse=True)[:MAX_DIRECTORY_BUNDLES]
    best: tuple[Bundle, str] | None = None
    refused: list[str] = []
    for path in paths:
        try:
            b = open_bundle(
                read_file(path, max_bytes=limits.max_bundle_bytes), publisher_keys=keys, limits=limits
            )
        except PmdError as exc:
            refused.append(f"{path.name}: {exc.message}")
            continue
        if best is None or b.version > best[0].version:
            best = (b, str(path))
    if best is None:
        if refused:
            raise PmdBundleError(
                f"no acceptable bundle in {directory}: {'; '.join(refused)}",
                hint="the active PMD set was left unchanged",
            )
        raise PmdUpdateError(f"no bundle (*.zip) in {directory}", hint="check that the sync ran")
    return best[0], best[1], refused


def install_from(
    source: str, *, config: ClientConfig, data_dir: Path, now: datetime | None = None, limits: Limits = LIMITS
) -> UpdateResult:
    """Install the bundle at ``source`` (https URL, file, or directory of bundles).

    Raises the error that refused it; a bundle that is not newer raises PmdBundleNotNewer.
    """
    now = now or datetime.now(UTC)
    keys = publisher_keys(config)
    refused: list[str] = []
    if source.startswith(("https://", "http://")):
        data = fetch_url(
            source,
            ca_file=config.pmd.update.ca_file,
            timeout=config.pmd.update.timeout,
            max_bytes=limits.max_bundle_bytes,
        )
        bundle, origin = open_bundle(data, publisher_keys=keys, limits=limits), source
    elif Path(source).is_dir():
        bundle, origin, refused = _newest_in_directory(Path(source), keys, limits)
    else:
        origin = str(Path(source).resolve())
        bundle = open_bundle(
            read_file(Path(source), max_bytes=limits.max_bundle_bytes), publisher_keys=keys, limits=limits
        )
    installed = install_bundle(bundle, source=origin, config=config, data_dir=data_dir, now=now)
    message = f"installed PMD bundle version {installed.version} ({installed.info.files} files) from {origin}"
    if refused:
        message += "; refused: " + "; ".join(refused)
    return UpdateResult("installed", now, origin, installed.version, installed.version, message)


# --- the daily schedule ----------------------------------------------------------------------------


class UpdateState(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    last_due: datetime | None = None  # the latest daily slot that was handled
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_outcome: str | None = None
    last_message: str = ""
    retry_after: datetime | None = None  # set after a transient failure


def _state_path(data_dir: Path) -> Path:
    return PmdSets.in_data_dir(data_dir).root / UPDATE_STATE


def load_state(data_dir: Path) -> UpdateState:
    try:
        return msgspec.json.decode(_state_path(data_dir).read_bytes(), type=UpdateState)
    except FileNotFoundError:
        return UpdateState()
    except (OSError, msgspec.DecodeError):
        return UpdateState()  # the schedule's memory only: losing it means one extra check


def _save_state(data_dir: Path, state: UpdateState) -> None:
    path = _state_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, msgspec.json.encode(state))


class Updater:
    """The daily PMD update. The daemon calls ``update_if_due(now)`` from its loop.

    >>> Updater(config, data_dir).update_if_due(datetime.now(UTC))   # doctest: +SKIP
    UpdateResult(outcome='up_to_date', ...)
    """

    def __init__(
        self,
        config: ClientConfig,
        data_dir: Path,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        from ...schedule import parse_rule

        self.config = config
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.rule = parse_rule(f"daily {config.pmd.update.hour:02d}:00")

    def _slot(self, now: datetime, state: UpdateState) -> datetime | None:
        """The daily slot to handle now, or None when nothing is due."""
        from ...schedule import latest_due

        tz = self.config.schedule.timezone
        if state.retry_after is not None and now < state.retry_after:
            return None
        if state.last_due is None:  # never checked: check now, counting as today's slot
            return latest_due(self.rule, now - timedelta(days=1, seconds=1), now, tz) or now
        return latest_due(self.rule, state.last_due, now, tz)

    def next_due(self, now: datetime | None = None) -> datetime | None:
        from ...schedule import next_due

        if configured_source(self.config) is None:
            return None
        now = now or self.clock()
        state = load_state(self.data_dir)
        if self._slot(now, state) is not None:
            return now
        if state.retry_after is not None and now < state.retry_after:
            return state.retry_after
        return next_due(self.rule, now, self.config.schedule.timezone)

    def update_if_due(self, now: datetime | None = None) -> UpdateResult:
        """Check the configured source when the daily slot is due; never raises an FsmError."""
        now = now or self.clock()
        try:
            source = configured_source(self.config)
        except ConfigError as exc:
            return UpdateResult("failed", now, message=f"{exc.message} ({exc.hint})", reason=exc.reason)
        if source is None:
            return UpdateResult("not_configured", now, message="[pmd.update] has no url or directory")
        state = load_state(self.data_dir)
        slot = self._slot(now, state)
        if slot is None:
            return UpdateResult("not_due", now, source, message="the daily PMD update is not due")
        result = self.update_now(now)
        state.last_attempt = now
        state.last_outcome = result.outcome
        state.last_message = result.message
        if result.outcome == "failed" and result.transient:
            state.retry_after = now + RETRY_AFTER
        else:
            state.last_due, state.retry_after = slot, None
            if result.outcome != "failed":
                state.last_success = now
        try:
            _save_state(self.data_dir, state)
        except OSError as exc:  # the schedule's memory only: the next call checks again
            return dataclasses.replace(
                result,
                message=f"{result.message} (cannot record the check in "
                f"{_state_path(self.data_dir)}: {exc.strerror})",
            )
        return result

    def update_now(self, now: datetime | None = None) -> UpdateResult:
        """Check the configured source now, whatever the schedule says."""
        now = now or self.clock()
        try:
            source = configured_source(self.config)
        except ConfigError as exc:
            return UpdateResult("failed", now, message=f"{exc.message} ({exc.hint})", reason=exc.reason)
        if source is None:
            return UpdateResult("not_configured", now, message="[pmd.update] has no url or directory")
        sets = PmdSets.in_data_dir(self.data_dir)
        try:
            return install_from(source, config=self.config, data_dir=self.data_dir, now=now)
        except PmdBundleNotNewer as exc:
            cur = sets.current()
            return UpdateResult(
                "up_to_date", now, source, active=cur.version if cur else None, message=exc.message
            )
        except PmdUpdateError as exc:
            return UpdateResult("failed", now, source, message=exc.message, reason=exc.reason, transient=True)
        except PmdError as exc:
            return UpdateResult("failed", now, source, message=exc.message, reason=exc.reason)
        except ConfigError as exc:
            return UpdateResult(
                "failed", now, source, message=f"{exc.message} ({exc.hint})", reason=exc.reason
            )


def update_status(config: ClientConfig | None, data_dir: Path) -> dict[str, Any]:
    """The daily update's configuration and memory, for ``pmd status``."""
    state = load_state(Path(data_dir))
    source = None
    next_at = None
    if config is not None:
        try:
            source = configured_source(config)
            next_at = Updater(config, Path(data_dir)).next_due() if source else None
        except ConfigError as exc:
            source = f"invalid: {exc.message}"
    return {
        "source": source,
        "next_check": next_at.isoformat() if next_at else None,
        **msgspec.to_builtins(state),
    }


__all__ = [
    "RETRY_AFTER",
    "UPDATE_STATE",
    "UpdateResult",
    "UpdateState",
    "Updater",
    "configured_source",
    "fetch_url",
    "install_bundle",
    "install_from",
    "load_state",
    "publisher_keys",
    "read_file",
    "update_status",
]
