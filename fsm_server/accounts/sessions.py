"""Server-side sessions: the browser holds a 256-bit random token, the database its SHA-256.

A session ends at its idle timeout, at its absolute timeout, at logout, when its user revokes it,
and when the user is disabled or reset. Logging in, and passing the second factor, always make a
new token (the old one, if any, no longer works). A session whose second factor is still to come
(``mfa_passed`` false) opens no page but the TOTP step, and lives five minutes at most.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import msgspec

from ..config import WebSection
from ..db.connect import translated
from .models import User, WebSession

PENDING_LIFETIME = timedelta(minutes=5)
#: last_seen is written at most this often (a page view is not worth a write each time)
TOUCH_EVERY = timedelta(seconds=30)


class SessionInfo(msgspec.Struct, kw_only=True):
    id: int
    created_at: datetime
    last_seen: datetime
    expires_at: datetime
    address: str
    user_agent: str
    current: bool = False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The session's CSRF token: derived from the cookie's token, which the page never sees."""
    return hmac.new(token.encode(), b"fsm csrf", hashlib.sha256).hexdigest()


def create(
    user_id: int, *, mfa_passed: bool, address: str, user_agent: str, now: datetime, settings: WebSection
) -> str:
    """A new session of ``user_id``; returns the token for the cookie (shown nowhere else)."""
    token = secrets.token_urlsafe(32)
    lifetime = (
        timedelta(hours=settings.absolute_timeout_hours)
        if mfa_passed
        else min(PENDING_LIFETIME, timedelta(hours=settings.absolute_timeout_hours))
    )
    with translated("cannot create a session"):
        WebSession.create(
            user=user_id,
            token_hash=token_hash(token),
            created_at=now,
            last_seen=now,
            expires_at=now + lifetime,
            mfa_passed=mfa_passed,
            address=address[:64],
            user_agent=user_agent[:200],
        )
    return token


def lookup(token: str, *, now: datetime, settings: WebSection) -> tuple[WebSession, User] | None:
    """The live session of ``token`` and its (enabled) user; an expired one is deleted."""
    if not token or len(token) > 100:
        return None
    with translated("cannot read a session"):
        row = (
            WebSession.select(WebSession, User)
            .join(User)
            .where(WebSession.token_hash == token_hash(token))
            .first()
        )
        if row is None:
            return None
        idle = timedelta(minutes=settings.idle_timeout_minutes)
        if now >= row.expires_at or now - row.last_seen >= idle or not row.user.enabled:
            WebSession.delete().where(WebSession.id == row.id).execute()
            return None
        if now - row.last_seen >= TOUCH_EVERY:
            WebSession.update(last_seen=now).where(WebSession.id == row.id).execute()
            row.last_seen = now
    return row, row.user


def promote(session_id: int, *, now: datetime, settings: WebSection) -> str:
    """The second factor passed: the pending session is replaced by a full one with a new token."""
    with translated("cannot update a session"), WebSession._meta.database.atomic():
        old = WebSession.get_by_id(session_id)
        WebSession.delete().where(WebSession.id == session_id).execute()
        return create(
            old.user_id,
            mfa_passed=True,
            address=old.address,
            user_agent=old.user_agent,
            now=now,
            settings=settings,
        )


def mark_reauth(session_id: int, now: datetime) -> None:
    with translated("cannot update a session"):
        WebSession.update(reauth_at=now).where(WebSession.id == session_id).execute()


def recently_authenticated(session: WebSession, now: datetime, settings: WebSection) -> bool:
    window = timedelta(minutes=settings.reauth_minutes)
    return session.reauth_at is not None and now - session.reauth_at < window


def end(session_id: int) -> None:
    with translated("cannot end a session"):
        WebSession.delete().where(WebSession.id == session_id).execute()


def end_of_user(user_id: int, session_id: int) -> bool:
    """End ``session_id`` if it is one of ``user_id``'s (a user revokes only their own)."""
    with translated("cannot end a session"):
        return bool(
            WebSession.delete().where((WebSession.id == session_id) & (WebSession.user == user_id)).execute()
        )


def end_all(user_id: int, *, keep: int | None = None) -> int:
    """End every session of ``user_id`` (but ``keep``); returns how many."""
    with translated("cannot end sessions"):
        q = WebSession.delete().where(WebSession.user == user_id)
        if keep is not None:
            q = q.where(WebSession.id != keep)
        return int(q.execute())


def of_user(user_id: int, *, current: int | None, now: datetime, settings: WebSection) -> list[SessionInfo]:
    """The live sessions of ``user_id``, newest first."""
    idle = timedelta(minutes=settings.idle_timeout_minutes)
    with translated("cannot list sessions"):
        rows = (
            WebSession.select()
            .where(
                (WebSession.user == user_id)
                & WebSession.mfa_passed
                & (WebSession.expires_at > now)
                & (WebSession.last_seen > now - idle)
            )
            .order_by(WebSession.created_at.desc())
        )
        return [
            SessionInfo(
                id=s.id,
                created_at=s.created_at,
                last_seen=s.last_seen,
                expires_at=s.expires_at,
                address=s.address,
                user_agent=s.user_agent,
                current=s.id == current,
            )
            for s in rows
        ]


__all__ = [
    "PENDING_LIFETIME",
    "SessionInfo",
    "create",
    "csrf_token",
    "end",
    "end_all",
    "end_of_user",
    "lookup",
    "mark_reauth",
    "of_user",
    "promote",
    "recently_authenticated",
    "token_hash",
]
