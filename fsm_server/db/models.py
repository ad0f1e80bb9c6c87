"""The server's tables as peewee models (the schema itself is created by ``migrations``).

Times are stored as UTC without a zone (SQLite has no zone type; PostgreSQL ``timestamp``) and
come back as aware UTC datetimes. Lists and maps that are only ever shown, never queried, are
JSON text.

Device identity follows ``fsm_protocol.identity.device_identity``: manufacturer + serial, then
MAC, then IP within the client; a device row is unique per (customer, identity), the customer
being the one its client is enrolled under (``fsm_server.tenancy``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, overload

import msgspec
import peewee

from fsm_protocol.schema import LABEL_CHARS, NAME_CHARS, WORD_CHARS

# Every column a report's text goes into holds what report schema v1 lets through (the *_CHARS
# bounds of fsm_protocol.schema); text without a bound there is a TEXT column here.


_V = TypeVar("_V", datetime, datetime | None)

if TYPE_CHECKING:
    _DateTimeField = peewee.DateTimeField
else:  # peewee's classes are generic in its stubs only

    class _DateTimeField(peewee.DateTimeField, Generic[_V]):
        pass


class UtcDateTimeField(_DateTimeField[_V]):
    """Aware datetimes in, aware UTC datetimes out; stored as naive UTC."""

    if TYPE_CHECKING:  # as peewee's stubs type their fields: a datetime, or None when null=True

        @overload
        def __new__(
            cls, *args: Any, null: Literal[True], **kwargs: Any
        ) -> UtcDateTimeField[datetime | None]: ...

        @overload
        def __new__(
            cls, *args: Any, null: Literal[False] = ..., **kwargs: Any
        ) -> UtcDateTimeField[datetime]: ...

        def __new__(cls, *args: Any, **kwargs: Any) -> Any: ...

    def db_value(self, value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value: Any) -> Any:
        value = super().python_value(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class JsonTextField(peewee.TextField):
    """Any JSON-able value as text (msgspec)."""

    def db_value(self, value: Any) -> Any:
        return None if value is None else msgspec.json.encode(value).decode()

    def python_value(self, value: Any) -> Any:
        return None if value is None else msgspec.json.decode(value)


class _Model(peewee.Model):
    # peewee adds accessors that a model's body does not name: ``id``, the primary key when no
    # other is declared, and ``<name>_id`` for each foreign key ``<name>``. Each model declares
    # the ones it has as bare annotations, which peewee ignores, so that type checking knows them.

    class Meta:
        legacy_table_names = False


class Dealer(_Model):
    """A dealer: the company that serves customers; its portal users see its customers only."""

    id: peewee.AutoField[int]

    name = peewee.CharField(max_length=200, unique=True)


class Customer(_Model):
    id: peewee.AutoField[int]
    dealer_id: int | None

    name = peewee.CharField(max_length=LABEL_CHARS, unique=True)
    # The dealer that serves it (fsm_server.customers); NULL: only administrators see it.
    # Added by migration 14.
    dealer = peewee.ForeignKeyField(Dealer, null=True, backref="customers")


class Client(_Model):
    """A registered fsm-client installation; ``name`` is the client id in its envelopes."""

    id: peewee.AutoField[int]
    customer_id: int | None
    keys: peewee.ModelSelect[ClientKey]  # the backref of ClientKey.client

    name = peewee.CharField(max_length=64, unique=True)
    public_key = peewee.TextField()  # the one-line text of client.pub
    fingerprint = peewee.CharField(max_length=128)
    status = peewee.CharField(max_length=16, default="active")  # active | revoked
    added_at = UtcDateTimeField()
    revoked_at = UtcDateTimeField(null=True)
    note = peewee.TextField(default="")
    # The customer whose devices this client reads (fsm_server.tenancy); NULL until the dealer
    # names it or the client's first report is loaded. Added by migration 6.
    customer = peewee.ForeignKeyField(Customer, null=True, backref="clients")


class ClientKey(_Model):
    """Every key a client has had; the current one has ``retired_at`` NULL."""

    id: peewee.AutoField[int]
    client_id: int

    client = peewee.ForeignKeyField(Client, backref="keys", on_delete="CASCADE")
    public_key = peewee.TextField()
    fingerprint = peewee.CharField(max_length=128)
    added_at = UtcDateTimeField()
    retired_at = UtcDateTimeField(null=True)


class Site(_Model):
    id: peewee.AutoField[int]
    customer_id: int

    customer = peewee.ForeignKeyField(Customer, backref="sites")
    name = peewee.CharField(max_length=LABEL_CHARS)

    class Meta:
        indexes = ((("customer", "name"), True),)


class Envelope(_Model):
    """One report received and loaded; UNIQUE(client, seq) is what makes ingest idempotent."""

    id: peewee.AutoField[int]
    client_id: int

    client = peewee.ForeignKeyField(Client, backref="envelopes")
    seq = peewee.BigIntegerField()
    kind = peewee.CharField(max_length=16)
    message_id = peewee.TextField(null=True)
    sha256 = peewee.CharField(max_length=64)
    # The header's ephemeral key (hex): one per sealing, and in every chunk's header, so a chunk
    # tells whether it belongs to the envelope loaded under this number. NULL before migration 5.
    sealing = peewee.CharField(max_length=64, null=True)
    chunk_count = peewee.IntegerField(default=1)
    source = peewee.TextField(default="")
    created_at = UtcDateTimeField()
    received_at = UtcDateTimeField()
    ingested_at = UtcDateTimeField()
    devices = peewee.IntegerField(default=0)
    values = peewee.IntegerField(default=0)
    resend_of = peewee.BigIntegerField(null=True)
    # sha256 (hex) of each chunk of a chunked report, in index order, so that a copy of a chunk
    # that arrives after the load is told from a resend (JSON; NULL when whole; migration 7)
    chunk_digests = JsonTextField(null=True)
    # The customer the report named when it is not its client's (fsm_server.tenancy): loaded
    # under the client's customer all the same, flagged in health and the portal. NULL: it
    # named the client's own (migration 24).
    claimed_customer = peewee.TextField(null=True)
    # The client's active PMD bundle the report names ("v<version>-<digest>" or "shipped");
    # NULL: a client too old to say (migration 25).
    pmd_bundle = peewee.TextField(null=True)

    class Meta:
        indexes = ((("client", "seq"), True),)


class Device(_Model):
    """A printer of one customer: (customer, identity) is unique, so the same serial under two
    customers is two devices (fsm_server.tenancy)."""

    id: peewee.AutoField[int]
    customer_id: int
    client_id: int
    site_id: int | None

    # "sn:<manufacturer>:<serial>" after case folding, which can make text longer: TEXT (migration 7)
    identity = peewee.TextField()
    customer = peewee.ForeignKeyField(Customer, backref="devices")
    client = peewee.ForeignKeyField(Client, backref="devices")
    site = peewee.ForeignKeyField(Site, null=True, backref="devices")
    manufacturer = peewee.CharField(max_length=LABEL_CHARS, null=True)
    model = peewee.CharField(max_length=LABEL_CHARS, null=True)
    serial = peewee.CharField(max_length=LABEL_CHARS, null=True)
    firmware = peewee.CharField(max_length=LABEL_CHARS, null=True)
    hostname = peewee.CharField(max_length=LABEL_CHARS, null=True)
    location = peewee.TextField(null=True)
    pmd = peewee.CharField(max_length=LABEL_CHARS, null=True)
    ip = peewee.CharField(max_length=NAME_CHARS)  # the latest reading's
    mac = peewee.CharField(max_length=NAME_CHARS, null=True)
    first_seen = UtcDateTimeField()
    last_seen = UtcDateTimeField()

    class Meta:
        indexes = ((("customer", "identity"), True),)


class DeviceAddress(_Model):
    """IP/MAC history: one row per (device, ip, mac) with when it was first and last seen."""

    id: peewee.AutoField[int]
    device_id: int

    device = peewee.ForeignKeyField(Device, backref="addresses", on_delete="CASCADE")
    ip = peewee.CharField(max_length=NAME_CHARS)
    mac = peewee.CharField(max_length=NAME_CHARS, default="")
    first_seen = UtcDateTimeField()
    last_seen = UtcDateTimeField()

    class Meta:
        indexes = ((("device", "ip", "mac"), True),)


class ReadingSource(_Model):
    """Where a reading's values were read: the PMD and, per field (``serial``,
    ``counters.<name>``, ``supplies.<index>``, ``status`` ...), the OID (the report's
    ``sources``). Stored once per distinct map: the readings of one model share it, reading after
    reading (migration 25)."""

    id: peewee.AutoField[int]

    digest = peewee.CharField(max_length=64, unique=True)  # sha256 (hex) of (pmd, sources)
    pmd = peewee.CharField(max_length=LABEL_CHARS, null=True)
    sources = JsonTextField()  # {field: OID}


class Reading(_Model):
    id: peewee.AutoField[int]
    envelope_id: int
    device_id: int

    envelope = peewee.ForeignKeyField(Envelope, backref="readings", on_delete="CASCADE")
    device = peewee.ForeignKeyField(Device, backref="readings")
    observed_at = UtcDateTimeField()
    ip = peewee.CharField(max_length=NAME_CHARS)
    reachability = peewee.CharField(max_length=16)
    device_status = peewee.CharField(max_length=WORD_CHARS, null=True)
    printer_status = peewee.CharField(max_length=WORD_CHARS, null=True)
    conditions = JsonTextField(null=True)
    console = peewee.TextField(null=True)
    uptime_ticks = peewee.BigIntegerField(null=True)
    warnings = JsonTextField(null=True)
    # reading_source.id (no foreign key, no index: readings are many, sources few; NULL: before
    # migration 25, or a reading that named neither a PMD nor an OID)
    source_id = peewee.BigIntegerField(null=True)

    class Meta:
        indexes = ((("device", "observed_at"), False),)


class CounterValue(_Model):
    """One page counter of one reading, with a flag when it went backwards or jumped."""

    id: peewee.AutoField[int]
    reading_id: int
    device_id: int

    reading = peewee.ForeignKeyField(Reading, backref="counters", on_delete="CASCADE")
    device = peewee.ForeignKeyField(Device)
    name = peewee.CharField(max_length=NAME_CHARS)
    value = peewee.BigIntegerField()
    observed_at = UtcDateTimeField()
    flag = peewee.CharField(max_length=16, null=True)  # reset | wrap | jump | device_swap
    previous = peewee.BigIntegerField(null=True)  # the value it was compared with, when flagged
    #: loaded after a read of the same counter at a later moment (a report that came late): only
    #: then may ``flag``/``previous`` not describe the step from the read before it in time
    late = peewee.BooleanField(default=False, constraints=[peewee.SQL("DEFAULT FALSE")])

    class Meta:
        # value and flag in the index too: a meters report reads a counter's period from the
        # index alone, not one table page per read (migration m016)
        indexes = ((("device", "name", "observed_at", "value", "flag"), False),)


class CounterLatest(_Model):
    """The newest value of each counter of each device, what the next reading is checked against."""

    device_id: int

    device = peewee.ForeignKeyField(Device, on_delete="CASCADE")
    name = peewee.CharField(max_length=NAME_CHARS)
    value = peewee.BigIntegerField()
    observed_at = UtcDateTimeField()

    class Meta:
        primary_key = peewee.CompositeKey("device", "name")


class SupplyValue(_Model):
    id: peewee.AutoField[int]
    reading_id: int

    reading = peewee.ForeignKeyField(Reading, backref="supplies", on_delete="CASCADE")
    # a field may shadow a peewee.Model class method of its name; the stubs do not know that
    index = peewee.IntegerField(null=True)  # type: ignore[assignment]
    description = peewee.TextField(default="")
    kind = peewee.CharField(max_length=NAME_CHARS)
    color = peewee.CharField(max_length=WORD_CHARS, null=True)
    level = peewee.BigIntegerField(null=True)
    max = peewee.BigIntegerField(null=True)
    unit = peewee.CharField(max_length=NAME_CHARS, null=True)
    percent = peewee.FloatField(null=True)
    state = peewee.CharField(max_length=16)


class AlertValue(_Model):
    id: peewee.AutoField[int]
    reading_id: int
    device_id: int | None

    reading = peewee.ForeignKeyField(Reading, backref="alerts", on_delete="CASCADE")
    #: the reading's device, so a report reads a device's alerts of a period by one index range
    #: (migration m026); NULL only in rows a restore of an older backup loads before m026 fills them
    device = peewee.ForeignKeyField(Device, null=True, index=False)
    code = peewee.CharField(max_length=NAME_CHARS)
    severity = peewee.CharField(max_length=WORD_CHARS)
    group = peewee.CharField(max_length=NAME_CHARS, null=True)
    group_index = peewee.IntegerField(null=True)
    location = peewee.BigIntegerField(null=True)
    description = peewee.TextField(default="")
    index = peewee.BigIntegerField(null=True)  # type: ignore[assignment]  # see SupplyValue.index
    training = peewee.CharField(max_length=WORD_CHARS, null=True)
    time_ticks = peewee.BigIntegerField(null=True)
    observed_at = UtcDateTimeField()

    class Meta:
        indexes = ((("device", "observed_at"), False),)


class DeviceLatest(_Model):
    """Each device's newest reading as a dashboard shows it, kept at ingest (``db.state``)."""

    device = peewee.ForeignKeyField(Device, primary_key=True, on_delete="CASCADE")
    reading = peewee.BigIntegerField()  # reading.id (no foreign key: retention may thin readings)
    observed_at = UtcDateTimeField()
    reachability = peewee.CharField(max_length=16)
    device_status = peewee.CharField(max_length=32, null=True)
    printer_status = peewee.CharField(max_length=32, null=True)
    conditions = JsonTextField(null=True)
    alerts = JsonTextField(null=True)  # [[code, severity], ...] of the newest reading
    # its supplies' lowest percent, -1 when one is reported low or empty (state.lowest_supply; m023)
    lowest_supply = peewee.FloatField(null=True)


