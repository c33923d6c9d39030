"""Errors as RFC 9457 problem details (``application/problem+json``), one ``type`` per class.

The ``type`` URIs are part of the API: clients branch on them, never on ``detail`` text::

    urn:patchbay:problem:invalid-query        400  QueryError: the filter, projection or limit
    urn:patchbay:problem:invalid-cursor       400  CursorError: tampered or from another query
    urn:patchbay:problem:unauthenticated      401  no key or token, or one that is not valid
    urn:patchbay:problem:forbidden            403  AccessDenied: the consumer may not do this
    urn:patchbay:problem:entity-not-found     404  EntityNotFound
    urn:patchbay:problem:record-not-found     404  RecordNotFound
    urn:patchbay:problem:not-found            404  no such URL
    urn:patchbay:problem:method-not-allowed   405
    urn:patchbay:problem:rate-limited         429  the consumer's rate limit (Retry-After set)
    urn:patchbay:problem:source-error         502  SourceError: a source answered wrongly
    urn:patchbay:problem:invalid-record       502  QuarantinedRecord: the source's row is invalid
    urn:patchbay:problem:source-unavailable   503  SourceUnavailable (Retry-After when known)
    urn:patchbay:problem:internal             500  a bug in patchbay: no detail is given

Every problem carries ``request_id``. ``detail`` is the error's message, which patchbay keeps free
of secrets and (for policies) of masked values; a 500 says nothing but the request id.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from patchbay.core.consumers import AccessDenied, RateLimited
from patchbay.core.errors import (
    CursorError,
    EntityNotFound,
    PatchbayError,
    QuarantinedRecord,
    QueryError,
    RecordNotFound,
    SourceError,
    SourceUnavailable,
)

__all__ = [
    "MEDIA_TYPE",
    "PROBLEM_SCHEMA",
    "TYPES",
    "Problem",
    "Unauthenticated",
    "problem_for",
]

log = logging.getLogger("patchbay.gateway")

MEDIA_TYPE = "application/problem+json"
_BASE = "urn:patchbay:problem:"

#: slug -> (status, title)
TYPES: dict[str, tuple[int, str]] = {
    "invalid-query": (400, "The query cannot be run as asked"),
    "invalid-cursor": (400, "The cursor is not valid for this query"),
    "unauthenticated": (401, "Authentication required"),
    "forbidden": (403, "Not allowed for this consumer"),
    "entity-not-found": (404, "No such entity"),
    "record-not-found": (404, "No such record"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "rate-limited": (429, "Rate limit reached"),
    "source-error": (502, "A source failed"),
    "invalid-record": (502, "A source returned a record that fails validation"),
    "source-unavailable": (503, "A source is unavailable"),
    "internal": (500, "Internal error"),
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "enum": [_BASE + slug for slug in TYPES]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string"},
        "source": {"type": "string"},
        "owner": {"type": ["string", "null"]},
        "retry_after": {"type": "integer"},
    },
}


class Unauthenticated(PatchbayError):
    """No credentials, or credentials that are not valid (the message never says which part)."""


class Problem(Exception):
    """A problem to answer with: raise it, or build one from an error with ``problem_for``."""

    def __init__(
        self,
        slug: str,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.slug = slug
        self.status, self.title = TYPES[slug]
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra
        super().__init__(detail or self.title)

    def response(self, request_id: str, instance: str | None = None) -> Response:
        body: dict[str, Any] = {"type": _BASE + self.slug, "title": self.title,
                                "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body["request_id"] = request_id
        body.update(self.extra)
        return Response(
            json.dumps(body, ensure_ascii=False),
            status_code=self.status,
            media_type=MEDIA_TYPE,
            headers=self.headers,
        )


def _retry_after(exc: BaseException) -> int | None:
    value = getattr(exc, "retry_after", None)
    if isinstance(value, int | float) and value >= 0:
        return max(1, math.ceil(value))
    return None


def problem_for(exc: BaseException) -> Problem:
    """The problem an exception becomes (see the table in the module docstring)."""
    if isinstance(exc, Problem):
        return exc
    retry = _retry_after(exc)
    if isinstance(exc, RateLimited):
        seconds = retry or 1
        return Problem("rate-limited", str(exc), headers={"Retry-After": str(seconds)},
                       retry_after=seconds)
    if isinstance(exc, Unauthenticated):
        return Problem("unauthenticated", str(exc), headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, AccessDenied):
        return Problem("forbidden", str(exc))
    if isinstance(exc, CursorError):
        return Problem("invalid-cursor", str(exc))
    if isinstance(exc, QueryError):
        return Problem("invalid-query", str(exc))
    if isinstance(exc, EntityNotFound):
        return Problem("entity-not-found", str(exc))
    if isinstance(exc, RecordNotFound):
        return Problem("record-not-found", str(exc))
    if isinstance(exc, QuarantinedRecord):
        # The reasons may quote the row's values: only which source and record are named.
        return Problem(
            "invalid-record",
            f"{exc.source}: {exc.entity} {exc.remote_id or '(no id)'} fails validation; "
            "it is kept in quarantine (patchbay quarantine list)",
            source=exc.source,
        )
    if isinstance(exc, SourceUnavailable):
        headers = {"Retry-After": str(retry)} if retry is not None else None
        return Problem("source-unavailable", str(exc), headers=headers, source=exc.source,
                       owner=exc.owner)
    if isinstance(exc, SourceError):
        return Problem("source-error", str(exc), source=exc.source, owner=exc.owner)
    return Problem("internal", None)
