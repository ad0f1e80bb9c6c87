"""fsm_protocol."""