class SupplyLatest(_Model):
    """Each supply's newest level and its forecast state, kept at ingest (``db.state``).

    The fit is a least-squares line over (days since ``since``, percent) of every level since the
    supply's last replacement, kept as sums so that each reading adds to it in constant time.
    """

    device_id: int

    device = peewee.ForeignKeyField(Device, on_delete="CASCADE")
    key = peewee.CharField(max_length=400)  # kind|color|slot (else description): which supply
    reading = peewee.BigIntegerField()
    observed_at = UtcDateTimeField()
    description = peewee.TextField(default="")
    kind = peewee.CharField(max_length=64)
    color = peewee.CharField(max_length=32, null=True)
    percent = peewee.FloatField(null=True)
    state = peewee.CharField(max_length=16)
    since = UtcDateTimeField(null=True)  # the first level of the fit (the last replacement)
    last_at = UtcDateTimeField(null=True)  # the newest level with a percent
    last_percent = peewee.FloatField(null=True)
    replaced_at = UtcDateTimeField(null=True)
    n = peewee.IntegerField(default=0)
    sx = peewee.FloatField(default=0.0)
    sy = peewee.FloatField(default=0.0)
    sxx = peewee.FloatField(default=0.0)
    sxy = peewee.FloatField(default=0.0)
    empty_at = UtcDateTimeField(null=True)  # when the fit reaches zero (None: no forecast)

    class Meta:
        primary_key = peewee.CompositeKey("device", "key")


