"""A fault-injecting HTTP server on 127.0.0.1 and a fake clock, for the resilience tests.

The server is a real uvicorn server (in a thread, on a random free port) running a Starlette app.
Each test sets ``server.behaviour``: a function from the request that arrived (a ``Hit``) to a
``Reply`` (a status with headers, a delay, or a connection dropped mid-response). Every request
is recorded with its server-side monotonic arrival time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send


@dataclass
class Hit:
    arrival: float  # server-side time.monotonic()
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    status: int = 0  # what the server answered (0: dropped)
    retry_after: float | None = None  # seconds, when the answer carried Retry-After

    @property
    def client_id(self) -> str | None:
        return self.headers.get("x-client-request-id")


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok": true}'
    delay: float = 0.0
    drop: bool = False  # send the headers and part of the body, then close the connection
    retry_after: float | None = None  # recorded with the hit, for assertions


class DroppedResponse(Response):
    """Promise 1,000 bytes, send a few, then fail: uvicorn closes the socket mid-response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", b"1000"), (b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ConnectionAbortedError("fault server drops this connection on purpose")


class FaultServer:
    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.behaviour: Callable[[Hit], Reply] = lambda hit: Reply()
        self.url = ""
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self.endpoint,
                    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                )
            ]
        )

    async def endpoint(self, request: Request) -> Response:
        arrival = time.monotonic()
        body = await request.body()
        hit = Hit(
            arrival,
            request.method,
            request.url.path,
            request.url.query,
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        with self.lock:
            reply = self.behaviour(hit)
            hit.status = 0 if reply.drop else reply.status
            hit.retry_after = reply.retry_after
            self.hits.append(hit)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.drop:
            return DroppedResponse()
        return Response(reply.body, status_code=reply.status, headers=reply.headers)

    def reset(self) -> None:
        with self.lock:
            self.hits.clear()
            self.behaviour = lambda hit: Reply()

    def count(self) -> int:
        with self.lock:
            return len(self.hits)


class FakeClock:
    """Monotonic and wall time that move only when slept on or advanced; sleeps are recorded."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.epoch = datetime(2025, 1, 1, tzinfo=UTC)  # whole seconds: HTTP-dates stay exact
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.t += seconds
