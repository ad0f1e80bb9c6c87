"""fsm_server."""
