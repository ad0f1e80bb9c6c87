"""``PysnmpSource``: the live ``SnmpSource``, on pysnmp 7's asyncio API. The one module that
touches pysnmp, so the one place where pysnmp's errors become ``SnmpError``s.

>>> async def read(cred):  # doctest: +SKIP
...     async with PysnmpSource("192.0.2.10", cred, timeout=2.0, retries=1) as src:
...         return await src.get(["1.3.6.1.2.1.1.5.0"]), await src.walk("1.3.6.1.2.1.43.11.1.1")

How it reads
    GETs go out in batches of ``get_batch`` OIDs; a batch the agent refuses as tooBig or
    genErr is split in halves down to single OIDs (a single OID still refused is dropped
    with a warning). SNMPv1 ``noSuchName`` drops the OID it names. Walks use GETBULK
    for v2c/v3 and GETNEXT for v1. The first GETBULK of a walk asks ``first_bulk`` (10, as
    Net-SNMP) repetitions, the next ones ``bulk_size`` (32), halved on tooBig/genErr: most
    printer tables are short or absent, and every repetition past a table's end is work
    for the agent and the decoder thrown away.
    A walk stops at the end of the subtree, at ``max_rows``, or, with a warning, where the
    agent sends an OID that does not increase (a looping table).

What a garbage answer gives
    The source never raises for a bad value: varbinds with OIDs that were not asked are
    dropped, strings longer than ``max_value_bytes`` are cut, each with a line in
    ``warnings``. An answer is taken only from the address and port the request went to,
    with that request's id (``GuardedDispatcher``); request ids are random. Datagrams that
    are not SNMP (malformed BER, truncated) and answers to no request sent to their
    sender (a wrong or another device's request id) are dropped, look like silence, and
    are counted as warnings of the device they came from.

Timeouts
    A request unanswered after ``timeout`` seconds x (1 + ``retries``) attempts:
    - if the device never answered this source: ``SnmpTimeout`` (the device is unreachable);
    - if it had answered before: the device went away mid-read. The call returns what it
      had already read (the rows of a walk so far, the GET batches answered) and
      ``warnings`` gets "unreachable mid-read: ..."; if that call had read nothing it raises
      ``SnmpTimeout``. Either way ``lost`` becomes True and every later call raises
      ``SnmpTimeout`` at once, without waiting again; ``reachability`` says "partial".

Speed
    One ``SnmpEngine`` per event loop for all communities, and one per SNMPv3 key set
    (``shared_engine()``, see ``engine_key``), varbinds for an OID built and
    MIB-resolved once per process (``lookupMib=False`` on the way back), the transport
    target created once per source.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pyasn1.error import PyAsn1Error
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    get_cmd,
    next_cmd,
    usmAesBlumenthalCfb192Protocol,
    usmAesBlumenthalCfb256Protocol,
    usmAesCfb128Protocol,
    usmDESPrivProtocol,
    usmHMAC128SHA224AuthProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMAC256SHA384AuthProtocol,
    usmHMAC384SHA512AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
    usmNoAuthProtocol,
    usmNoPrivProtocol,
)
from pysnmp.hlapi.varbinds import CommandGeneratorVarBinds
from pysnmp.proto import errind, rfc1902, rfc1905

from ..config import Credential
from ..errors import SnmpAuthError, SnmpError, SnmpProtocolError, SnmpTimeout
from . import ber
from .source import SnmpValue, Tag, oid_key

GET_BATCH = 30
BULK_SIZE = 32
FIRST_BULK = 10
MAX_COLUMNS = 16  # cursors one GETBULK of walk_many carries
MAX_BULK_VARBINDS = 100  # cursors x repetitions asked in one GETBULK
MAX_VALUE_BYTES = 8192  # longest OCTET STRING kept; printer strings are far shorter

AUTH_PROTOCOLS: dict[str, Any] = {
    "": usmNoAuthProtocol,
    "MD5": usmHMACMD5AuthProtocol,
    "SHA": usmHMACSHAAuthProtocol,
    "SHA-224": usmHMAC128SHA224AuthProtocol,
    "SHA-256": usmHMAC192SHA256AuthProtocol,
    "SHA-384": usmHMAC256SHA384AuthProtocol,
    "SHA-512": usmHMAC384SHA512AuthProtocol,
}
PRIV_PROTOCOLS: dict[str, Any] = {
    "": usmNoPrivProtocol,
    "DES": usmDESPrivProtocol,
    "AES": usmAesCfb128Protocol,
    "AES-128": usmAesCfb128Protocol,
    # Where the auth hash is shorter than the AES key, the key is extended: Net-SNMP (and
    # the printers built on it) extend it as draft-blumenthal says; pysnmp's plain
    # usmAesCfb192/256 follow the Cisco ("Reeder") draft and time out against Net-SNMP
    # with SHA-1 or MD5 (tested in tests/client/test_snmpv3.py).
    "AES-192": usmAesBlumenthalCfb192Protocol,
    "AES-256": usmAesBlumenthalCfb256Protocol,
}

# Every pysnmp error indication, by what it means for the operator (a test checks that
# none is missing): the device is silent, the credential is refused, or the answer is junk.
INDICATION_ERRORS: dict[type[errind.ErrorIndication], type[SnmpError]] = {
    errind.RequestTimedOut: SnmpTimeout,
    **{
        cls: SnmpAuthError
        for cls in (
            errind.UnknownUserName,
            errind.WrongDigest,
            errind.AuthenticationFailure,
            errind.AuthenticationError,
            errind.DecryptionError,
            errind.EncryptionError,
            errind.NoEncryption,
            errind.NoAuthentication,
            errind.UnsupportedSecurityLevel,
            errind.UnknownSecurityName,
            errind.UnsupportedAuthProtocol,
            errind.UnsupportedPrivProtocol,
            errind.UnsupportedSecurityModel,
            errind.NotInTimeWindow,
            errind.UnknownEngineID,
            errind.EngineIDMismatch,
            errind.UnknownCommunityName,
            errind.ReportPduReceived,
            errind.NoSuchView,
            errind.NoAccessEntry,
            errind.NoGroupName,
            errind.NoSuchContext,
            errind.NotInView,
        )
    },
    **{
        cls: SnmpProtocolError
        for cls in (
            errind.SerializationError,
            errind.DeserializationError,
            errind.ParseError,
            errind.UnsupportedMsgProcessingModel,
            errind.UnknownPDUHandler,
            errind.UnsupportedPDUtype,
            errind.EmptyResponse,
            errind.NonReportable,
            errind.DataMismatch,
            errind.TooBig,
            errind.LoopTerminated,
            errind.InvalidMsg,
            errind.AccessAllowed,
            errind.OtherError,
            errind.OidNotIncreasing,
        )
    },
}


def translate_indication(
    indication: errind.ErrorIndication, *, who: str, credential: Credential
) -> SnmpError:
    """The ``SnmpError`` for a pysnmp error indication about device ``who``."""
    kind = next(
        (INDICATION_ERRORS[c] for c in type(indication).__mro__ if c in INDICATION_ERRORS), SnmpProtocolError
    )
    if kind is SnmpTimeout:
        return SnmpTimeout(f"no answer from {who}")
    if kind is SnmpAuthError:
        what = f"SNMPv3 user {credential.user!r}" if credential.version == "3" else "the community"
        return SnmpAuthError(f"{who} refused {what} of credential {credential.name!r}: {indication}")
    return SnmpProtocolError(
        f"{who}: {indication}",
        hint="the agent's answer could not be used; report the device model with a walk",
    )


# error-status values (RFC 3416)
_TOO_BIG, _NO_SUCH_NAME, _GEN_ERR = 1, 2, 5

_TAGS: dict[Any, Tag] = {
    rfc1902.Integer32.tagSet: "integer",
    rfc1902.OctetString.tagSet: "octets",
    rfc1902.ObjectIdentifier.tagSet: "oid",
    rfc1902.IpAddress.tagSet: "ipaddress",
    rfc1902.Counter32.tagSet: "counter32",
    rfc1902.Gauge32.tagSet: "gauge32",
    rfc1902.TimeTicks.tagSet: "timeticks",
    rfc1902.Opaque.tagSet: "opaque",
    rfc1902.Counter64.tagSet: "counter64",
    rfc1902.Null.tagSet: "null",
}
_ABSENT = {rfc1905.NoSuchObject.tagSet, rfc1905.NoSuchInstance.tagSet, rfc1905.EndOfMibView.tagSet}
_END_OF_MIB = rfc1905.EndOfMibView.tagSet

_ENGINES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SnmpEngine]] = (
    weakref.WeakKeyDictionary()
)
_VARBINDS: dict[str, ObjectType] = {}
_VARBIND_CACHE_MAX = 50_000


def engine_key(credential: Credential) -> str:
    """Which shared engine a credential uses: one for every community, one per SNMPv3 user
    and key set. pysnmp keeps one USM entry per user name in an engine, so two credentials
    with the same user and different keys would overwrite each other's in flight."""
    if credential.version != "3":
        return "community"
    material = "\0".join(
        (
            credential.user,
            credential.auth_protocol,
            credential.auth_key.reveal(),
            credential.priv_protocol,
            credential.priv_key.reveal(),
        )
    )
    return "usm:" + hashlib.sha256(material.encode()).hexdigest()[:16]


