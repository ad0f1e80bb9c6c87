"""Portal users: add, list, disable, enable, reset, change role; setup links; login; own changes.

There is no default account. `fsm-server users add` makes a user without a password and prints a
one-time setup link; following it, the user chooses a password and, for administrators and
dealers, enrols a TOTP second factor before the first session. Nobody else ever sets or sees
a password: a lost one is `users reset`, which ends the user's sessions and makes a new link.

Who manages whom: ``viewer`` None is the operator at the shell (everything); an administrator
manages everyone; a dealer user manages the customer users of its dealer's customers and may add
customer users for those customers only; a customer user manages nobody. A user outside the
viewer's reach is "no user", as one that does not exist.

>>> import tempfile, pathlib
>>> from fsm_server.db import open_database
>>> from fsm_server.config import WebSection
>>> db = open_database("", data_dir=pathlib.Path(tempfile.mkdtemp()))
>>> info, link = add_user("alice", "admin", by=None, settings=WebSection(), base_url="https://p.example")
>>> info.role, link.startswith("https://p.example/setup/")
('admin', True)
"""

from __future__ import annotations

import getpass
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from .. import audit
from ..config import WebSection
from ..db.connect import DuplicateKey, translated
from ..db.models import Customer, Dealer
from ..errors import AccountError
from . import passwords, second_factor, sessions, throttle
from .models import RecoveryCode, SetupLink, User, UserCustomer
from .principal import ROLES, TOTP_ROLES, Principal, Role

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
LOGIN_FAILED = "wrong user name or password"


class UserInfo(msgspec.Struct, kw_only=True):
    id: int
    name: str
    role: Role
    dealer: str | None
    customers: list[str]
    enabled: bool
    password_set: bool
    totp: bool
    created_at: datetime
    created_by: str


class SetupOffer(msgspec.Struct, kw_only=True):
    """What the setup page shows: the user, and the TOTP secret to enrol when the role needs one."""

    user: str
    role: Role
    totp_secret: str | None
    otpauth_uri: str | None


class LoginResult(msgspec.Struct, kw_only=True):
    user_id: int | None = None  # the password was right
    needs_totp: bool = False
    wait_seconds: float = 0.0  # throttled: nothing was checked


def _now() -> datetime:
    return datetime.now(UTC)


def _after(started: datetime) -> datetime:
    """When a failure is answered: the wait it earns counts from then, not from the start of the
    (slow, argon2) check. ``started`` in the future (a test's clock) is kept."""
    return max(started, _now())


