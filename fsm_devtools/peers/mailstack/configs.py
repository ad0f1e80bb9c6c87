"""The mail stack's config files, rendered from the templates beside this module (package data):
Dovecot's ``dovecot.conf`` and ``users``, Postfix's ``main.cf``, ``master.cf`` and ``vmailbox``.
Each template reads the stack (``stack``: its paths and ports), the test CA (``ca``: its files),
the users (``users``) and where their homes are (``home``)."""

from __future__ import annotations

from importlib import resources

import jinja2

HOST = "127.0.0.1"
DOMAIN = "fsm.test"
MAIL_UID = MAIL_GID = 8  # Debian's system user `mail`: mail is stored as it, no account to create

_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True
)


def render(name: str, **values: object) -> str:
    """The template ``templates/<name>`` filled in with ``values``."""
    text = (resources.files(__package__) / "templates" / name).read_text()
    return _ENV.from_string(text).render(
        host=HOST, domain=DOMAIN, mail_uid=MAIL_UID, mail_gid=MAIL_GID, **values
    )


__all__ = ["DOMAIN", "HOST", "MAIL_GID", "MAIL_UID", "render"]