Address = tuple[str, int]

#: How long an unanswered request is remembered. pysnmp forgets its own after 600 timer
#: ticks; far longer than any configured ``timeout``, so a slow answer is never refused here.
PENDING_MAX_AGE = 300.0
PENDING_MAX = 200_000  # requests remembered at most (the oldest go first)
SENDERS_MAX = 10_000  # senders whose dropped datagrams are counted at most


class GuardedDispatcher(AsyncioDispatcher):
    """pysnmp's asyncio dispatcher, with a gate in front of pysnmp's decoder.

    Only an answer to a request is let through: a datagram must come from the address
    and port a request went to and carry that request's id (the request-id of a v1/v2c
    PDU, the msgID of an SNMPv3 message). pysnmp itself pairs answers by id alone,
    whoever sent them, and forgets the request it paired a wrong answer with: an agent
    that answers with another request's id (buggy firmware does, and so can anyone who
    saw one request) would hand its values to another device, or make that device's
    real answer look like silence. Everything else is dropped and counted for its
    sender: ``misdirected`` (by address) for SNMP that answers no request sent to it
    (another request's id, or from another port than the one asked), ``undecodable``
    for datagrams that are not one well-framed SNMP message (random bytes can make
    pysnmp's decoder raise straight into the event loop) and for those pysnmp still
    raises on. The source reading that device turns the counts into warnings."""

    def __init__(self) -> None:
        super().__init__()
        self.undecodable: Counter[Address] = Counter()
        self.misdirected: Counter[str] = Counter()  # by sender address, whatever its port
        self._pending: dict[tuple[Address, int], float] = {}  # (address, id) -> sent at

    def send_message(self, outgoingMessage: Any, transportDomain: Any, transportAddress: Any) -> None:
        address = (str(transportAddress[0]), int(transportAddress[1]))
        try:
            key = (address, ber.message_id(bytes(outgoingMessage)))
        except ber.BerError:
            key = None  # pysnmp's own message: nothing we could answer anyway
        if key is not None:
            now = time.monotonic()
            pending = self._pending
            pending.pop(key, None)  # re-inserted last, so the dict stays in send order
            pending[key] = now
            if len(pending) > PENDING_MAX or now - next(iter(pending.values())) > PENDING_MAX_AGE:
                self._expire(now)
        super().send_message(outgoingMessage, transportDomain, transportAddress)

    def _expire(self, now: float) -> None:
        pending = self._pending
        while pending:
            key, sent = next(iter(pending.items()))
            if now - sent <= PENDING_MAX_AGE and len(pending) <= PENDING_MAX:
                break
            del pending[key]

    def _count(self, counter: Counter[Any], sender: Any) -> None:
        if sender not in counter and len(counter) >= SENDERS_MAX:
            counter.clear()  # senders nobody reads (never asked): forget rather than grow
        counter[sender] += 1

    def _callback_function(self, incomingTransport: Any, transportAddress: Any, incomingMessage: Any) -> None:
        sender = (str(transportAddress[0]), int(transportAddress[1]))
        if not ber.is_framed(incomingMessage):
            self._count(self.undecodable, sender)
            return
        try:
            key = (sender, ber.message_id(bytes(incomingMessage)))
        except ber.BerError:
            self._count(self.undecodable, sender)
            return
        if self._pending.pop(key, None) is None:
            self._count(self.misdirected, sender[0])
            return
        try:
            super()._callback_function(incomingTransport, transportAddress, incomingMessage)
        except Exception:  # whatever a hostile datagram makes pysnmp raise, it is dropped
            self._count(self.undecodable, sender)


