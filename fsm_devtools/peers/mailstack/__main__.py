"""``python -m fsm_devtools.peers.mailstack start|stop|status|wipe [--offset N] [--dir DIR]``
(what ``scripts/mailstack`` runs): the mail stack by hand."""

from __future__ import annotations

import sys

from .. import procs
from .stack import OFFSET_ENV, MailStack, offset_from_env


def started(stack: MailStack) -> list[str]:
    """What a start adds to the status: the CA file to give clients, and the logins."""
    return [
        f"ca file     {stack.ca_file}",
        "users       " + ", ".join(f"{u.address} ({u.password})" for u in stack.users.values()),
    ]


def main(argv: list[str] | None = None) -> int:
    about = "Private Postfix + Dovecot on 127.0.0.1 for fsm's tests and demo."
    default = f"${OFFSET_ENV} or 0"
    return procs.by_hand(
        argv, MailStack, offset_from_env, description=about, offset_help=default, started=started
    )


if __name__ == "__main__":
    sys.exit(main())