class RetentionMark(_Model):
    """How far retention got: readings before ``at`` are downsampled (``db.retention``)."""

    name = peewee.CharField(max_length=64, primary_key=True)
    at = UtcDateTimeField()


class AlertAck(_Model):
    """A dealer's acknowledgement of one alert episode (device, code, start); the portal only
    records it, nothing is sent to the client or the device. Added by migration 14."""

    id: peewee.AutoField[int]
    device_id: int

    device = peewee.ForeignKeyField(Device, on_delete="CASCADE")
    code = peewee.CharField(max_length=64)
    since = UtcDateTimeField()  # when the episode began
    acked_by = peewee.CharField(max_length=200)
    acked_at = UtcDateTimeField()

    class Meta:
        indexes = ((("device", "code", "since"), True),)


class PendingChunk(_Model):
    """A chunk of a report whose other chunks have not all arrived yet (kept across restarts)."""

    id: peewee.AutoField[int]
    client_id: int

    client = peewee.ForeignKeyField(Client, on_delete="CASCADE")
    seq = peewee.BigIntegerField()
    chunk_index = peewee.IntegerField()
    chunk_count = peewee.IntegerField()
    data = peewee.BlobField()
    message_id = peewee.TextField(null=True)
    source = peewee.TextField(default="")
    received_at = UtcDateTimeField()

    class Meta:
        indexes = ((("client", "seq", "chunk_index"), True),)