MAX_MESSAGE_ID = 0x7FFFFFFF - 1  # request-id and msgID are non-negative INTEGER32


class _RandomMessageIds:
    """Message ids for one of pysnmp's message caches, drawn at random.

    pysnmp numbers every message of the process from one counter, so whoever sees one
    request knows the id of the next, to this device or another. Random ids (skipping
    those still awaiting an answer) leave nothing to guess: together with the gate of
    ``GuardedDispatcher``, an answer is only taken from the address asked, with an id
    only that address was sent."""

    def __init__(self, cache: Any) -> None:
        self._in_use: dict[int, Any] = cache._Cache__msgIdIndex

    def __call__(self) -> int:
        while True:
            n = 1 + secrets.randbelow(MAX_MESSAGE_ID)
            if n not in self._in_use:
                return n


def _randomize_message_ids(engine: SnmpEngine) -> None:
    for model in engine.message_processing_subsystems.values():
        cache = model._cache
        # pysnmp's Cache draws ids from a class attribute; an instance attribute of the
        # same (name-mangled) name replaces it for this engine only. A test checks it works.
        cache._Cache__message_id = _RandomMessageIds(cache)


def shared_engine(key: str = "community") -> SnmpEngine:
    """The ``SnmpEngine`` for ``key`` on the running event loop (pysnmp binds its socket to one)."""
    engines = _ENGINES.setdefault(asyncio.get_running_loop(), {})
    engine = engines.get(key)
    if engine is None:
        engine = engines[key] = SnmpEngine()
        _randomize_message_ids(engine)
        engine.register_transport_dispatcher(GuardedDispatcher())
        # as pysnmp's own automatic dispatcher: closed with the engine
        engine.set_user_context(automaticTransportDispatcher=0)
    return engine


