"""API tokens: made in the portal (or by `fsm-server api-tokens add`), shown once, stored hashed,
scoped to one dealer or one customer, revocable; every use noted.

Who may make, see and revoke which token follows the portal's tenancy: an administrator any; a
dealer user those of its dealer and of the customers its dealer serves; a customer user those of
its own customers. A token belongs to its scope, not to the person who made it: it keeps working
when that person's account is disabled, until someone in reach revokes it. Making and revoking
are in the audit log (the token itself never is).

>>> import tempfile, pathlib
>>> from fsm_server.db import open_database
>>> from fsm_server.customers import add_customer, add_dealer
>>> db = open_database("", data_dir=pathlib.Path(tempfile.mkdtemp()))
>>> _ = add_dealer("North"); _ = add_customer("ACME", dealer="North")
>>> info, secret = create("ERP", customer="ACME", by=None)
>>> authenticate(secret, address="192.0.2.7").customers
('ACME',)
>>> _ = revoke(info.id, by=None)
>>> authenticate(secret, address="192.0.2.7") is None
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, cast

import msgspec
import peewee

from .. import audit
from ..accounts.principal import Principal, Role
from ..accounts.users import actor_name
from ..db.connect import translated
from ..db.models import Customer, Dealer
from ..errors import ApiError, NotFound
from ..scoping import Scoped
from .models import ApiToken

if TYPE_CHECKING:

    class _TokenRow(ApiToken):  # a token with its scope's names (``_select``'s aliased columns)
        dealer_name: str | None
        customer_name: str | None


PREFIX = "fsm_"
#: Characters of the token kept in the clear, to tell tokens apart in a listing.
SHOWN = 12
MAX_NAME = 100
#: Longest text taken as a token at all (one is 47 characters).
MAX_TOKEN = 128
#: A use is written down at most this often per token (and whenever the address changes).
LAST_USE_EVERY = timedelta(seconds=60)

ScopeKind = Literal["dealer", "customer"]


class TokenInfo(msgspec.Struct, kw_only=True):
    """A token as its listing shows it (never the token itself)."""

    id: int
    name: str
    prefix: str
    scope: ScopeKind
    of: str  # the dealer's or the customer's name
    created_by: str
    created_at: datetime
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    last_used_at: datetime | None = None
    last_used_address: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class TokenViewer(msgspec.Struct, frozen=True, kw_only=True):
    """Who an API request acts as: its token's scope, in the shape scoping takes (``Viewer``)."""

    token_id: int
    name: str
    role: Role
    dealer: str | None = None
    customers: tuple[str, ...] = ()


def _now() -> datetime:
    return datetime.now(UTC)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _select() -> peewee.ModelSelect[ApiToken]:
    """Tokens with the names of their dealer or customer (``_TokenRow``)."""
    return (
        ApiToken.select(ApiToken, Dealer.name.alias("dealer_name"), Customer.name.alias("customer_name"))
        .join(Dealer, peewee.JOIN.LEFT_OUTER, on=(ApiToken.dealer == Dealer.id))
        .switch(ApiToken)
        .join(Customer, peewee.JOIN.LEFT_OUTER, on=(ApiToken.customer == Customer.id))
        .switch(ApiToken)
        .objects()
    )


def _scope_of(row: ApiToken) -> tuple[str | None, str | None]:
    """The dealer's or the customer's name of a row of ``_select`` (the other is None)."""
    named = cast("_TokenRow", row)
    if named.dealer_name is not None:
        return named.dealer_name, None
    if named.customer_name is None:  # the table's rule, one of the two, broken by hand: deny
        raise ApiError(f"API token {row.id} has neither a dealer nor a customer", hint="revoke it")
    return None, named.customer_name


def _info(row: ApiToken) -> TokenInfo:
    dealer, customer = _scope_of(row)
    return TokenInfo(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scope="dealer" if dealer is not None else "customer",
        of=dealer if dealer is not None else customer or "",
        created_by=row.created_by,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        last_used_at=row.last_used_at,
        last_used_address=row.last_used_address,
    )


def _reachable(viewer: Principal | None) -> peewee.Expression | None:
    """Which tokens ``viewer`` may see and revoke (None: every one, the shell's operator or an admin)."""
    if viewer is None or viewer.role == "admin":
        return None
    scoped = Scoped.of(viewer)
    customers = sorted(scoped.customer_ids or ())
    mine = ApiToken.customer.in_(customers)
    if viewer.role == "dealer" and viewer.dealer:
        return mine | (Dealer.name == viewer.dealer)
    return mine


def _audit_dealer(dealer: str | None, customer: str | None) -> str | None:
    """The dealer whose staff may read the audit entries about a token of this scope."""
    if dealer is not None:
        return dealer
    row = (
        Dealer.select(Dealer.name)
        .join(Customer, on=(Customer.dealer == Dealer.id))
        .where(Customer.name == customer)
        .first()
    )
    return row.name if row else None


