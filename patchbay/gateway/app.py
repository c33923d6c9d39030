"""The gateway app factory: ``create_app(hub)`` is an ASGI app serving the Hub over HTTP.

Open without credentials: ``/healthz`` (no data), ``/openapi.json`` and ``/docs`` (the API's
description, no data). Everything else needs an API key or a JWT (:mod:`patchbay.gateway.auth`);
``/metrics`` additionally needs a consumer listed in ``GatewaySettings.metrics_consumers``.

Around every request (:class:`RequestContext`): a request id (``X-Request-ID`` when the caller
sends a sane one, else a new one) in the response, the problem body, every log record (through
:class:`RequestIdFilter`) and the Hub's audit record; an OpenTelemetry span when a tracer
provider is configured; the request counters and latency histogram; any error as a problem.

Process state: the app keeps nothing a second worker would need to agree on. Rate limits, the
token cache, breakers and the audit log live in the Hub, shared through Redis and PostgreSQL when
those are configured; API keys are read from the ``state`` database, and a key confirmed live is
remembered for one second (a revoked key stops working at once on the worker that revoked it, and
within a second on every other; see :mod:`patchbay.gateway.keys`). Metrics are per worker (see
:mod:`patchbay.gateway.metrics`).
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import json
import logging
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from opentelemetry import trace
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patchbay.config import StoreOpener, load_config
from patchbay.core.errors import PatchbayError
from patchbay.core.gcpause import relaxed_gc
from patchbay.gateway import openapi
from patchbay.gateway.auth import JwtSettings, JwtVerifier, authenticate
from patchbay.gateway.keys import ApiKeys
from patchbay.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from patchbay.gateway.problems import Problem, problem_for
from patchbay.gateway.routes import build_router
from patchbay.hub import Hub

__all__ = [
    "CONFIG_ENV",
    "SETTINGS_ENV",
    "Gateway",
    "GatewaySettings",
    "RequestIdFilter",
    "app_from_env",
    "create_app",
    "request_id",
]

log = logging.getLogger("patchbay.gateway")

#: ``patchbay serve`` passes the config path and the settings to each worker through these.
CONFIG_ENV = "PATCHBAY_CONFIG"
SETTINGS_ENV = "PATCHBAY_GATEWAY_SETTINGS"

_REQUEST_ID = contextvars.ContextVar("patchbay_request_id", default="-")
_SANE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id() -> str:
    """The id of the request being served in this context ("-" outside requests)."""
    return _REQUEST_ID.get()


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` to every log record, for a ``%(request_id)s`` format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _REQUEST_ID.get()
        return True


class GatewaySettings(BaseModel):
    """Options of a gateway app (what a ``gateway:`` block of patchbay.yaml would hold)."""

    model_config = ConfigDict(extra="forbid")

    default_limit: int = Field(default=100, ge=1)
    max_limit: int = Field(default=1000, ge=1)  # a larger requested limit is capped to this
    metrics_consumers: list[str] = Field(default_factory=list)  # may read /metrics
    jwt: JwtSettings | None = None


class Gateway:
    """What the routes share: the Hub, the key store, the JWT verifier, metrics, the tracer."""

    def __init__(
        self,
        hub: Hub,
        settings: GatewaySettings,
        keys: ApiKeys | None,
        metrics: GatewayMetrics,
        tracer: trace.Tracer,
    ) -> None:
        self.hub = hub
        self.settings = settings
        self.keys = keys
        self.jwt = JwtVerifier(settings.jwt) if settings.jwt else None
        self.metrics = metrics
        self.tracer = tracer
        self.catalogs: dict[str, list[dict[str, Any]]] = {}  # consumer -> its catalog, as JSON


def _default_keys(hub: Hub) -> ApiKeys | None:
    spec = hub.config.spec
    if spec.secret_key is None:
        return None  # API keys need secret_key; JWTs still work
    opener = StoreOpener(spec, base_dir=hub.config.base_dir, file=hub.config.file)
    return ApiKeys(hub.state_engine, opener.keys("secret_key"))


class RequestContext:
    """Request id, span, metrics, one log line, and errors as problems, around every request."""

    def __init__(self, app: ASGIApp, gateway: Gateway) -> None:
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, b"x-request-id")
        rid = given if given and _SANE_ID.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        # For apps mounted beside /v1 (their scope["app"] is themselves): see auth.authenticate.
        state["patchbay_gateway"] = self.gateway
        token = _REQUEST_ID.set(rid)
        started = time.perf_counter()
        status = 500
        response_started = False
        method = scope["method"]

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        tracer = self.gateway.tracer
        # A page's records live until the response is sent: with the default thresholds the
        # cyclic GC walked them about once per request (a tenth of its time). While requests
        # are in flight it runs less often (patchbay.core.gcpause); records hold no cycles.
        with relaxed_gc(), tracer.start_as_current_span(
            f"{method} {scope['path']}", kind=trace.SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if response_started:
                    raise
                problem = problem_for(exc)
                if problem.status >= 500:
                    log.exception("%s %s failed", method, scope["path"])
                await problem.response(rid, scope["path"])(scope, receive, send_with_id)
            finally:
                route = _route(scope)
                elapsed = time.perf_counter() - started
                self.gateway.metrics.observe_request(method, route, status, elapsed)
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                span.set_attribute("patchbay.request_id", rid)
                consumer = scope["state"].get("consumer")
                if consumer:
                    span.set_attribute("patchbay.consumer", consumer)
                # The path only: a query string may hold filter values a policy masks.
                log.info(
                    "%s %s %s %.1fms",
                    method,
                    scope["path"],
                    status,
                    elapsed * 1000,
                    extra={"request_id": rid, "consumer": consumer, "status": status},
                )
                _REQUEST_ID.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "(unmatched)"


def create_app(
    hub: Hub,
    settings: GatewaySettings | None = None,
    *,
    keys: ApiKeys | None = None,
    tracer_provider: trace.TracerProvider | None = None,
    registry: CollectorRegistry | None = None,
    close_hub: bool = False,
    freeze_gc: bool = False,
) -> FastAPI:
    """The gateway for ``hub``. ``keys``: the API key store (default: the ``state`` database,
    hashed with ``secret_key``). ``tracer_provider``: spans go there (default: the global one,
    which records nothing until one is configured). ``registry``: the metrics' registry (default:
    a new one per app). ``close_hub``: close the Hub when the app shuts down. ``freeze_gc``: at
    startup, move every object built so far (modules, models, routes, the Hub) out of the cyclic
    GC's reach (``gc.freeze``), so its full collections stop walking them again and again; for a
    process that serves this app and nothing else (``patchbay serve``)."""
    settings = settings or GatewaySettings()
    provider = tracer_provider or trace.get_tracer_provider()
    if tracer_provider is not None:
        hub.tracer = tracer_provider.get_tracer("patchbay.hub")  # source reads under requests
    gateway = Gateway(
        hub,
        settings,
        keys if keys is not None else _default_keys(hub),
        GatewayMetrics(hub.events, registry),
        provider.get_tracer("patchbay.gateway"),
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if freeze_gc:
            gc.collect()  # garbage of the startup is freed, not frozen
            gc.freeze()
        try:
            yield
        finally:
            if close_hub:
                await hub.close()

    app = FastAPI(
        title="patchbay",
        summary="Canonical records from every source, under each consumer's policy.",
        version="1",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.gateway = gateway
    models = [hub.config.entities.get(name) for name in hub.entities()]
    app.include_router(build_router(models))

    @app.get(
        "/healthz",
        summary="The gateway process answers (no data, no credentials needed)",
        openapi_extra={"security": []},
        responses={200: {"description": "Alive", "content": {"application/json": {"schema": {
            "type": "object", "properties": {"status": {"type": "string"}}}}}}},
    )
    async def healthz() -> Response:
        return Response('{"status":"ok"}', media_type="application/json")

    @app.get(
        "/metrics",
        summary="Prometheus metrics (needs a consumer listed in metrics_consumers)",
        responses={
            200: {"description": "Metrics", "content": {CONTENT_TYPE: {"schema": {
                "type": "string"}}}},
            **openapi.problem_responses(401, 403),
        },
    )
    async def metrics(request: Request) -> Response:
        principal = await authenticate(request)
        request.scope["state"]["consumer"] = principal.consumer
        if principal.consumer not in settings.metrics_consumers or not (
            principal.may_read_metrics
        ):
            raise Problem("forbidden", f"consumer {principal.consumer!r} may not read metrics")
        return Response(gateway.metrics.render(), media_type=CONTENT_TYPE)

    # --- other front doors mount here -------------------------------------------------------
    # MCP over streamable HTTP at /mcp (patchbay.ai.mcp): stateless, authenticated like the
    # REST API by patchbay.gateway.auth.authenticate (no credential: 401).
    from patchbay.ai.mcp import mount_mcp

    mount_mcp(app, hub, authenticate)
    # ----------------------------------------------------------------------------------------

    async def problem_handler(request: Request, exc: Exception) -> Response:
        problem = problem_for(exc)
        if problem.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, problem.detail)
        return problem.response(_rid(request), request.url.path)

    async def http_handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "invalid-query")
        return Problem(slug, None, headers=exc.headers).response(_rid(request), request.url.path)

    async def validation_handler(request: Request, exc: Exception) -> Response:
        return Problem("invalid-query", "the request is malformed").response(
            _rid(request), request.url.path
        )

    app.add_exception_handler(PatchbayError, problem_handler)
    app.add_exception_handler(Problem, problem_handler)
    app.add_exception_handler(StarletteHTTPException, http_handler)
    app.add_exception_handler(RequestValidationError, validation_handler)
    app.add_middleware(RequestContext, gateway=gateway)

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description="REST gateway of patchbay. Errors are RFC 9457 problem details; "
                "every response carries X-Request-ID.",
                routes=app.routes,
            )
            app.openapi_schema = openapi.finish(document, models)
        return app.openapi_schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app


def _rid(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


def app_from_env() -> FastAPI:
    """The app of one ``patchbay serve`` worker: config path and settings from the environment
    (``uvicorn patchbay.gateway.app:app_from_env --factory``)."""
    path = os.environ.get(CONFIG_ENV, "patchbay.yaml")
    raw = os.environ.get(SETTINGS_ENV)
    settings = GatewaySettings.model_validate(json.loads(raw)) if raw else GatewaySettings()
    return create_app(Hub(load_config(path)), settings, close_hub=True, freeze_gc=True)