def close_shared_engine() -> None:
    """Close the running loop's shared engines (their UDP sockets); the next read opens new ones."""
    for engine in _ENGINES.pop(asyncio.get_running_loop(), {}).values():
        engine.close_dispatcher()


def _varbind(engine: SnmpEngine, oid: str) -> ObjectType:
    # Resolving an ObjectType against the MIB view costs more than the whole request;
    # a resolved one is reused as is by pysnmp (half the CPU per GET, measured).
    vb = _VARBINDS.get(oid)
    if vb is None:
        if len(_VARBINDS) >= _VARBIND_CACHE_MAX:
            _VARBINDS.clear()
        mib = CommandGeneratorVarBinds.get_mib_view_controller(engine.cache)
        vb = _VARBINDS[oid] = ObjectType(ObjectIdentity(oid)).resolve_with_mib(mib)
    return vb


def auth_data(credential: Credential) -> CommunityData | UsmUserData:
    """pysnmp's auth object for a configured credential."""
    if credential.version in ("1", "2c"):
        return CommunityData(credential.community.reveal(), mpModel=0 if credential.version == "1" else 1)
    auth = credential.auth_protocol
    priv = credential.priv_protocol
    if priv and not auth:
        raise SnmpAuthError(
            f"credential {credential.name!r} sets priv_protocol {priv!r} without auth_protocol",
            hint="SNMPv3 privacy needs authentication: set auth_protocol and auth_key",
        )
    for what, proto, key in (("auth", auth, credential.auth_key), ("priv", priv, credential.priv_key)):
        if proto and len(key.reveal()) < 8:
            raise SnmpAuthError(
                f"credential {credential.name!r}: {what}_key is shorter than 8 characters",
                hint=f"SNMPv3 requires {what}_key of at least 8 characters",
            )
    try:
        return UsmUserData(
            credential.user,
            authKey=credential.auth_key.reveal() or None,
            privKey=credential.priv_key.reveal() or None,
            authProtocol=AUTH_PROTOCOLS[auth],
            privProtocol=PRIV_PROTOCOLS[priv],
        )
    except PySnmpError as exc:
        raise SnmpAuthError(f"credential {credential.name!r} is not usable: {exc}") from None


