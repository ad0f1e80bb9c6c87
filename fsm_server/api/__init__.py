"""The read-only JSON API (``/api/v1/``, docs/api.md): devices, supplies, alerts, meters and
billing periods for ERPs and scripts, under bearer tokens scoped to a dealer or a customer."""

from .endpoint import Call, Endpoint
from .registry import RESOURCES, endpoints

__all__ = ["RESOURCES", "Call", "Endpoint", "endpoints"]
