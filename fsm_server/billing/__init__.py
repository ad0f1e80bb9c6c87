"""Meters and billing: periods per customer, start/end meters with the envelope each number came
from, flags, corrections, approval and the signed export (docs/billing.md)."""