class Quarantine(_Model):
    """A message that could not be loaded, kept with why; the same bytes twice are one row."""

    id: peewee.AutoField[int]

    sha256 = peewee.CharField(max_length=64, unique=True)
    reason = peewee.CharField(max_length=64)
    detail = peewee.TextField(default="")
    hint = peewee.TextField(default="")
    # the message as received (first ``raw_kept`` bytes of a huge one); shadows Model.raw
    raw = peewee.BlobField()  # type: ignore[assignment]
    raw_size = peewee.BigIntegerField()
    source = peewee.TextField(default="")
    message_id = peewee.TextField(null=True)
    client_name = peewee.CharField(max_length=64, null=True)
    seq = peewee.BigIntegerField(null=True)
    received_at = UtcDateTimeField()
    quarantined_at = UtcDateTimeField()
    # held | released (a retry loaded it) | dismissed (an admin set it aside; kept, retry-able)
    status = peewee.CharField(max_length=16, default="held")
    released_at = UtcDateTimeField(null=True)


MODELS: tuple[type[_Model], ...] = (
    Dealer,
    Customer,
    Client,
    ClientKey,
    Site,
    Envelope,
    Device,
    DeviceAddress,
    ReadingSource,
    Reading,
    CounterValue,
    CounterLatest,
    SupplyValue,
    AlertValue,
    AlertAck,
    PendingChunk,
    Quarantine,
    DeviceLatest,
    SupplyLatest,
    RetentionMark,
)


