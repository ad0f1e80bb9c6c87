"""Supply orders: proposals from the forecast and the levels, proposed -> approved -> ordered ->
delivered (or ignored), closed by the replacement ingest detects (docs/orders.md)."""
