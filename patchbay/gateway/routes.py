"""The ``/v1`` routes: the catalog, records (list, get, query), sources and their health.

Every route authenticates the caller (:func:`patchbay.gateway.auth.authenticate`) and hands the
work to the Hub as that consumer, with ``via="rest"`` and the request id: the Hub enforces the
policy (entities, operations, fields, rows, masking, rate limit) and writes the audit record.
The routes add what only HTTP has: query-string parsing (one filter grammar, parsed by
:mod:`patchbay.core.filters`), the limit cap, the projection, and scopes, which only narrow.
Records leave through ``record_to_json`` (or, for a page, ``json_bytes``: the same JSON) of
the policy module and nothing else.

Routes are registered per served entity (``/v1/entities/contact/records``, ...) so the OpenAPI
document is typed per entity; a catch-all answers 404 for the others.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from patchbay.core.entities import Record
from patchbay.core.errors import EntityNotFound, QueryError
from patchbay.core.policy import json_bytes, record_to_json
from patchbay.gateway import openapi
from patchbay.gateway.auth import Principal, authenticate
from patchbay.gateway.problems import Problem

if TYPE_CHECKING:
    from patchbay.core.quality import QualityReport
    from patchbay.gateway.app import Gateway
    from patchbay.hub import Page

__all__ = ["build_router"]

_RESERVED = frozenset({"limit", "cursor", "since", "fields", "order_by", "partial"})
_ENVELOPE = ("id",)
_DIGITS = re.compile(r"[0-9]{1,1000}")


class QueryBody(BaseModel):
    """The body of ``POST /v1/entities/{entity}/query``."""

    model_config = ConfigDict(extra="forbid")

    where: dict[str, Any] | None = None
    since: str | None = None
    order_by: str | None = None
    fields: list[str] | None = None
    limit: int | None = Field(default=None, ge=1)
    cursor: str | None = None
    partial: bool = False


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _request_id(request: Request) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


async def _caller(request: Request, entity: str | None = None) -> Principal:
    principal = await authenticate(request)
    request.scope.setdefault("state", {})["consumer"] = principal.consumer
    if entity is not None and not principal.may_read(entity):
        raise Problem("forbidden", f"the credential's scopes do not include read:{entity}")
    return principal


def _json(body: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
    )


def _limit(gateway: Gateway, given: str | int | None) -> tuple[int, bool]:
    if given is None:
        return gateway.settings.default_limit, False
    if isinstance(given, str):
        if not _DIGITS.fullmatch(given):
            raise QueryError(f"limit must be a whole number, got {given[:40]!r}")
        given = int(given)
    limit = given
    if limit < 1:
        raise QueryError(f"limit must be at least 1, got {limit}")
    cap = gateway.settings.max_limit
    return (cap, True) if limit > cap else (limit, False)


def _bool(name: str, text: str | None) -> bool:
    if text is None or text == "false":
        return False
    if text == "true":
        return True
    raise QueryError(f"{name} must be true or false, got {text[:40]!r}")


def _projection(model: type[Record], fields: list[str] | None) -> tuple[str, ...] | None:
    if fields is None:
        return None
    names = [f.strip() for f in fields if f.strip()]
    known = set(model.model_fields) - {"raw"}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise QueryError(
            f"fields: unknown {', '.join(repr(u[:60]) for u in unknown)} for {model.entity}; "
            f"fields: {', '.join(sorted(known))}"
        )
    return tuple(dict.fromkeys([*_ENVELOPE, *names]))


def _quality(quality: QualityReport, visible: set[str]) -> dict[str, Any]:
    # Counts only: quarantine reasons may quote a row's values (which a policy may mask). Nulled
    # fields are keyed "source.field: reason"; those of fields the caller cannot see are left out.
    nulled = {
        key: count
        for key, count in quality.nulled.items()
        if key.partition(".")[2].split(":", 1)[0].split(".", 1)[0] in visible
    }
    return {
        "read": quality.read,
        "delivered": quality.delivered,
        "quarantined": quality.quarantined,
        "nulled": nulled,
    }


def _page_body(
    entity: str,
    page: Page,
    projection: tuple[str, ...] | None,
    limit: int,
    capped: bool,
    visible: set[str],
) -> dict[str, Any]:
    records: list[Any] = page.records  # serialized by json_bytes, as record_to_json would
    if projection is not None:
        plain = [record_to_json(record) for record in page.records]
        records = [{k: r[k] for k in projection if k in r} for r in plain]
    return {
        "entity": entity,
        "records": records,
        "next_cursor": page.next_cursor,
        "limit": limit,
        "limit_capped": capped,
        "quality": _quality(page.quality, visible),
        "errors": [failure.to_dict() for failure in page.errors],
    }


async def _fetch(
    request: Request,
    entity: str,
    principal: Principal,
    *,
    where: Any,
    since: str | None,
    order_by: str | None,
    fields: list[str] | None,
    limit_text: str | int | None,
    cursor: str | None,
    partial: bool,
) -> Response:
    gateway = _gateway(request)
    model = gateway.hub.config.entities.get(entity)
    projection = _projection(model, fields)
    limit, capped = _limit(gateway, limit_text)
    with gateway.tracer.start_as_current_span("patchbay.fetch") as span:
        span.set_attribute("patchbay.entity", entity)
        page = await gateway.hub.fetch(
            entity,
            where,
            since=since,
            order_by=order_by,
            limit=limit,
            cursor=cursor,
            partial=partial,
            consumer=principal.consumer,
            via="rest",
            request_id=_request_id(request),
        )
        span.set_attribute("patchbay.records", len(page.records))
        span.set_attribute("patchbay.sources", sorted(page.quality.sources))
    gateway.metrics.observe_read(entity, len(page.records), page.quality, page.errors)
    visible = await _visible_fields(gateway, principal, entity)
    body = _page_body(entity, page, projection, limit, capped, visible)
    return Response(json_bytes(body), media_type="application/json")


def _list_records(entity: str) -> Callable[[Request], Awaitable[Response]]:
    async def list_records(request: Request) -> Response:
        principal = await _caller(request, entity)
        params = request.query_params
        where: dict[str, str] = {}
        for key in params:
            values = params.getlist(key)
            if len(values) > 1:
                raise QueryError(f"{key[:60]!r} is given {len(values)} times; give it once")
            if key not in _RESERVED:
                where[key] = values[0]  # field__op=value: parsed by the Hub, like keywords
        fields = params.get("fields") or None
        return await _fetch(
            request,
            entity,
            principal,
            where=where or None,
            since=params.get("since"),
            order_by=params.get("order_by") or None,
            fields=None if fields is None else fields.split(","),
            limit_text=params.get("limit"),
            cursor=params.get("cursor") or None,
            partial=_bool("partial", params.get("partial")),
        )

    return list_records


def _query_records(entity: str) -> Callable[[Request], Awaitable[Response]]:
    async def query_records(request: Request) -> Response:
        principal = await _caller(request, entity)
        raw = await request.body()
        try:
            body = QueryBody.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            # Where and what kind only: the input may hold values a policy masks.
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
                for error in exc.errors(include_input=False, include_url=False)
            )
            raise QueryError(f"invalid query body: {problems}") from None
        return await _fetch(
            request,
            entity,
            principal,
            where=body.where or None,
            since=body.since,
            order_by=body.order_by,
            fields=body.fields,
            limit_text=body.limit,
            cursor=body.cursor,
            partial=body.partial,
        )

    return query_records


def _get_record(entity: str) -> Callable[[Request], Awaitable[Response]]:
    async def get_record(request: Request) -> Response:
        principal = await _caller(request, entity)
        gateway = _gateway(request)
        record_id = request.path_params["record_id"]
        with gateway.tracer.start_as_current_span("patchbay.get") as span:
            span.set_attribute("patchbay.entity", entity)
            record = await gateway.hub.get(
                entity,
                record_id,
                consumer=principal.consumer,
                via="rest",
                request_id=_request_id(request),
            )
        gateway.metrics.observe_read(entity, 1)
        return _json(record_to_json(record))

    return get_record


async def _unknown_entity(request: Request) -> Response:
    await _caller(request)
    gateway = _gateway(request)
    name = str(request.path_params.get("entity", ""))
    raise EntityNotFound(name, gateway.hub.entities())


async def _views(gateway: Gateway, principal: Principal) -> list[dict[str, Any]]:
    # A consumer's catalog follows from the config alone, which a process never reloads: it is
    # built once per consumer (JSON Schemas are slow to make) and the same on every worker.
    cached = gateway.catalogs.get(principal.consumer)
    if cached is None:
        result = gateway.hub.catalog(principal.consumer)
        if inspect.isawaitable(result):
            result = await result
        cached = gateway.catalogs[principal.consumer] = [_plain(view) for view in result]
    return [view for view in cached if principal.may_read(str(view.get("name")))]


def _plain(view: Any) -> dict[str, Any]:
    if isinstance(view, BaseModel):
        return view.model_dump(mode="json")
    if is_dataclass(view) and not isinstance(view, type):
        plain: dict[str, Any] = json.loads(json.dumps(asdict(view), default=str))
        return plain
    return dict(view)


async def list_entities(request: Request) -> Response:
    principal = await _caller(request)
    return _json({"entities": await _views(_gateway(request), principal)})


async def _visible_fields(gateway: Gateway, principal: Principal, entity: str) -> set[str]:
    """The top-level fields of ``entity`` the caller sees (from its catalog)."""
    for view in await _views(gateway, principal):
        if view.get("name") == entity:
            return {str(f["name"]).split(".", 1)[0] for f in view.get("fields", ())}
    return set()


async def _visible_entities(request: Request, principal: Principal) -> set[str]:
    return {str(v["name"]) for v in await _views(_gateway(request), principal)}


async def list_sources(request: Request) -> Response:
    principal = await _caller(request)
    gateway = _gateway(request)
    visible = await _visible_entities(request, principal)
    sources = []
    for conf in gateway.hub.sources():
        entities = sorted(e for e in conf.mappings if e in visible)
        if entities:
            sources.append(
                {
                    "name": conf.name,
                    "connector": conf.spec.connector,
                    "owner": conf.owner,
                    "description": conf.spec.description,
                    "entities": entities,
                }
            )
    return _json({"sources": sources})


async def source_health(request: Request) -> Response:
    principal = await _caller(request)
    gateway = _gateway(request)
    name = str(request.path_params["name"])
    visible = await _visible_entities(request, principal)
    conf = gateway.hub.config.sources.get(name)
    if conf is None or not (set(conf.mappings) & visible):
        raise Problem("not-found", f"no source {name[:100]!r} serves an entity you may read")
    with gateway.tracer.start_as_current_span("patchbay.check") as span:
        span.set_attribute("patchbay.source", name)
        failure = (await gateway.hub.check([name]))[name]
    if failure is not None:
        gateway.metrics.source_failed(name)
    return _json(
        {
            "source": name,
            "owner": conf.owner,
            "healthy": failure is None,
            "unavailable": bool(failure and failure.unavailable),
            "error": failure.error if failure else None,
        }
    )


def build_router(models: list[type[Record]]) -> APIRouter:
    router = APIRouter(prefix="/v1")
    common = openapi.problem_responses(401, 403, 429)
    router.add_api_route(
        "/entities",
        list_entities,
        methods=["GET"],
        summary="The entities you may read, with their fields and JSON Schemas",
        responses={200: {"description": "The catalog", "content": {"application/json": {
            "schema": {"type": "object", "required": ["entities"], "properties": {
                "entities": {"type": "array", "items": {"type": "object"}}}}}}},
            **common},
        response_class=JSONResponse,
    )
    for model in models:
        entity = model.entity
        tag: list[str | Enum] = [entity]
        page: dict[int | str, dict[str, Any]] = {200: {
            "description": f"A page of {entity} records",
            "content": {"application/json": {"schema": openapi.page_schema(model)}}}}
        reading = openapi.problem_responses(400, 401, 403, 404, 429, 502, 503)
        router.add_api_route(
            f"/entities/{entity}/records",
            _list_records(entity),
            methods=["GET"],
            name=f"list_{entity}",
            summary=f"List {entity} records (filters as field__op=value)",
            tags=tag,
            responses={**page, **reading},
            openapi_extra={
                "parameters": openapi.PAGE_PARAMETERS + openapi.filter_parameters(model)
            },
            response_class=JSONResponse,
        )
        router.add_api_route(
            f"/entities/{entity}/query",
            _query_records(entity),
            methods=["POST"],
            name=f"query_{entity}",
            summary=f"Query {entity} records with the JSON filter form",
            tags=tag,
            responses={**page, **reading},
            openapi_extra={"requestBody": {"required": False, "content": {
                "application/json": {"schema": openapi.query_body_schema()}}}},
            response_class=JSONResponse,
        )
        router.add_api_route(
            f"/entities/{entity}/records/{{record_id:path}}",
            _get_record(entity),
            methods=["GET"],
            name=f"get_{entity}",
            summary=f"One {entity} record by its canonical id",
            tags=tag,
            responses={200: {"description": f"The {entity} record", "content": {
                "application/json": {"schema": openapi.record_ref(model)}}}, **reading},
            openapi_extra={"parameters": [openapi.path_parameter(
                "record_id", "The canonical id, e.g. erp:C001")]},
            response_class=JSONResponse,
        )
    for suffix, methods in (("records", ["GET"]), ("query", ["POST"]),
                            ("records/{record_id:path}", ["GET"])):
        router.add_api_route(
            f"/entities/{{entity}}/{suffix}",
            _unknown_entity,
            methods=methods,
            include_in_schema=False,
        )
    router.add_api_route(
        "/sources",
        list_sources,
        methods=["GET"],
        summary="The sources serving entities you may read, with their owners",
        responses={200: {"description": "Sources", "content": {"application/json": {
            "schema": {"type": "object", "required": ["sources"], "properties": {
                "sources": {"type": "array", "items": {"type": "object", "properties": {
                    "name": {"type": "string"},
                    "connector": {"type": "string"},
                    "owner": {"type": ["string", "null"]},
                    "description": {"type": ["string", "null"]},
                    "entities": {"type": "array", "items": {"type": "string"}}}}}}}}}},
            **common},
        response_class=JSONResponse,
    )
    router.add_api_route(
        "/sources/{name}/health",
        source_health,
        methods=["GET"],
        summary="Whether a source answers now, and who owns it",
        responses={200: {"description": "Health", "content": {"application/json": {
            "schema": {"type": "object", "required": ["source", "healthy"], "properties": {
                "source": {"type": "string"},
                "owner": {"type": ["string", "null"]},
                "healthy": {"type": "boolean"},
                "unavailable": {"type": "boolean"},
                "error": {"type": ["string", "null"]}}}}}},
            **openapi.problem_responses(401, 403, 404, 429)},
        openapi_extra={"parameters": [openapi.path_parameter("name", "The source's name")]},
        response_class=JSONResponse,
    )
    return router
