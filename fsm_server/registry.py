"""Known clients and their signing keys: add, list, revoke, rotate, and the lookup ingest uses.

A client is known by its name, which is the client id it puts in its envelopes. Its public key
is stored as the one-line text of its ``client.pub``. It belongs to one customer, whose devices
alone its reports reach (the rule is ``fsm_server.tenancy``). Rotating keeps the old key in the history;
envelopes signed with the old key are still accepted for ``rotation_grace`` after the rotation
(mail sealed before the rotation may still be on its way), never after.

>>> import tempfile, pathlib
>>> from fsm_server.db import open_database
>>> from fsm_protocol import keys
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _, pub = keys.generate_client_keys(d / "k")
>>> reg = Registry(open_database("", data_dir=d))
>>> reg.add("acme-hq", pub).status
'active'
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast

import msgspec
from peewee import JOIN, fn

from fsm_protocol.header import CLIENT_ID_RE
from fsm_protocol.keys import VerifyKey, load_verify_key

from .db.connect import Database, translated
from .db.models import Client, ClientKey, Customer
from .errors import RegistryError, RevokedClient, UnknownClient
from .tenancy import customer_id

if TYPE_CHECKING:

    class _ListedClient(Client):  # a client with its customer's name (``list``)
        customer_name: str | None


DEFAULT_ROTATION_GRACE = timedelta(days=7)


class ClientInfo(msgspec.Struct, kw_only=True):
    """A registered client as listings show it."""

    name: str
    fingerprint: str
    status: str
    added_at: datetime
    revoked_at: datetime | None = None
    keys: int = 1
    public_key: str = ""
    note: str = ""
    #: the customer whose devices its reports reach; None until named or its first report loads
    customer: str | None = None


@dataclass(frozen=True)
class ClientKeys:
    """What ingest needs to check one client's envelope."""

    id: int
    name: str
    current: VerifyKey
    #: fingerprint -> key, for keys retired less than the grace period ago
    previous: dict[str, VerifyKey]

    def for_fingerprint(self, fingerprint: str) -> VerifyKey:
        """The key that signed (by its fingerprint); the current one if none matches (verify will fail)."""
        return self.previous.get(fingerprint, self.current)


def _info(c: Client, nkeys: int, customer: str | None) -> ClientInfo:
    return ClientInfo(
        name=c.name,
        fingerprint=c.fingerprint,
        status=c.status,
        added_at=c.added_at,
        revoked_at=c.revoked_at,
        keys=nkeys,
        public_key=c.public_key,
        note=c.note,
        customer=customer,
    )


