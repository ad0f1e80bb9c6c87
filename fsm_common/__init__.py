"""Plumbing both programs run on, in one place: sending mail over SMTP with its TLS context, capped
backoff with jitter, signal capture for the daemons, the command-line group with its error
rendering, config-file loading and the context every command gets (``context.ProgramContext``).

It sits between the wire contract and the programs: ``fsm_protocol`` <- ``fsm_common`` <-
``fsm_client``, ``fsm_server`` (``tests/test_layers.py`` holds every module to that). It is not part
of ``fsm_protocol`` because the contract does no network I/O and must read alone to someone
implementing the format; it is not in either program because the other one needs it too.
"""
