"""The portal's tables: users, their customers, setup links, recovery codes, sessions, login
throttle and the audit log (made by migration ``m013_portal_accounts``).

Secrets are never stored as given: passwords as argon2id hashes, session tokens, setup-link
tokens and recovery codes as SHA-256 of 128 bits or more of randomness (a fast hash is enough
for a random secret; a slow one is needed only for what people choose).
"""

from __future__ import annotations

import peewee

from ..db.models import Customer, UtcDateTimeField


class _Model(peewee.Model):
    # Each model declares the accessors peewee adds (``id``, ``<fk>_id``) as bare annotations, as
    # fsm_server.db.models does, so that type checking knows them.

    class Meta:
        legacy_table_names = False


class User(_Model):
    """A person who logs in to the portal."""

    id: peewee.AutoField[int]

    name = peewee.CharField(max_length=64)
    name_key = peewee.CharField(max_length=64, unique=True)  # the name case-folded: one account per name
    role = peewee.CharField(max_length=16)  # admin | dealer | customer
    dealer = peewee.CharField(max_length=200, null=True)  # the dealer a dealer user works for
    password_hash = peewee.TextField(null=True)  # NULL until the setup link is used
    totp_secret = peewee.CharField(max_length=64, null=True)
    totp_last_step = peewee.BigIntegerField(default=0)  # a TOTP code is accepted once
    enabled = peewee.BooleanField(default=True)
    created_at = UtcDateTimeField()
    created_by = peewee.CharField(max_length=64, default="")
    password_changed_at = UtcDateTimeField(null=True)

    class Meta:
        table_name = "portal_user"


class UserCustomer(_Model):
    """The customers whose devices a customer user sees."""

    id: peewee.AutoField[int]
    user_id: int
    customer_id: int

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="customer_links")
    customer = peewee.ForeignKeyField(Customer, on_delete="CASCADE")

    class Meta:
        table_name = "portal_user_customer"
        indexes = ((("user", "customer"), True),)


class SetupLink(_Model):
    """A one-time link to set a password (and enrol TOTP): `users add` and `users reset` make one."""

    id: peewee.AutoField[int]
    user_id: int

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="setup_links")
    token_hash = peewee.CharField(max_length=64, unique=True)
    created_at = UtcDateTimeField()
    expires_at = UtcDateTimeField()
    used_at = UtcDateTimeField(null=True)
    totp_secret = peewee.CharField(max_length=64, null=True)  # offered on the page, kept when confirmed

    class Meta:
        table_name = "portal_setup_link"


class RecoveryCode(_Model):
    """A one-time code that stands in for a TOTP code."""

    id: peewee.AutoField[int]
    user_id: int

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="recovery_codes")
    code_hash = peewee.CharField(max_length=64)
    used_at = UtcDateTimeField(null=True)

    class Meta:
        table_name = "portal_recovery_code"
        indexes = ((("user", "code_hash"), True),)


class WebSession(_Model):
    """A login: the hash of its cookie token, its times and whether the second factor passed."""

    id: peewee.AutoField[int]
    user_id: int

    user = peewee.ForeignKeyField(User, on_delete="CASCADE", backref="sessions")
    token_hash = peewee.CharField(max_length=64, unique=True)
    created_at = UtcDateTimeField()
    last_seen = UtcDateTimeField()
    expires_at = UtcDateTimeField()  # the absolute limit
    mfa_passed = peewee.BooleanField(default=False)
    reauth_at = UtcDateTimeField(null=True)  # when the password was last given again in it
    address = peewee.CharField(max_length=64, default="")
    user_agent = peewee.CharField(max_length=200, default="")

    class Meta:
        table_name = "portal_session"


class LoginThrottle(_Model):
    """Failed logins of one account name or one address, and until when the next attempt waits."""

    key = peewee.CharField(max_length=200, primary_key=True)  # "user:<name_key>" | "addr:<address>"
    failures = peewee.IntegerField(default=0)
    last_failure = UtcDateTimeField()
    not_before = UtcDateTimeField(null=True)

    class Meta:
        table_name = "portal_login_throttle"


class AuditEntry(_Model):
    """One entry of the audit log; ``entry_hash`` = SHA-256 over the previous entry's hash and
    this entry's fields (fsm_server.audit)."""

    id: peewee.AutoField[int]

    at = UtcDateTimeField()
    actor = peewee.CharField(max_length=64)  # a user name, "cli:<login>" or "-" (nobody logged in)
    action = peewee.CharField(max_length=64)
    target = peewee.CharField(max_length=300, default="")
    detail = peewee.TextField(default="")  # JSON
    dealer = peewee.CharField(max_length=200, null=True)  # whose staff may read it
    address = peewee.CharField(max_length=64, default="")
    prev_hash = peewee.CharField(max_length=64)
    entry_hash = peewee.CharField(max_length=64)

    class Meta:
        table_name = "audit_entry"
        indexes = ((("dealer", "id"), False),)


MODELS: tuple[type[_Model], ...] = (
    User,
    UserCustomer,
    SetupLink,
    RecoveryCode,
    WebSession,
    LoginThrottle,
    AuditEntry,
)


def create_tables(db: peewee.Database) -> None:
    """The tables of schema migration ``m013_portal_accounts``."""
    with db.bind_ctx(MODELS):
        db.create_tables(MODELS, safe=False)


def bind(db: peewee.Database) -> None:
    db.bind(MODELS, bind_refs=False, bind_backrefs=False)


__all__ = [
    "MODELS",
    "AuditEntry",
    "LoginThrottle",
    "RecoveryCode",
    "SetupLink",
    "User",
    "UserCustomer",
    "WebSession",
    "bind",
    "create_tables",
]
