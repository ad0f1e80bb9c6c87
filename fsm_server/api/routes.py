"""The API over HTTP: ``GET /api/v1/...`` with ``Authorization: Bearer TOKEN``, JSON answers.

Each request, in order: only GET (405 otherwise); an address with too many failed attempts is
answered 429 before its token is looked at; no valid token (none, unknown, revoked, or only the
portal's session cookie) is 401 and counts as a failed attempt; a token over its rate is 429; the
parameters are parsed into the endpoint's Structs (400 naming the bad one); the read runs under the
token's scope (``Scoped``), so another tenant's object is 404 like a missing one.

The portal's session cookie is never read here (the session middleware leaves ``/api/`` alone),
so there is nothing for a cross-site request to ride on and no CSRF token to ask for.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..accounts.throttle import address_key
from ..config import ReportsSection, WebSection
from ..errors import ApiError, NotFound, ReportError
from ..scoping import Scoped
from ..web.middleware import COOKIE
from ..web.render import client_address
from . import openapi
from .endpoint import Call, Endpoint
from .ratelimit import RateLimiter
from .registry import endpoints as all_endpoints
from .schemas import Problem
from .tokens import TokenViewer, authenticate

PREFIX = openapi.PREFIX
JSON = "application/json"
REALM = 'Bearer realm="fsm api"'
READ = ("GET", "HEAD")
ALLOW = {"Allow": "GET, HEAD"}
#: Every route takes every method, so that the others get the API's 405 rather than the portal's page.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE")


def problem(status: int, error: str, hint: str = "", headers: dict[str, str] | None = None) -> Response:
    return Response(msgspec.json.encode(Problem(error=error, hint=hint)), status, headers, JSON)


def _too_many(wait: float, what: str) -> Response:
    seconds = max(1, math.ceil(wait))
    return problem(
        429, f"too many requests {what}", f"retry after {seconds} s", {"Retry-After": str(seconds)}
    )


def _params(struct: type[msgspec.Struct] | None, values: dict[str, str], where: str) -> object:
    if struct is None:
        if values:
            raise ApiError(
                f"this endpoint takes no {where} parameters; got {', '.join(sorted(values))[:200]}"
            )
        return None
    try:
        return msgspec.convert(values, struct, strict=False)
    except msgspec.ValidationError as exc:
        raise ApiError(
            f"bad {where} parameter: {str(exc)[:300]}", hint="see /api/v1/openapi.json for the parameters"
        ) from None


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Api:
    """The API's routes and rate limits (one per portal app)."""

    def __init__(
        self,
        web: WebSection,
        *,
        endpoints: Sequence[Endpoint] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = list(all_endpoints() if endpoints is None else endpoints)
        self.per_token = RateLimiter(per_minute=web.api_requests_per_minute, burst=web.api_burst, clock=clock)
        self.failures = RateLimiter(
            per_minute=web.api_failed_auth_per_minute, burst=web.api_failed_auth_per_minute, clock=clock
        )
        self._document = msgspec.json.encode(openapi.document(self.endpoints))

    def _who(self, request: Request, address: str) -> TokenViewer | Response:
        token = _bearer(request)
        viewer = authenticate(token, address=address) if token else None
        if viewer is not None:
            return viewer
        self.failures.take(address_key(address))
        if token:
            error, hint = "the token is unknown or revoked", "make a new one on the portal's API tokens page"
        elif COOKIE in request.cookies:
            error = "the API does not take the portal's session cookie"
            hint = "send Authorization: Bearer TOKEN (an API token from the portal's API tokens page)"
        else:
            error, hint = "no API token", "send Authorization: Bearer TOKEN"
        return problem(401, error, hint, {"WWW-Authenticate": REALM})

    def handle(self, request: Request, endpoint: Endpoint) -> Response:
        if request.method not in READ:
            return problem(405, f"{request.method} is not allowed: the API is read-only", headers=ALLOW)
        address = client_address(request)
        wait = self.failures.wait(address_key(address))
        if wait > 0:
            return _too_many(wait, "without a valid token from this address")
        who = self._who(request, address)
        if isinstance(who, Response):
            return who
        wait = self.per_token.take(f"token:{who.token_id}")
        if wait > 0:
            return _too_many(wait, "for this token")
        ctx = getattr(request.app.state, "ctx", None)
        try:
            call = Call(
                scoped=Scoped.of(who),
                query=_params(endpoint.query, dict(request.query_params), "query"),
                path=_params(endpoint.path_params, dict(request.path_params), "path"),
                now=datetime.now(UTC),
                settings=ctx.config.reports if ctx is not None else ReportsSection(),
                db=request.app.state.db,
            )
            answer = endpoint.read(call)
        except NotFound as exc:
            return problem(404, exc.message, exc.hint or "")
        except (ApiError, ReportError) as exc:
            return problem(400, exc.message, exc.hint or "")
        return Response(msgspec.json.encode(answer), media_type=JSON)

    def openapi(self, request: Request) -> Response:
        if request.method not in READ:
            return problem(405, f"{request.method} is not allowed", headers=ALLOW)
        return Response(self._document, media_type=JSON)

    def not_found(self, request: Request) -> Response:
        return problem(404, f"no API endpoint {request.url.path[:200]}", "see /api/v1/openapi.json")

    def routes(self) -> list[Route]:
        out = [Route(f"{PREFIX}/openapi.json", self.openapi, methods=METHODS)]
        for e in self.endpoints:
            out.append(Route(PREFIX + e.path, self._endpoint(e), methods=METHODS, name=e.operation))
        out.append(Route(PREFIX + "/{rest:path}", self.not_found, methods=METHODS))
        return out

    def _endpoint(self, endpoint: Endpoint) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            return self.handle(request, endpoint)

        run.__name__ = endpoint.operation
        return run


def routes(web: WebSection) -> list[Route]:
    """The API's routes for the portal app (``create_app`` adds them)."""
    return Api(web).routes()


__all__ = ["JSON", "PREFIX", "Api", "problem", "routes"]
