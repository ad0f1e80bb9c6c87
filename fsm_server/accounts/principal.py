"""Who is logged in, as every page sees it."""

from __future__ import annotations

from typing import Literal

import msgspec

Role = Literal["admin", "dealer", "customer"]
ROLES: tuple[Role, ...] = ("admin", "dealer", "customer")
#: roles that must have a second factor before their first session
TOTP_ROLES: tuple[Role, ...] = ("admin", "dealer")


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The user of a request: ``dealer`` is the dealer a dealer user works for, ``customers`` the
    customers of a customer user (empty for the other roles)."""

    user_id: int
    name: str
    role: Role
    dealer: str | None = None
    customers: tuple[str, ...] = ()


__all__ = ["ROLES", "TOTP_ROLES", "Principal", "Role"]
