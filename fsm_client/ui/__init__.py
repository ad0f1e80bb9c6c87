"""The client's local web page (`fsm-client ui`): loopback only, behind a password."""