def to_value(value: Any) -> SnmpValue | None:
    """Our ``SnmpValue`` of a pysnmp value; None where the agent said "no such" / end of MIB."""
    tag_set = value.tagSet  # subtypes (DisplayString, Unsigned32, Bits) share their base's tags
    if tag_set in _ABSENT:
        return None
    tag = _TAGS.get(tag_set)
    if tag in ("octets", "opaque"):
        return SnmpValue(tag, value.asOctets())
    if tag == "oid":
        return SnmpValue(tag, ".".join(map(str, value.asTuple())))
    if tag == "ipaddress":
        return SnmpValue(tag, ".".join(str(b) for b in value.asOctets()))
    if tag == "null":
        return SnmpValue(tag, None)
    if tag is None:
        raise SnmpProtocolError(f"value of unknown type {type(value).__name__}")
    return SnmpValue(tag, int(value))


class _Column:
    """One subtree being walked: where it starts, where it is, what it has read."""

    __slots__ = ("cursor", "done", "last", "limit", "prefix", "root", "rows")

    def __init__(self, root: str, limit: int) -> None:
        self.root = self.cursor = root.strip(".")
        self.prefix = self.last = oid_key(self.root)
        self.limit = limit
        self.rows: list[tuple[str, SnmpValue]] = []
        self.done = limit <= 0


class _Timeout(Exception):
    """pysnmp gave up on one request (internal: turned into SnmpTimeout or a warning)."""


