"""Tryton's JSON-RPC: its tagged values, the request envelope, and what its answers mean.

JSON has no dates or decimals, so Tryton tags them both ways (``{"__class__": "datetime",
"year": …}``, ``{"__class__": "Decimal", "decimal": "29.50"}``); they are decoded into Python
values here, and encoded back in domains. A body with ``id``, ``method`` and ``params`` gets the
envelope answer: HTTP 200 with ``result`` or ``error`` (a Python exception's text, or a Tryton
exception's class name and arguments).

Read-only methods carry an ``Idempotency-Key`` header: every call is a POST, and the resilience
layer retries a POST only with one. Anything that writes never does (nor the login, which the
auth broker's ``tryton_session`` scheme sends).
"""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import httpx

from patchbay.auth import AuthError
from patchbay.core.errors import SourceError, SourceUnavailable

__all__ = ["Rpc", "decode", "encode"]

# Methods that change nothing on the server: safe to send again after a transient failure.
_READ_ONLY = frozenset(
    {"search_read", "read", "search", "search_count", "fields_get", "get_preferences",
     "version"}
)
_TRYTON_EXCEPTIONS = frozenset(
    {"UserError", "UserWarning", "AccessError", "LoginException", "ConcurrencyException",
     "RateLimitException", "MissingDependenciesException"}
)


def encode(value: Any) -> Any:
    """``json.dumps`` default: Python values as Tryton's tagged objects."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:  # Tryton's datetimes are naive UTC
            value = value.astimezone(UTC).replace(tzinfo=None)
        return {"__class__": "datetime", "year": value.year, "month": value.month,
                "day": value.day, "hour": value.hour, "minute": value.minute,
                "second": value.second, "microsecond": value.microsecond}
    if isinstance(value, date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, time):
        return {"__class__": "time", "hour": value.hour, "minute": value.minute,
                "second": value.second, "microsecond": value.microsecond}
    if isinstance(value, timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, bytes):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode()}
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"cannot send a {type(value).__name__} to Tryton")


def decode(obj: dict[str, Any]) -> Any:
    """``json.loads`` object hook: Tryton's tagged objects as Python values."""
    kind = obj.get("__class__")
    if kind is None:
        return obj
    try:
        if kind == "datetime":
            return datetime(obj["year"], obj["month"], obj["day"], obj.get("hour", 0),
                            obj.get("minute", 0), obj.get("second", 0),
                            obj.get("microsecond", 0))
        if kind == "date":
            return date(obj["year"], obj["month"], obj["day"])
        if kind == "time":
            return time(obj.get("hour", 0), obj.get("minute", 0), obj.get("second", 0),
                        obj.get("microsecond", 0))
        if kind == "timedelta":
            return timedelta(seconds=obj["seconds"])
        if kind == "Decimal":
            return Decimal(obj["decimal"])
        if kind == "bytes":
            return base64.b64decode(obj["base64"])
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return obj  # kept as sent: the mapping reports a value it cannot use
    return obj


class Rpc:
    """Calls on one Tryton database through the Hub's client, which carries the source's auth
    (``tryton_session``: the login, the session header, one new login on a 401)."""

    def __init__(self, client: httpx.AsyncClient, url: str, *,
                 source: str, owner: str | None) -> None:
        self.client = client
        self.url = url
        self.source = source
        self.owner = owner
        self._ids = itertools.count(1)

    async def call(self, method: str, params: list[Any]) -> Any:
        response = await self.post(method, params)
        if response.status_code == 401:
            if "Authorization" not in response.request.headers:
                message = (f"{method}: Tryton answered 401 to a call without credentials: give "
                           "the source an auth block, auth: {scheme: tryton_session, username: "
                           "…, password: \"env:…\"}")
            else:
                message = (f"{method}: Tryton refused the session even right after a new "
                           "login: check that the user may use this database")
            raise AuthError(self.source, message, owner=self.owner, status_code=401)
        return self.result(method, response)

    async def post(self, method: str, params: list[Any]) -> httpx.Response:
        body = json.dumps({"id": next(self._ids), "method": method, "params": params},
                          default=encode, separators=(",", ":"))
        headers = {"Content-Type": "application/json"}
        if method.rsplit(".", 1)[-1] in _READ_ONLY:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        try:
            return await self.client.post(self.url, content=body, headers=headers)
        except SourceError:
            raise
        except httpx.HTTPError as exc:
            raise SourceUnavailable(self.source, f"{method}: {type(exc).__name__}: {exc}",
                                    owner=self.owner) from None

    def result(self, method: str, response: httpx.Response) -> Any:
        """The ``result`` of an answer, or a SourceError saying what went wrong and where."""
        status = response.status_code
        if status != 200:
            raise self.status_error(method, response)
        try:
            body = json.loads(response.text, object_hook=decode)
        except ValueError:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise SourceError(self.source, f"{method}: Tryton answered {kind}, not JSON",
                              owner=self.owner) from None
        if not isinstance(body, Mapping) or ("result" not in body and "error" not in body):
            raise SourceError(self.source, f"{method}: not a JSON-RPC answer (no result or "
                              "error): check settings.url and rpc_path", owner=self.owner)
        if body.get("error") is not None:
            raise SourceError(self.source, f"{method}: Tryton answered an error: "
                              f"{error_text(body['error'])}", owner=self.owner)
        return body["result"]

    def status_error(self, method: str, response: httpx.Response) -> SourceError:
        status = response.status_code
        message = f"{method}: Tryton answered {status} {response.reason_phrase}".rstrip()
        if status == 429 or status >= 500:
            return SourceUnavailable(self.source, message, owner=self.owner)
        if status == 403:
            message += ": the method is not exposed over RPC, or the user lacks access to it"
        elif status == 404:
            message += ": no such database at settings.url (check database and url)"
        elif status in (405, 422):
            message += ": check rpc_path (Tryton before 8.0: '/{database}/')"
        return SourceError(self.source, message, owner=self.owner)


def error_text(error: Any) -> str:
    """A Tryton error as one line: ``UserError: message`` or the exception's text."""
    if isinstance(error, list) and error:
        head = str(error[0])
        args = error[1] if len(error) > 1 else None
        if head in _TRYTON_EXCEPTIONS and isinstance(args, list) and args:
            return f"{head}: {args[0]}"
        if head.startswith("'") and head.endswith("'"):  # a KeyError: a name it does not know
            return f"unknown field or model {head}"
        return head.splitlines()[0] if head else "(no message)"
    return str(error)[:300]
