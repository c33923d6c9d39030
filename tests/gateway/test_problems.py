"""Each error class of patchbay becomes one problem type and status (the table in
patchbay.gateway.problems), and no detail of a 500 or of a quarantined row leaves."""

from __future__ import annotations

import json

import pytest

from patchbay.core.consumers import AccessDenied, RateLimited
from patchbay.core.errors import (
    CursorError,
    EntityNotFound,
    QuarantinedRecord,
    QueryError,
    RecordNotFound,
    SourceError,
    SourceUnavailable,
)
from patchbay.gateway.problems import Unauthenticated, problem_for


@pytest.mark.parametrize(
    ("error", "slug", "status"),
    [
        (QueryError("bad"), "invalid-query", 400),
        (CursorError("tampered"), "invalid-cursor", 400),
        (Unauthenticated("no"), "unauthenticated", 401),
        (AccessDenied("no"), "forbidden", 403),
        (EntityNotFound("x", ["contact"]), "entity-not-found", 404),
        (RecordNotFound("contact", "erp:1"), "record-not-found", 404),
        (RateLimited("bot", 2.2), "rate-limited", 429),
        (SourceError("erp", "HTTP 500", owner="ops@acme.example"), "source-error", 502),
        (QuarantinedRecord("erp", "contact", "7", ["email: 'ann@x' is not valid"]),
         "invalid-record", 502),
        (SourceUnavailable("erp", "refused", owner="ops@acme.example"), "source-unavailable",
         503),
        (RuntimeError("secret internals"), "internal", 500),
    ],
)
def test_error_classes_map_to_problem_types(error: Exception, slug: str, status: int) -> None:
    problem = problem_for(error)
    response = problem.response("rid-1", "/v1/x")
    body = json.loads(bytes(response.body))
    assert response.status_code == status
    assert response.media_type == "application/problem+json"
    assert body["type"] == f"urn:patchbay:problem:{slug}"
    assert body["status"] == status and body["request_id"] == "rid-1"
    assert "secret internals" not in json.dumps(body)
    assert "ann@x" not in json.dumps(body)  # quarantine reasons may quote values
    if status == 429:
        assert response.headers["retry-after"] == "3"
    if slug.startswith("source"):
        assert body["source"] == "erp" and body["owner"] == "ops@acme.example"