class Registry:
    """The client registry on an open database."""

    def __init__(self, db: Database, *, rotation_grace: timedelta = DEFAULT_ROTATION_GRACE) -> None:
        self.db = db
        self.cache_seconds = 5.0
        self._key_cache: dict[str, VerifyKey] = {}
        self._cache: dict[str, tuple[float, ClientKeys]] = {}
        self.rotation_grace = rotation_grace

    @property
    def rotation_grace(self) -> timedelta:
        """How long a rotated-out key is still accepted."""
        return self._rotation_grace

    @rotation_grace.setter
    def rotation_grace(self, value: timedelta) -> None:
        self._rotation_grace = value
        self._cache.clear()

    # -- administration ------------------------------------------------------------------------

    def add(
        self,
        name: str,
        key: Path | str,
        *,
        note: str = "",
        customer: str | None = None,
        now: datetime | None = None,
    ) -> ClientInfo:
        """Register a client by name with its public key (the .pub file or its one line), under
        ``customer`` (None: the customer its first loaded report names)."""
        if not CLIENT_ID_RE.fullmatch(name):
            raise RegistryError(
                f"client name {name!r} is not a valid client id",
                hint="use the client_id of the client's config: letters, digits, '.', '_', '-' (max 64)",
            )
        vk = load_verify_key(key)
        now = now or datetime.now(UTC)
        self._cache.clear()
        with translated(f"cannot add client {name!r}"), self.db.atomic():
            if Client.get_or_none(Client.name == name) is not None:
                raise RegistryError(
                    f"client {name!r} is registered already",
                    hint=f"use `fsm-server clients rotate {name} --key FILE` to change its key",
                )
            c = Client.create(
                name=name,
                public_key=vk.to_text(),
                fingerprint=vk.fingerprint,
                status="active",
                added_at=now,
                note=note,
                customer=None if customer is None else customer_id(customer),
            )
            ClientKey.create(client=c, public_key=vk.to_text(), fingerprint=vk.fingerprint, added_at=now)
        return _info(c, 1, customer)

    def set_customer(self, name: str, customer: str) -> ClientInfo:
        """Enrol ``name`` under ``customer`` from now on. Its devices so far stay with the customer
        they were read for; its next readings make devices of ``customer``."""
        with translated(f"cannot set the customer of client {name!r}"), self.db.atomic():
            c = self._client(name)
            c.customer_id = customer_id(customer)
            c.save()
        return self.get(name)

    def get(self, name: str) -> ClientInfo:
        with translated(f"cannot read client {name!r}"):
            c = Client.get_or_none(Client.name == name)
            if c is None:
                raise RegistryError(f"no client named {name!r}", hint="see `fsm-server clients list`")
            customer = None if c.customer_id is None else Customer.get_by_id(c.customer_id).name
            return _info(c, ClientKey.select().where(ClientKey.client == c).count(), customer)

    def list(self) -> list[ClientInfo]:
        with translated("cannot list clients"):
            keys = ClientKey.select(ClientKey.client, fn.COUNT(ClientKey.id)).group_by(ClientKey.client)
            counts = dict(cast("Iterable[tuple[int, int]]", keys.tuples()))
            q = (
                Client.select(Client, Customer.name.alias("customer_name"))
                .join(Customer, JOIN.LEFT_OUTER, on=(Client.customer == Customer.id))
                .order_by(Client.name)
            )
            return [
                _info(c, counts.get(c.id, 0), c.customer_name)
                for c in cast("Iterable[_ListedClient]", q.objects())
            ]

    def revoke(self, name: str, *, now: datetime | None = None) -> ClientInfo:
        """Refuse every further envelope from this client (they go to quarantine as revoked_client)."""
        now = now or datetime.now(UTC)
        self._cache.clear()
        with translated(f"cannot revoke client {name!r}"), self.db.atomic():
            c = self._client(name)
            if c.status != "revoked":
                c.status, c.revoked_at = "revoked", now
                c.save()
        return self.get(name)

    def rotate(self, name: str, key: Path | str, *, now: datetime | None = None) -> ClientInfo:
        """Replace a client's key; the old one stays valid for the grace period, then never again."""
        vk = load_verify_key(key)
        now = now or datetime.now(UTC)
        self._cache.clear()
        with translated(f"cannot rotate the key of client {name!r}"), self.db.atomic():
            c = self._client(name)
            if c.fingerprint == vk.fingerprint:
                raise RegistryError(
                    f"client {name!r} already has key {vk.fingerprint}",
                    hint="give the new client.pub made by `fsm-client keys init --force`",
                )
            ClientKey.update(retired_at=now).where(
                ClientKey.client == c, ClientKey.retired_at.is_null()
            ).execute()
            ClientKey.create(client=c, public_key=vk.to_text(), fingerprint=vk.fingerprint, added_at=now)
            c.public_key, c.fingerprint = vk.to_text(), vk.fingerprint
            c.save()
        return self.get(name)

    def _client(self, name: str) -> Client:
        c = Client.get_or_none(Client.name == name)
        if c is None:
            raise RegistryError(f"no client named {name!r}", hint="see `fsm-server clients list`")
        return c

    # -- ingest --------------------------------------------------------------------------------

    def keys_for(self, name: str, *, now: datetime | None = None) -> ClientKeys:
        """The keys that may have signed an envelope from ``name``; UnknownClient / RevokedClient.

        Answers are remembered for ``cache_seconds`` (a revocation by another process takes
        effect within that time; one made through this registry at once).
        """
        now = now or datetime.now(UTC)
        hit = self._cache.get(name)
        if hit is not None and time.monotonic() - hit[0] < self.cache_seconds:
            return hit[1]
        keys = self._lookup(name, now)
        self._cache[name] = (time.monotonic(), keys)
        return keys

    def _lookup(self, name: str, now: datetime) -> ClientKeys:
        with translated(f"cannot look up client {name!r}"):
            c = Client.get_or_none(Client.name == name)
            if c is None:
                raise UnknownClient(f"client {name!r} is not registered")
            if c.status == "revoked":
                raise RevokedClient(
                    f"client {name!r} was revoked at {c.revoked_at:%Y-%m-%d %H:%M} UTC",
                    hint="re-register it with a new key if it should report again",
                )
            previous: dict[str, VerifyKey] = {}
            if c.keys.where(ClientKey.retired_at.is_null(False)).exists():
                for k in c.keys.where(ClientKey.retired_at > now - self.rotation_grace):
                    previous[k.fingerprint] = self._key(k.public_key)
        return ClientKeys(id=c.id, name=c.name, current=self._key(c.public_key), previous=previous)

    def _key(self, text: str) -> VerifyKey:
        key = self._key_cache.get(text)
        if key is None:
            key = self._key_cache[text] = load_verify_key(text)
        return key


__all__ = ["DEFAULT_ROTATION_GRACE", "ClientInfo", "ClientKeys", "Registry"]
