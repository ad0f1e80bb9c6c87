"""A private Postfix + Dovecot mail stack on loopback, for tests, the demo and benchmarks.

``stack.py`` holds the controller (``MailStack``), ``configs.py`` renders the daemons' config
files from ``templates/``, ``__main__.py`` is the command line (``scripts/mailstack``). The test
CA is ``fsm_devtools.peers.ca``, shared with the HTTPS peers.
"""

from .configs import DOMAIN, HOST
from .stack import (
    FOLDERS,
    IMAP_PORT,
    IMAPS_PORT,
    OFFSET_ENV,
    SMTP_PORT,
    SMTPS_PORT,
    SUBMISSION_PORT,
    USERS,
    MailStack,
    MailStackError,
    MailStackStatus,
    MailUser,
    default_state_dir,
    offset_from_env,
)

__all__ = [
    "DOMAIN",
    "FOLDERS",
    "HOST",
    "IMAPS_PORT",
    "IMAP_PORT",
    "OFFSET_ENV",
    "SMTPS_PORT",
    "SMTP_PORT",
    "SUBMISSION_PORT",
    "USERS",
    "MailStack",
    "MailStackError",
    "MailStackStatus",
    "MailUser",
    "default_state_dir",
    "offset_from_env",
]