class PysnmpSource:
    """An ``SnmpSource`` reading one device with pysnmp; see the module docstring."""

    def __init__(
        self,
        host: str,
        credential: Credential,
        *,
        port: int = 161,
        timeout: float = 2.0,
        retries: int = 1,
        engine: SnmpEngine | None = None,
        get_batch: int = GET_BATCH,
        bulk_size: int = BULK_SIZE,
        first_bulk: int = FIRST_BULK,
        max_value_bytes: int = MAX_VALUE_BYTES,
    ) -> None:
        self.host, self.port = host, port
        self.credential = credential
        self.timeout, self.retries = timeout, retries
        self.get_batch, self.bulk_size = max(1, get_batch), max(1, bulk_size)
        self.first_bulk = max(1, min(first_bulk, self.bulk_size))
        self.max_value_bytes = max_value_bytes
        self.warnings: list[str] = []
        self.answered = False
        self.lost = False
        self.undecodable = 0  # datagrams from the device that were not SNMP
        self.misdirected = 0  # SNMP answers from the device to no request sent to it
        self._engine = engine
        self._auth = auth_data(credential)
        self._engine_key = engine_key(credential)
        self._context = (
            ContextData(contextName=credential.context.encode()) if credential.context else ContextData()
        )
        self._target: UdpTransportTarget | None = None
        self._v1 = credential.version == "1"

    # -- public ----------------------------------------------------------------------------

    @property
    def reachability(self) -> Literal["ok", "partial", "unreachable"]:
        if self.lost:
            return "partial"
        return "ok" if self.answered else "unreachable"

    async def __aenter__(self) -> PysnmpSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Forget the target; the shared engine stays open for the next device."""
        self._target = None

    async def get(self, oids: Sequence[str]) -> dict[str, SnmpValue]:
        """Values of ``oids`` that exist; see the module docstring for batching and timeouts."""
        self._check_lost()
        wanted = list(dict.fromkeys(o.strip(".") for o in oids))
        out: dict[str, SnmpValue] = {}
        for i in range(0, len(wanted), self.get_batch):
            try:
                await self._get_batch(wanted[i : i + self.get_batch], out)
            except _Timeout:
                self._timed_out(f"GET of {len(wanted)} OIDs", got_some=bool(out))
                break
        return out

    async def walk(self, oid: str, *, max_rows: int = 10_000) -> list[tuple[str, SnmpValue]]:
        """Every (oid, value) under ``oid`` in walk order, at most ``max_rows``."""
        self._check_lost()
        column = _Column(oid, max_rows)
        await self._walk_columns([column])
        return column.rows

    async def walk_many(
        self, roots: Mapping[str, int] | Sequence[str], *, max_rows: int = 10_000
    ) -> dict[str, list[tuple[str, SnmpValue]]]:
        """Walk several subtrees together: ``{root: rows}`` as ``walk`` gives them.

        ``roots`` maps each root to its own row limit, or lists roots sharing ``max_rows``.
        With v2c/v3 one GETBULK carries up to ``MAX_COLUMNS`` cursors, so ten short or absent
        tables cost one round trip instead of ten (v1 walks them one after another). If the
        device goes silent midway, the rows read so far are returned (see the module
        docstring); SnmpTimeout only when this call read nothing."""
        self._check_lost()
        limits = dict(roots) if isinstance(roots, Mapping) else dict.fromkeys(roots, max_rows)
        columns = [_Column(root, limit) for root, limit in limits.items()]
        await self._walk_columns(columns)
        return {root: c.rows for root, c in zip(limits, columns, strict=True)}

    # -- internals -------------------------------------------------------------------------

    async def _walk_columns(self, columns: list[_Column]) -> None:
        """Advance every column to its end, its limit, a loop, or the device's silence."""
        pending = [c for c in columns if not c.done]
        reps, grown = self.first_bulk, False
        width = 1 if self._v1 else MAX_COLUMNS
        while pending:
            batch = pending[:width]
            n = len(batch)
            want = 1 if self._v1 else self._repetitions(batch, reps)
            try:
                status, vbs = await self._ask(batch, want)
            except _Timeout:
                what = f"walk of {batch[0].root}" if len(columns) == 1 else f"walk of {len(columns)} tables"
                read = sum(len(c.rows) for c in columns)
                self._timed_out(f"{what} after {read} rows", got_some=read > 0)
                return
            if status in (_TOO_BIG, _GEN_ERR) and not self._v1 and (want > 1 or n > 1):
                # The answer did not fit: ask for fewer repetitions first, then for fewer columns.
                if want > 1:
                    reps = max(1, want // 2)
                else:
                    width = max(1, n // 2)
                continue
            if status:
                self._stop_on_error(batch, status)
            elif not vbs:
                for c in batch:
                    c.done = True
            else:
                if not grown:  # grow after the first answer, unless the agent already made us shrink
                    grown = True
                    reps = self.bulk_size if reps == self.first_bulk else reps
                self._spread(batch, vbs)
                if len(vbs) < n:  # the agent cut its answer below one row: ask for fewer columns
                    width = max(1, len(vbs))
            pending = [c for c in pending if not c.done]

    @staticmethod
    def _repetitions(batch: list[_Column], reps: int) -> int:
        """GETBULK max-repetitions for ``batch``: ``reps``, within the varbind bound and what the
        columns still have room for."""
        room = max(c.limit - len(c.rows) for c in batch)
        return max(1, min(reps, MAX_BULK_VARBINDS // len(batch), room))

    async def _ask(self, batch: list[_Column], want: int) -> tuple[int, list[tuple[str, Any]]]:
        """(error-status, varbinds) of one step of the walk: GETNEXT on v1 (one column), else
        GETBULK of ``want`` repetitions over the batch's cursors."""
        if self._v1:
            status, _, vbs = await self._request("next", [batch[0].cursor])
        else:
            cursors = [c.cursor for c in batch]
            status, _, vbs = await self._request("bulk", cursors, max_repetitions=want)
        return status, vbs

    def _stop_on_error(self, batch: list[_Column], status: int) -> None:
        if self._v1 and status == _NO_SUCH_NAME:
            batch[0].done = True  # v1's end of the MIB view
            return
        for c in batch:
            c.done = True
            self.warnings.append(
                f"{self._who()}: walk of {c.root} stopped by error-status "
                f"{_status_name(status)} at {c.cursor}"
            )

    def _spread(self, batch: list[_Column], vbs: list[tuple[str, Any]]) -> None:
        """Hand each column its varbinds: a GETBULK answer is row-major (repetition i holds one
        varbind per cursor)."""
        n = len(batch)
        for j, c in enumerate(batch):
            for i in range(j, len(vbs), n):
                if c.done:
                    break
                self._take(c, *vbs[i])

    def _take(self, c: _Column, name: str, value: Any) -> None:
        key = oid_key(name)
        if value.tagSet == _END_OF_MIB:
            c.done = True
            return
        if key <= c.last:  # checked before the subtree: a jump back out of it is a loop, not the end
            self.warnings.append(
                f"{self._who()}: walk of {c.root} stopped: the agent answered "
                f"{name} after {_dotted(c.last)} (OIDs not increasing: a looping table)"
            )
            c.done = True
            return
        if key[: len(c.prefix)] != c.prefix:
            c.done = True
            return
        c.last, c.cursor = key, name
        sv = self._convert(name, value)
        if sv is not None:
            c.rows.append((name, sv))
        if len(c.rows) >= c.limit:
            c.done = True

    def _who(self) -> str:
        return f"{self.host}:{self.port}"

    def _check_lost(self) -> None:
        if self.lost:
            raise SnmpTimeout(
                f"{self._who()} stopped answering earlier in this read",
                hint=f"the device went silent mid-read; raise snmp timeout "
                f"(now {self.timeout}s) or retries (now {self.retries}) if it is slow",
            )

    def _timed_out(self, what: str, *, got_some: bool) -> None:
        attempts = f"{self.timeout:g}s x {self.retries + 1} attempts"
        if not self.answered:
            if self.misdirected:
                raise SnmpTimeout(
                    f"no usable answer from {self._who()} ({attempts}): it sent "
                    f"{self.misdirected} answer(s) that matched no request sent to it",
                    hint="the agent answers with wrong request ids (a firmware fault, or "
                    "something on the network answering for it); dropped",
                )
            if self.undecodable:
                raise SnmpTimeout(
                    f"no usable answer from {self._who()} ({attempts}): it sent "
                    f"{self.undecodable} undecodable datagram(s)",
                    hint="the device answers broken SNMP; check its firmware or SNMP agent",
                )
            raise SnmpTimeout(f"no answer from {self._who()} ({attempts})")
        self.lost = True
        self.warnings.append(
            f"unreachable mid-read: {self._who()} stopped answering during the {what} "
            f"({attempts}); kept what was read before"
        )
        if not got_some:
            raise SnmpTimeout(f"{self._who()} stopped answering during the {what} ({attempts})")

    async def _transport(self) -> UdpTransportTarget:
        if self._target is None:
            try:
                self._target = await UdpTransportTarget.create(
                    (self.host, self.port), timeout=self.timeout, retries=self.retries
                )
            except PySnmpError as exc:
                raise SnmpError(
                    f"cannot resolve {self.host!r}: {exc}", hint="check the host name, or give an IP address"
                ) from None
        return self._target

    async def _request(
        self, kind: Literal["get", "next", "bulk"], oids: Sequence[str], *, max_repetitions: int = 0
    ) -> tuple[int, int, list[tuple[str, Any]]]:
        """One PDU; (error-status, error-index, [(oid, pysnmp value)]). Raises _Timeout."""
        engine = self._engine or shared_engine(self._engine_key)
        target = await self._transport()
        varbinds = [_varbind(engine, o) for o in oids]
        # pysnmp keeps its own retry timer; this is only a guard against a lost callback.
        guard = self.timeout * (self.retries + 1) + 5.0
        try:
            if kind == "get":
                coro = get_cmd(engine, self._auth, target, self._context, *varbinds, lookupMib=False)
            elif kind == "next":
                coro = next_cmd(engine, self._auth, target, self._context, *varbinds, lookupMib=False)
            else:
                coro = bulk_cmd(
                    engine, self._auth, target, self._context, 0, max_repetitions, *varbinds, lookupMib=False
                )
            indication, status, index, answer = await asyncio.wait_for(coro, guard)
        except TimeoutError:
            self._note_garbage(engine)
            raise _Timeout() from None
        except (PySnmpError, PyAsn1Error) as exc:
            raise SnmpProtocolError(
                f"{self._who()}: SNMP engine error: {exc}",
                hint="the agent's answer could not be processed; report the device model with a walk",
            ) from None
        if indication:
            error = translate_indication(indication, who=self._who(), credential=self.credential)
            if isinstance(error, SnmpTimeout):
                self._note_garbage(engine)
                raise _Timeout()
            raise error
        self.answered = True
        self._note_garbage(engine)
        return int(status), int(index), [(".".join(map(str, n.asTuple())), v) for n, v in answer]

    def _note_garbage(self, engine: SnmpEngine) -> None:
        dispatcher = engine.transport_dispatcher
        if isinstance(dispatcher, GuardedDispatcher) and self._target is not None:
            address = self._target.transport_address
            sender = (str(address[0]), int(address[1]))
            dropped = dispatcher.undecodable.pop(sender, 0)
            if dropped:
                self.undecodable += dropped
                self.warnings.append(f"{self._who()} sent {dropped} undecodable datagram(s); dropped")
            stray = dispatcher.misdirected.pop(sender[0], 0)
            if stray:
                self.misdirected += stray
                self.warnings.append(
                    f"{self._who()} sent {stray} answer(s) that matched no request "
                    "sent to it (wrong request id); dropped"
                )

    async def _get_batch(self, oids: list[str], out: dict[str, SnmpValue]) -> None:
        """GET ``oids`` into ``out``, splitting on tooBig/genErr, dropping v1 noSuchName OIDs."""
        while oids:
            status, index, vbs = await self._request("get", oids)
            if not status:
                asked = set(oids)
                stray = 0
                for name, value in vbs:
                    if name not in asked:
                        stray += 1
                        continue
                    sv = self._convert(name, value)
                    if sv is not None:
                        out[name] = sv
                if stray:
                    self.warnings.append(f"{self._who()}: dropped {stray} varbind(s) the GET did not ask for")
                return
            if status == _NO_SUCH_NAME and 1 <= index <= len(oids):
                del oids[index - 1]  # SNMPv1: that OID does not exist; ask again for the rest
                continue
            if len(oids) > 1:
                half = len(oids) // 2
                await self._get_batch(oids[:half], out)
                await self._get_batch(oids[half:], out)
                return
            if status != _NO_SUCH_NAME:
                self.warnings.append(
                    f"{self._who()}: GET {oids[0]} refused with {_status_name(status)}; value skipped"
                )
            return

    def _convert(self, name: str, value: Any) -> SnmpValue | None:
        try:
            sv = to_value(value)
        except SnmpProtocolError as exc:
            self.warnings.append(f"{self._who()}: {name}: {exc.message}; dropped")
            return None
        if sv is not None and isinstance(sv.value, bytes) and len(sv.value) > self.max_value_bytes:
            self.warnings.append(
                f"{self._who()}: {name} is {len(sv.value)} bytes; truncated to {self.max_value_bytes}"
            )
            sv = SnmpValue(sv.tag, sv.value[: self.max_value_bytes])
        return sv


_STATUS_NAMES = {1: "tooBig", 2: "noSuchName", 3: "badValue", 4: "readOnly", 5: "genErr", 6: "noAccess"}


def _status_name(status: int) -> str:
    return _STATUS_NAMES.get(status, f"error-status {status}")


def _dotted(key: tuple[int, ...]) -> str:
    return ".".join(map(str, key))


__all__ = [
    "AUTH_PROTOCOLS",
    "BULK_SIZE",
    "FIRST_BULK",
    "GET_BATCH",
    "INDICATION_ERRORS",
    "MAX_BULK_VARBINDS",
    "MAX_COLUMNS",
    "MAX_MESSAGE_ID",
    "MAX_VALUE_BYTES",
    "PENDING_MAX",
    "PENDING_MAX_AGE",
    "PRIV_PROTOCOLS",
    "GuardedDispatcher",
    "PysnmpSource",
    "auth_data",
    "close_shared_engine",
    "engine_key",
    "shared_engine",
    "to_value",
    "translate_indication",
]
