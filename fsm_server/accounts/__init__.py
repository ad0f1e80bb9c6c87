"""Portal accounts: users and roles, passwords, the second factor, sessions and login throttling.

The core API the CLI (`fsm-server users`) and the web portal (``fsm_server.web``) both call.
"""

from .principal import ROLES, TOTP_ROLES, Principal, Role

__all__ = ["ROLES", "TOTP_ROLES", "Principal", "Role"]