class EventState(_Model):
    """A rule's condition on one subject that is (or was just) active (fsm_server.events)."""

    id: peewee.AutoField[int]  # peewee's implicit primary key

    rule = peewee.CharField(max_length=200)
    key = peewee.CharField(max_length=300)
    status = peewee.CharField(max_length=16)  # pending | open | clearing
    subject = peewee.TextField()
    customer = peewee.TextField(default="")
    detail = peewee.TextField(default="")
    first_seen = UtcDateTimeField()
    last_seen = UtcDateTimeField()
    observed_at = UtcDateTimeField(null=True)
    opened_at = UtcDateTimeField(null=True)  # when the "opened" mail was queued
    clearing_since = UtcDateTimeField(null=True)

    class Meta:
        table_name = "event_state"
        indexes = ((("rule", "key"), True),)


class Notification(_Model):
    """A mail to send (or sent): the outbox of notifications (fsm_server.events)."""

    id: peewee.AutoField[int]  # peewee's implicit primary key

    rule = peewee.CharField(max_length=200)
    key = peewee.CharField(max_length=300)
    event = peewee.CharField(max_length=16)  # opened | cleared
    recipients = JsonTextField()
    subject = peewee.TextField()
    message = peewee.BlobField()
    observed_at = UtcDateTimeField(null=True)
    created_at = UtcDateTimeField()
    next_try_at = UtcDateTimeField()
    attempts = peewee.IntegerField(default=0)
    sent_at = UtcDateTimeField(null=True)
    answer = peewee.TextField(default="")
    last_error = peewee.TextField(default="")

    class Meta:
        table_name = "notification"
        indexes = ((("sent_at", "next_try_at"), False),)


#: The tables of the events service (migration m003_events).
EVENT_MODELS: tuple[type[_Model], ...] = (EventState, Notification)


class BackupRun(_Model):
    """One backup attempt (fsm_server.backup): what `backup status`, the health report and the
    `backup` rule show. Added by migration 13."""

    id: peewee.AutoField[int]

    started_at = UtcDateTimeField()
    finished_at = UtcDateTimeField()
    trigger = peewee.CharField(max_length=16)  # schedule | manual
    status = peewee.CharField(max_length=16)  # ok | failed
    path = peewee.TextField(default="")
    size = peewee.BigIntegerField(default=0)
    rows = peewee.BigIntegerField(default=0)
    error = peewee.TextField(default="")
    # with no successful backup after this moment the backups are "missed" ([backup] max_age_hours
    # as it was when this one ran)
    due_by = UtcDateTimeField()

    class Meta:
        indexes = ((("finished_at",), False),)


#: Tables that migrations after m001 create (m001 makes ``MODELS`` only).
LATER_MODELS: tuple[type[_Model], ...] = (*EVENT_MODELS, BackupRun)


def bind(database: peewee.Database) -> None:
    """Point every model at ``database`` (one open database per process)."""
    database.bind(MODELS + LATER_MODELS, bind_refs=False, bind_backrefs=False)


__all__ = [
    "EVENT_MODELS",
    "LATER_MODELS",
    "MODELS",
    "AlertAck",
    "AlertValue",
    "BackupRun",
    "Client",
    "ClientKey",
    "CounterLatest",
    "CounterValue",
    "Customer",
    "Dealer",
    "Device",
    "DeviceAddress",
    "DeviceLatest",
    "Envelope",
    "EventState",
    "JsonTextField",
    "Notification",
    "PendingChunk",
    "Quarantine",
    "Reading",
    "ReadingSource",
    "RetentionMark",
    "Site",
    "SupplyLatest",
    "SupplyValue",
    "UtcDateTimeField",
    "bind",
]