def actor_name(by: Principal | None) -> str:
    """How an action's author is written in the audit log: the user, or the shell's login."""
    if by is not None:
        return by.name
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def _customers_of(user_ids: Sequence[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    q = (
        UserCustomer.select(UserCustomer.user, Customer.name)
        .join(Customer)
        .where(UserCustomer.user.in_(list(user_ids)))
        .order_by(Customer.name)
    )
    for link in q:
        found.setdefault(link.user_id, []).append(link.customer.name)
    return found


def _role(value: str) -> Role:
    if value not in ROLES:  # a row written by hand: deny rather than guess
        raise AccountError(
            f"a user has the unknown role {value!r}", hint="fix it with `fsm-server users set-role`"
        )
    return value


def _info(user: User, customers: list[str]) -> UserInfo:
    return UserInfo(
        id=user.id,
        name=user.name,
        role=_role(user.role),
        dealer=user.dealer,
        customers=customers,
        enabled=user.enabled,
        password_set=user.password_hash is not None,
        totp=user.totp_secret is not None,
        created_at=user.created_at,
        created_by=user.created_by,
    )


def principal(user: User) -> Principal:
    customers = tuple(_customers_of([user.id]).get(user.id, [])) if user.role == "customer" else ()
    return Principal(
        user_id=user.id, name=user.name, role=_role(user.role), dealer=user.dealer, customers=customers
    )


def dealer_customers(dealer: str | None) -> set[str]:
    """Names of the customers ``dealer`` serves."""
    if not dealer:
        return set()
    q = (
        Customer.select(Customer.name)
        .join(Dealer, on=(Customer.dealer == Dealer.id))
        .where(Dealer.name == dealer)
    )
    return {c.name for c in q}


def audit_dealer(role: str, dealer: str | None, customers: Sequence[str]) -> str | None:
    """The dealer whose staff may read audit entries about a user with this role and scope."""
    if role == "dealer":
        return dealer
    if role == "customer" and customers:
        row = (
            Dealer.select(Dealer.name)
            .join(Customer, on=(Customer.dealer == Dealer.id))
            .where(Customer.name == customers[0])
            .first()
        )
        return row.name if row else None
    return None


def _in_reach(viewer: Principal | None, role: str, customers: Sequence[str]) -> bool:
    if viewer is None or viewer.role == "admin":
        return True
    if viewer.role == "dealer" and role == "customer" and customers:
        return set(customers) <= dealer_customers(viewer.dealer)
    return False


def _check_scope(role: str, dealer: str | None, customers: Sequence[str]) -> tuple[str | None, list[str]]:
    if role not in ROLES:
        raise AccountError(
            f"role {role!r} is not one of {', '.join(ROLES)}", hint="--role admin|dealer|customer"
        )
    wanted = sorted(set(customers))
    if role == "admin" and (dealer or wanted):
        raise AccountError(
            "an administrator sees every customer; give no --dealer or --customer",
            hint="leave out --dealer and --customer",
        )
    if role == "dealer":
        if not dealer or wanted:
            raise AccountError(
                "a dealer user works for one dealer and sees its customers: give --dealer D "
                "and no --customer",
                hint='e.g. --role dealer --dealer "Northside Office"',
            )
        if Dealer.get_or_none(Dealer.name == dealer) is None:
            raise AccountError(
                f"no dealer {dealer!r}", hint=f"add it with `fsm-server dealers add {dealer!r}`"
            )
    if role == "customer":
        if dealer or not wanted:
            raise AccountError(
                "a customer user sees its own customers: give one --customer C or more and no --dealer",
                hint="e.g. --role customer --customer ACME",
            )
        known = {c.name for c in Customer.select(Customer.name).where(Customer.name.in_(wanted))}
        missing = [c for c in wanted if c not in known]
        if missing:
            raise AccountError(
                f"no customer {missing[0]!r}",
                hint="see `fsm-server customers list`; customers come from `customers add` "
                "or their clients' first report",
            )
    return (dealer if role == "dealer" else None), wanted


def _name_key(name: str) -> str:
    return name.casefold()


def _new_link(user_id: int, now: datetime, settings: WebSection, base_url: str) -> str:
    token = secrets.token_urlsafe(32)
    SetupLink.update(used_at=now).where((SetupLink.user == user_id) & SetupLink.used_at.is_null()).execute()
    SetupLink.create(
        user=user_id,
        token_hash=sessions.token_hash(token),
        created_at=now,
        expires_at=now + timedelta(hours=settings.setup_link_hours),
    )
    return f"{base_url.rstrip('/')}/setup/{token}"


def _set_customers(user_id: int, customers: Sequence[str]) -> None:
    UserCustomer.delete().where(UserCustomer.user == user_id).execute()
    for c in Customer.select(Customer.id).where(Customer.name.in_(list(customers))):
        UserCustomer.create(user=user_id, customer=c.id)


def add_user(
    name: str,
    role: str,
    *,
    customers: Sequence[str] = (),
    dealer: str | None = None,
    by: Principal | None,
    settings: WebSection,
    base_url: str,
    address: str = "",
    now: datetime | None = None,
) -> tuple[UserInfo, str]:
    """Add a user without a password; returns it and its one-time setup link."""
    now = now or _now()
    if not NAME_PATTERN.fullmatch(name):
        raise AccountError(
            f"user name {name!r} must be 1 to 64 letters, digits or . _ @ + - "
            "(starting with a letter or digit)",
            hint="e.g. j.smith or j.smith@dealer.example",
        )
    with translated(f"cannot add user {name!r}"), User._meta.database.atomic():
        dealer, wanted = _check_scope(role, dealer, customers)
        if not _in_reach(by, role, wanted):
            raise AccountError(
                "you may add customer users of your own customers only", hint="choose customers from the list"
            )
        try:
            user = User.create(
                name=name,
                name_key=_name_key(name),
                role=role,
                dealer=dealer,
                created_at=now,
                created_by=actor_name(by),
            )
        except DuplicateKey:
            raise AccountError(
                f"a user {name!r} exists already",
                hint=f"choose another name, or `fsm-server users reset {name}`",
            ) from None
        _set_customers(user.id, wanted)
        link = _new_link(user.id, now, settings, base_url)
        audit.record(
            "user.add",
            actor=actor_name(by),
            target=name,
            address=address,
            now=now,
            detail={"role": role, "dealer": dealer, "customers": wanted},
            dealer=audit_dealer(role, dealer, wanted),
        )
    return _info(user, wanted), link


def list_users(viewer: Principal | None) -> list[UserInfo]:
    """The users ``viewer`` manages (None: all), by name."""
    with translated("cannot list users"):
        users = list(User.select().order_by(User.name_key))
        customers = _customers_of([u.id for u in users])
    return [
        _info(u, customers.get(u.id, [])) for u in users if _in_reach(viewer, u.role, customers.get(u.id, []))
    ]


def _get(name: str, viewer: Principal | None) -> tuple[User, list[str]]:
    user = User.get_or_none(User.name_key == _name_key(name))
    customers = _customers_of([user.id]).get(user.id, []) if user else []
    if user is None or not _in_reach(viewer, user.role, customers):
        raise AccountError(f"no user {name!r}", hint="see `fsm-server users list`")
    return user, customers


def get_user(name: str, viewer: Principal | None) -> UserInfo:
    with translated(f"cannot read user {name!r}"):
        return _info(*_get(name, viewer))


def set_enabled(name: str, enabled: bool, *, by: Principal | None, address: str = "") -> UserInfo:
    """Disable (ending every session) or enable ``name``."""
    with translated(f"cannot change user {name!r}"), User._meta.database.atomic():
        user, customers = _get(name, by)
        if by is not None and user.id == by.user_id and not enabled:
            raise AccountError("you cannot disable yourself", hint="ask another administrator")
        User.update(enabled=enabled).where(User.id == user.id).execute()
        ended = 0 if enabled else sessions.end_all(user.id)
        audit.record(
            "user.enable" if enabled else "user.disable",
            actor=actor_name(by),
            target=user.name,
            address=address,
            detail={"sessions_ended": ended},
            dealer=audit_dealer(user.role, user.dealer, customers),
        )
        user.enabled = enabled
    return _info(user, customers)


def reset(
    name: str,
    *,
    by: Principal | None,
    settings: WebSection,
    base_url: str,
    address: str = "",
    now: datetime | None = None,
) -> tuple[UserInfo, str]:
    """Forget ``name``'s password and second factor, end its sessions; returns a new setup link."""
    now = now or _now()
    with translated(f"cannot reset user {name!r}"), User._meta.database.atomic():
        user, customers = _get(name, by)
        User.update(password_hash=None, totp_secret=None, totp_last_step=0).where(
            User.id == user.id
        ).execute()
        RecoveryCode.delete().where(RecoveryCode.user == user.id).execute()
        ended = sessions.end_all(user.id)
        link = _new_link(user.id, now, settings, base_url)
        audit.record(
            "user.reset",
            actor=actor_name(by),
            target=user.name,
            address=address,
            now=now,
            detail={"sessions_ended": ended},
            dealer=audit_dealer(user.role, user.dealer, customers),
        )
        user = User.get_by_id(user.id)
    return _info(user, customers), link


def set_role(
    name: str,
    role: str,
    *,
    dealer: str | None = None,
    customers: Sequence[str] = (),
    by: Principal | None,
    settings: WebSection,
    base_url: str,
    address: str = "",
    now: datetime | None = None,
) -> tuple[UserInfo, str | None]:
    """Give ``name`` another role or scope (administrators only); its sessions end. A user who
    needs a second factor now and has none is reset: the returned link enrols it."""
    now = now or _now()
    if by is not None and by.role != "admin":
        raise AccountError("only administrators change roles", hint="ask an administrator")
    with translated(f"cannot change user {name!r}"), User._meta.database.atomic():
        user, before = _get(name, by)
        dealer, wanted = _check_scope(role, dealer, customers)
        if by is not None and user.id == by.user_id:
            raise AccountError("you cannot change your own role", hint="ask another administrator")
        User.update(role=role, dealer=dealer).where(User.id == user.id).execute()
        _set_customers(user.id, wanted)
        ended = sessions.end_all(user.id)
        audit.record(
            "user.role",
            actor=actor_name(by),
            target=user.name,
            address=address,
            now=now,
            detail={
                "from": {"role": user.role, "dealer": user.dealer, "customers": before},
                "to": {"role": role, "dealer": dealer, "customers": wanted},
                "sessions_ended": ended,
            },
            dealer=(audit_dealer(role, dealer, wanted) or audit_dealer(user.role, user.dealer, before)),
        )
        link = None
        if role in TOTP_ROLES and user.totp_secret is None:
            link = reset(name, by=by, settings=settings, base_url=base_url, address=address, now=now)[1]
        user = User.get_by_id(user.id)
    return _info(user, wanted), link


# -- setup links ---------------------------------------------------------------------------------


def _live_link(token: str, now: datetime) -> tuple[SetupLink, User]:
    link = (
        (
            SetupLink.select(SetupLink, User)
            .join(User)
            .where(SetupLink.token_hash == sessions.token_hash(token))
            .first()
        )
        if token
        else None
    )
    if link is None or link.used_at is not None or now >= link.expires_at or not link.user.enabled:
        raise AccountError(
            "this setup link is unknown, used or expired",
            hint="ask your administrator or dealer for a new one (`fsm-server users reset NAME`)",
        )
    return link, link.user


def setup_offer(token: str, now: datetime | None = None) -> SetupOffer:
    """What the setup page of ``token`` shows; the TOTP secret is made once and kept with the link."""
    now = now or _now()
    with translated("cannot read a setup link"):
        link, user = _live_link(token, now)
        secret = None
        if user.role in TOTP_ROLES:
            secret = link.totp_secret or second_factor.new_secret()
            if link.totp_secret is None:
                SetupLink.update(totp_secret=secret).where(SetupLink.id == link.id).execute()
    return SetupOffer(
        user=user.name,
        role=_role(user.role),
        totp_secret=secret,
        otpauth_uri=second_factor.otpauth_uri(secret, user.name) if secret else None,
    )


def _store_recovery_codes(user_id: int) -> list[str]:
    codes = second_factor.new_recovery_codes()
    RecoveryCode.delete().where(RecoveryCode.user == user_id).execute()
    for code in codes:
        RecoveryCode.create(user=user_id, code_hash=second_factor.code_hash(code))
    return codes


def _check_new_password(user: User, password: str, confirm: str) -> None:
    if password != confirm:
        raise AccountError("the two passwords differ", hint="type the same password twice")
    passwords.check_policy(password, user_name=user.name)


def complete_setup(
    token: str,
    password: str,
    confirm: str,
    totp_code: str = "",
    *,
    address: str = "",
    now: datetime | None = None,
) -> list[str]:
    """Set the password (and enrol TOTP) through the link; returns the recovery codes (none
    without TOTP). The link is used up."""
    now = now or _now()
    with translated("cannot complete the setup"), User._meta.database.atomic():
        link, user = _live_link(token, now)
        _check_new_password(user, password, confirm)
        step = 0
        if user.role in TOTP_ROLES:
            if link.totp_secret is None:
                raise AccountError("the page did not offer a second factor yet", hint="reload the setup page")
            found = second_factor.accepted_step(link.totp_secret, totp_code, last_step=0)
            if found is None:
                raise AccountError(
                    "the authenticator code is wrong or too old",
                    hint="add the secret to your authenticator app, then type its current 6-digit code",
                )
            step = found
        User.update(
            password_hash=passwords.hash_password(password),
            password_changed_at=now,
            totp_secret=link.totp_secret if user.role in TOTP_ROLES else None,
            totp_last_step=step,
        ).where(User.id == user.id).execute()
        SetupLink.update(used_at=now).where(SetupLink.user == user.id).execute()
        codes = _store_recovery_codes(user.id) if user.role in TOTP_ROLES else []
        audit.record(
            "user.setup",
            actor=user.name,
            target=user.name,
            address=address,
            now=now,
            detail={"totp": user.role in TOTP_ROLES},
            dealer=audit_dealer(user.role, user.dealer, _customers_of([user.id]).get(user.id, [])),
        )
    return codes


# -- login ---------------------------------------------------------------------------------------


def _audit_login(
    action: str,
    user: User | None,
    name: str,
    address: str,
    now: datetime,
    detail: dict[str, object] | None = None,
) -> None:
    dealer = None
    if user is not None:
        dealer = audit_dealer(user.role, user.dealer, _customers_of([user.id]).get(user.id, []))
    audit.record(
        action,
        actor=user.name if user else "-",
        target=name[:64],
        address=address,
        now=now,
        detail=detail,
        dealer=dealer,
    )


def login_password(
    name: str, password: str, *, address: str, settings: WebSection, now: datetime | None = None
) -> LoginResult:
    """The password step. Unknown name, disabled user, no password yet and wrong password all
    answer alike and cost one argon2 verification each."""
    now = now or _now()
    key = _name_key(name.strip())[:64]
    wait = throttle.wait_seconds([throttle.user_key(key), throttle.address_key(address)], now)
    if wait > 0:
        audit.record(
            "login.throttled",
            actor="-",
            target=name[:64],
            address=address,
            now=now,
            detail={"wait_seconds": round(wait, 1)},
        )
        return LoginResult(wait_seconds=wait)
    with translated("cannot read users"):
        user = User.get_or_none(User.name_key == key)
    passed: User | None = None  # the user, once the password is right
    if user is None or user.password_hash is None:
        passwords.burn_time(password)
    elif passwords.verify_password(user.password_hash, password) and user.enabled:
        passed = user
    if passed is None:
        throttle.failed(key, address, _after(now), settings)
        _audit_login("login.failed", user, name, address, now, {"step": "password"})
        return LoginResult()
    with translated("cannot update a user"):
        if passwords.needs_rehash(str(passed.password_hash)):
            User.update(password_hash=passwords.hash_password(password)).where(User.id == passed.id).execute()
        if passed.totp_secret is None:
            throttle.succeeded(key)
            _audit_login("login", passed, name, address, now)
    return LoginResult(user_id=passed.id, needs_totp=passed.totp_secret is not None)


def login_second_factor(
    user_id: int, code: str, *, address: str, settings: WebSection, now: datetime | None = None
) -> bool | float:
    """The TOTP (or recovery code) step: True passed, False wrong, a float: throttled, wait."""
    now = now or _now()
    with translated("cannot read users"):
        user = User.get_by_id(user_id)
    wait = throttle.wait_seconds([throttle.user_key(user.name_key), throttle.address_key(address)], now)
    if wait > 0:
        return wait
    ok = check_second_factor(user, code, now=now)
    if ok:
        throttle.succeeded(user.name_key)
        kind = "recovery code" if second_factor.looks_like_recovery_code(code) else "totp"
        _audit_login("login", user, user.name, address, now, {"second_factor": kind})
    else:
        throttle.failed(user.name_key, address, _after(now), settings)
        _audit_login("login.failed", user, user.name, address, now, {"step": "second factor"})
    return ok


def check_second_factor(user: User, code: str, *, now: datetime) -> bool:
    """A current TOTP code not used before, or an unused recovery code (used up by this)."""
    if user.totp_secret is None:
        return False
    with translated("cannot check the second factor"), User._meta.database.atomic():
        if second_factor.looks_like_recovery_code(code):
            return bool(
                RecoveryCode.update(used_at=now)
                .where(
                    (RecoveryCode.user == user.id)
                    & (RecoveryCode.code_hash == second_factor.code_hash(code))
                    & RecoveryCode.used_at.is_null()
                )
                .execute()
            )
        step = second_factor.accepted_step(
            user.totp_secret, code, last_step=user.totp_last_step, now=now.timestamp()
        )
        if step is None:
            return False
        # the update only wins if no other request used this step meanwhile
        return bool(
            User.update(totp_last_step=step)
            .where((User.id == user.id) & (User.totp_last_step < step))
            .execute()
        )


def reauthenticate(
    user_id: int, password: str, code: str, *, address: str, settings: WebSection, now: datetime | None = None
) -> bool:
    """The password (and second factor, when enrolled) given again inside a session."""
    now = now or _now()
    with translated("cannot read users"):
        user = User.get_by_id(user_id)
    wait = throttle.wait_seconds([throttle.user_key(user.name_key), throttle.address_key(address)], now)
    ok = (
        wait <= 0
        and user.password_hash is not None
        and passwords.verify_password(user.password_hash, password)
        and (user.totp_secret is None or check_second_factor(user, code, now=now))
    )
    if not ok and wait <= 0:
        throttle.failed(user.name_key, address, _after(now), settings)
    _audit_login("reauth" if ok else "reauth.failed", user, user.name, address, now)
    return ok


# -- a user's own changes (the session has re-authenticated) ---------------------------------------


def change_password(
    user_id: int,
    password: str,
    confirm: str,
    *,
    keep_session: int | None,
    address: str = "",
    now: datetime | None = None,
) -> int:
    """Set a new password; every other session of the user ends. Returns how many ended."""
    now = now or _now()
    with translated("cannot change the password"), User._meta.database.atomic():
        user = User.get_by_id(user_id)
        _check_new_password(user, password, confirm)
        User.update(password_hash=passwords.hash_password(password), password_changed_at=now).where(
            User.id == user_id
        ).execute()
        ended = sessions.end_all(user_id, keep=keep_session)
        _audit_login("password.change", user, user.name, address, now, {"sessions_ended": ended})
    return ended


def replace_second_factor(
    user_id: int, secret: str, code: str, *, address: str = "", now: datetime | None = None
) -> list[str]:
    """Enrol a new TOTP secret (confirmed by a code from it); returns new recovery codes."""
    now = now or _now()
    step = second_factor.accepted_step(secret, code, last_step=0, now=now.timestamp())
    if step is None:
        raise AccountError(
            "the authenticator code is wrong or too old",
            hint="add the new secret to your authenticator app, then type its current code",
        )
    with translated("cannot change the second factor"), User._meta.database.atomic():
        user = User.get_by_id(user_id)
        User.update(totp_secret=secret, totp_last_step=step).where(User.id == user_id).execute()
        codes = _store_recovery_codes(user_id)
        _audit_login("totp.change", user, user.name, address, now)
    return codes


def renew_recovery_codes(user_id: int, *, address: str = "", now: datetime | None = None) -> list[str]:
    now = now or _now()
    with translated("cannot make recovery codes"), User._meta.database.atomic():
        user = User.get_by_id(user_id)
        if user.totp_secret is None:
            raise AccountError(
                "recovery codes stand in for a second factor, which this account has not",
                hint="enrol an authenticator first",
            )
        codes = _store_recovery_codes(user_id)
        _audit_login("recovery_codes.renew", user, user.name, address, now)
    return codes


def unused_recovery_codes(user_id: int) -> int:
    with translated("cannot count recovery codes"):
        return int(
            RecoveryCode.select()
            .where((RecoveryCode.user == user_id) & RecoveryCode.used_at.is_null())
            .count()
        )


__all__ = [
    "LOGIN_FAILED",
    "NAME_PATTERN",
    "LoginResult",
    "SetupOffer",
    "UserInfo",
    "actor_name",
    "add_user",
    "audit_dealer",
    "change_password",
    "check_second_factor",
    "complete_setup",
    "dealer_customers",
    "get_user",
    "list_users",
    "login_password",
    "login_second_factor",
    "principal",
    "reauthenticate",
    "renew_recovery_codes",
    "replace_second_factor",
    "reset",
    "set_enabled",
    "set_role",
    "setup_offer",
    "unused_recovery_codes",
]
