"""fsm_client."""
