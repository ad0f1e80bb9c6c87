"""What an API endpoint is: a path, the Structs of its parameters and answer, and a read function
given the caller's scope. Resource modules (``devices``, ``supplies`` ...) each list theirs in
``ENDPOINTS``; ``registry.RESOURCES`` names the modules, so a new resource is one module and one
line there. The HTTP layer (``routes``) and the OpenAPI document (``openapi``) both walk that list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from ..config import ReportsSection
from ..db.connect import Database
from ..scoping import Scoped


@dataclass(frozen=True)
class Call:
    """One API request as a read function sees it: the token's scope and the parsed parameters."""

    scoped: Scoped
    query: Any  # an instance of the endpoint's ``query`` Struct
    path: Any  # an instance of its ``path_params`` Struct
    now: datetime
    settings: ReportsSection
    db: Database


@dataclass(frozen=True)
class Endpoint:
    """``GET /api/v1{path}``; ``path`` in OpenAPI's syntax (``/devices/{device_id}``)."""

    path: str
    operation: str  # the OpenAPI operationId
    summary: str
    tag: str
    answer: type[msgspec.Struct]
    read: Callable[[Call], msgspec.Struct]
    query: type[msgspec.Struct] | None = None
    path_params: type[msgspec.Struct] | None = None
    description: str = ""


__all__ = ["Call", "Endpoint"]
