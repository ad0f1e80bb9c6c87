"""The API's resources: each module's ``ENDPOINTS``, in the order the OpenAPI document lists them.
A new resource is a module with ``ENDPOINTS`` and one line in ``RESOURCES``."""

from __future__ import annotations

from types import ModuleType

from . import alerts, devices, meters, orders, supplies
from .endpoint import Endpoint

RESOURCES: tuple[ModuleType, ...] = (devices, supplies, alerts, meters, orders)


def endpoints() -> list[Endpoint]:
    return [e for module in RESOURCES for e in module.ENDPOINTS]


__all__ = ["RESOURCES", "endpoints"]