def _scope_rows(
    by: Principal | None, dealer: str | None, customer: str | None
) -> tuple[Dealer | None, Customer | None]:
    """The dealer or customer a token of ``by`` is for; one out of ``by``'s reach is "no such"
    alike with one that does not exist."""
    if (dealer is None) == (customer is None):
        raise ApiError(
            "an API token is scoped to one dealer or one customer: give exactly one of them",
            hint='e.g. --customer ACME, or --dealer "Northside Office Supplies"',
        )
    anyone = by is None or by.role == "admin"
    if dealer is not None:
        d = Dealer.get_or_none(Dealer.name == dealer)
        if d is None or not (anyone or (by is not None and by.role == "dealer" and by.dealer == dealer)):
            raise ApiError(f"no dealer {dealer!r}", hint="see `fsm-server dealers list`")
        return d, None
    assert customer is not None
    c = Customer.get_or_none(Customer.name == customer)
    if c is None or not (anyone or (by is not None and c.id in (Scoped.of(by).customer_ids or ()))):
        raise ApiError(f"no customer {customer!r}", hint="see `fsm-server customers list`")
    return None, c


def create(
    name: str,
    *,
    dealer: str | None = None,
    customer: str | None = None,
    by: Principal | None,
    address: str = "",
    now: datetime | None = None,
    token_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> tuple[TokenInfo, str]:
    """Make a token for ``dealer`` or ``customer`` on behalf of ``by`` (None: the shell's operator);
    returns it with its text, which is not kept and cannot be shown again."""
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise ApiError(
            f"an API token needs a name of 1 to {MAX_NAME} characters saying what it is for",
            hint='e.g. "ERP meter import"',
        )
    secret = PREFIX + base64.urlsafe_b64encode(token_bytes(32)).rstrip(b"=").decode()
    at = now or _now()
    with translated("cannot store the API token"), ApiToken._meta.database.atomic():
        d, c = _scope_rows(by, dealer, customer)
        row = ApiToken.create(
            name=name,
            token_hash=digest(secret),
            prefix=secret[:SHOWN],
            dealer=d,
            customer=c,
            created_by=actor_name(by)[:64],
            created_at=at,
        )
        info = _info(_select().where(ApiToken.id == row.id).get())
        audit.record(
            "api_token.create",
            actor=actor_name(by),
            target=f"api token {info.id}",
            detail={"name": name, "scope": info.scope, "of": info.of, "prefix": info.prefix},
            dealer=_audit_dealer(d.name if d else None, c.name if c else None),
            address=address,
            now=at,
        )
    return info, secret


def list_tokens(viewer: Principal | None) -> list[TokenInfo]:
    """The tokens ``viewer`` may see, active ones first, newest first."""
    with translated("cannot list API tokens"):
        q = _select()
        reach = _reachable(viewer)
        if reach is not None:
            q = q.where(reach)
        rows = [_info(r) for r in q.order_by(ApiToken.created_at.desc(), ApiToken.id.desc())]
    return sorted(rows, key=lambda t: not t.active)


def revoke(
    token_id: int, *, by: Principal | None, address: str = "", now: datetime | None = None
) -> TokenInfo:
    """Revoke a token in ``by``'s reach (NotFound otherwise, as for one that does not exist);
    revoking a revoked token changes nothing."""
    at = now or _now()
    with translated("cannot revoke the API token"), ApiToken._meta.database.atomic():
        q = _select().where(ApiToken.id == token_id)
        reach = _reachable(by)
        if reach is not None:
            q = q.where(reach)
        row = q.get_or_none()
        if row is None:
            raise NotFound(f"no API token {token_id}", hint="see the API tokens list")
        if row.revoked_at is not None:
            return _info(row)
        ApiToken.update(revoked_at=at, revoked_by=actor_name(by)[:64]).where(
            ApiToken.id == token_id
        ).execute()
        info = _info(_select().where(ApiToken.id == token_id).get())
        audit.record(
            "api_token.revoke",
            actor=actor_name(by),
            target=f"api token {info.id}",
            detail={"name": info.name, "scope": info.scope, "of": info.of, "prefix": info.prefix},
            dealer=_audit_dealer(*_scope_of(row)),
            address=address,
            now=at,
        )
    return info


def authenticate(secret: str, *, address: str = "", now: datetime | None = None) -> TokenViewer | None:
    """Who a request carrying ``secret`` acts as; None for an unknown or revoked token."""
    if not secret.startswith(PREFIX) or len(secret) > MAX_TOKEN:
        return None
    wanted = digest(secret)
    at = now or _now()
    with translated("cannot check the API token"):
        row = _select().where(ApiToken.token_hash == wanted).get_or_none()
        # the lookup is by the hash of 256 random bits; comparing again in constant time costs nothing
        if row is None or not hmac.compare_digest(row.token_hash, wanted) or row.revoked_at is not None:
            return None
        if (
            row.last_used_at is None
            or at - row.last_used_at >= LAST_USE_EVERY
            or row.last_used_address != address
        ):
            ApiToken.update(last_used_at=at, last_used_address=address[:64]).where(
                ApiToken.id == row.id
            ).execute()
    dealer, customer = _scope_of(row)
    if dealer is not None:
        return TokenViewer(token_id=row.id, name=row.name, role="dealer", dealer=dealer)
    return TokenViewer(token_id=row.id, name=row.name, role="customer", customers=(customer or "",))


__all__ = [
    "LAST_USE_EVERY",
    "MAX_NAME",
    "PREFIX",
    "ScopeKind",
    "TokenInfo",
    "TokenViewer",
    "authenticate",
    "create",
    "digest",
    "list_tokens",
    "revoke",
]
