"""The browser portal: Starlette, server-rendered Jinja2 pages, htmx; accounts, sessions, CSRF and
security headers here, pages in ``fsm_server.web.pages`` (docs/portal.md)."""

from ..accounts.principal import Principal, Role
from .app import audit_event, create_app, public_url
from .render import NavItem, client_address, field, form_data, principal_of, render, require, scoped_of

__all__ = [
    "NavItem",
    "Principal",
    "Role",
    "audit_event",
    "client_address",
    "create_app",
    "field",
    "form_data",
    "principal_of",
    "public_url",
    "render",
    "require",
    "scoped_of",
]
