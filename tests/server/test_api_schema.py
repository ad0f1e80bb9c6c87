"""Schemathesis against the API in process (the real Starlette app and database, both backends),
with a valid dealer token over the two-dealer fleet: requests generated from the OpenAPI document,
valid ones and invalid ones, never get a server error (5xx), and every answer conforms to the
document (status code, content type, headers, body schema). Bounded: ``EXAMPLES`` generated
requests per endpoint and kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from portal_fleet import DEALERS, build_fleet
from portal_kit import web_ctx
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from fsm_devtools.corpus import ServerKit
from fsm_server.api import endpoints, tokens
from fsm_server.billing.workflow import collect_period
from fsm_server.db.connect import Database
from fsm_server.ingest.pipeline import Pipeline
from fsm_server.registry import Registry
from fsm_server.web import create_app

EXAMPLES = 25  # per endpoint and kind (valid, invalid): 50 requests per endpoint
UNLIMITED = {"api_burst": 10_000, "api_requests_per_minute": 100_000, "api_failed_auth_per_minute": 10_000}


def test_no_server_error_and_answers_conform(
    db: Database, pipeline: Pipeline, registry: Registry, server_kit: ServerKit, tmp_path: Path
) -> None:
    fleet = build_fleet(pipeline, registry, server_kit, tmp_path)
    for customer in DEALERS["North"]:  # periods to read (ids 1 and 2)
        collect_period(db, customer, start=fleet.start, end=datetime.now(UTC) - timedelta(minutes=1))
    _, secret = tokens.create("schemathesis", dealer="North", by=None)
    app = create_app(web_ctx(tmp_path, **UNLIMITED), db=db, base_url="https://testserver")
    # the token through the document's security scheme: negative cases then leave it out or spoil
    # it knowingly (401 expected) instead of having it put back
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {"bearer": {"bearer": secret}}}})
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.definition.raw["operationId"] for op in operations} == {e.operation for e in endpoints()}
    answered: dict[tuple[str, str], set[int]] = {}
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            seen = answered.setdefault((op.label, mode.value), set())
            run(op.as_strategy(generation_mode=mode), seen)
        if op.label == "GET /meters":  # a customer of the token's, so that valid periods are computed
            run(op.as_strategy(query={"customer": "ACME"}), answered[(op.label, "positive")])
    # the token was sent: valid requests were answered, not refused at the door; invalid ones refused
    for (label, mode), codes in answered.items():
        assert codes <= {200, 400, 401, 404}, (label, mode, codes)
        assert codes & ({200} if mode == "positive" else {400, 401}), (label, mode, codes)


def run(cases: st.SearchStrategy[schemathesis.Case], seen: set[int]) -> None:
    """Up to ``EXAMPLES`` generated requests, each checked by every default check."""

    @given(case=cases)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        seen.add(case.call_and_validate().status_code)

    check()
