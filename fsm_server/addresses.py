"""E-mail addresses typed into the portal (report recipients, rule recipients, subscriptions).

>>> from fsm_server.errors import ReportError
>>> parse_addresses("a@x.example, b@x.example a@x.example", error=ReportError)
['a@x.example', 'b@x.example']
"""

from __future__ import annotations

import re

from .errors import ServerError

MAX_ADDRESSES = 20
#: an address as a mail relay takes it: local@domain, no spaces, quotes or angle brackets
ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
)


def parse_addresses(
    text: str, *, error: type[ServerError], limit: int = MAX_ADDRESSES, required: bool = True
) -> list[str]:
    """Addresses separated by commas, spaces or lines, each once; ``error`` naming a bad one."""
    found = [a for a in re.split(r"[\s,;]+", text.strip()) if a]
    if not found and required:
        raise error("at least one e-mail address is needed", hint="e.g. billing@example.com")
    if len(found) > limit:
        raise error(f"{len(found)} addresses are more than {limit}", hint="use a mailing list address")
    for address in found:
        if not ADDRESS.match(address):
            raise error(f"{address[:100]!r} is not an e-mail address", hint="e.g. billing@example.com")
    return list(dict.fromkeys(found))


__all__ = ["ADDRESS", "MAX_ADDRESSES", "parse_addresses"]
