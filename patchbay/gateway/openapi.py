"""The gateway's OpenAPI document: typed per entity, every record field optional.

Each served entity gets a component schema made from its model's JSON Schema (the serialised
form, the shape the API returns), relaxed so that a restricted view still conforms: no field is
required (a policy may deny any of them) and string fields carry no ``pattern`` or ``email``
format (a policy may mask them, and ``a***@acme.example`` or a keyed hash is no longer an
address). Pages, parameters and problems are described once here; the document holds no data.
"""

from __future__ import annotations

import copy
from typing import Any

from patchbay.core.entities import Record
from patchbay.core.filters import FieldInfo, FieldKind, field_catalog
from patchbay.gateway.problems import MEDIA_TYPE, PROBLEM_SCHEMA

__all__ = [
    "PAGE_PARAMETERS",
    "entity_components",
    "filter_parameters",
    "page_schema",
    "path_parameter",
    "problem_responses",
    "query_body_schema",
]

_REF = "#/components/schemas/{model}"


def _relax(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key in ("required", "pattern", "additionalProperties"):
                continue
            if key == "format" and value == "email":
                continue
            out[key] = _relax(value)
        return out
    if isinstance(node, list):
        return [_relax(item) for item in node]
    return node


def entity_components(models: list[type[Record]]) -> dict[str, Any]:
    """Component schemas for the entities (``Contact``, ...) and the value types they use."""
    components: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(mode="serialization", ref_template=_REF)
        for name, definition in schema.pop("$defs", {}).items():
            components[name] = _relax(definition)
        properties = schema.get("properties", {})
        properties.pop("raw", None)  # never served by the gateway
        schema["description"] = (
            f"A canonical {model.entity} record. Every field is optional: the caller's policy "
            "may deny fields (they are then absent) or mask them (a masked string is no longer "
            "in its original format)."
        )
        components[_schema_name(model)] = _relax(schema)
    return components


def _schema_name(model: type[Record]) -> str:
    return model.__name__


def record_ref(model: type[Record]) -> dict[str, str]:
    return {"$ref": _REF.format(model=_schema_name(model))}


def page_schema(model: type[Record]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["entity", "records", "next_cursor", "limit", "limit_capped"],
        "properties": {
            "entity": {"type": "string", "const": model.entity},
            "records": {"type": "array", "items": record_ref(model)},
            "next_cursor": {
                "type": ["string", "null"],
                "description": "Pass as `cursor` for the next page; null on the last page.",
            },
            "limit": {"type": "integer", "description": "The page size applied."},
            "limit_capped": {
                "type": "boolean",
                "description": "True when the requested limit was above the gateway's cap.",
            },
            "quality": {
                "type": "object",
                "description": "Rows read, delivered, quarantined, and nulled fields by reason.",
                "properties": {
                    "read": {"type": "integer"},
                    "delivered": {"type": "integer"},
                    "quarantined": {"type": "integer"},
                    "nulled": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
            "errors": {
                "type": "array",
                "description": "Sources that failed (only with partial=true).",
                "items": {
                    "type": "object",
                    "properties": {
                        "source": {"type": "string"},
                        "owner": {"type": ["string", "null"]},
                        "error": {"type": "string"},
                        "unavailable": {"type": "boolean"},
                    },
                },
            },
        },
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


def path_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string"}}


PAGE_PARAMETERS = [
    _query("limit", "Page size; values above the cap are capped (see limit_capped).",
           {"type": "integer", "minimum": 1}),
    _query("cursor", "The next_cursor of the previous page (signed; same query only).",
           {"type": "string"}),
    _query("since", "Only records updated at or after this ISO 8601 date or time.",
           {"type": "string"}),
    _query("fields", "Comma-separated fields to return (id is always returned).",
           {"type": "string"}),
    _query("order_by", "A field to order by; prefix with - for descending.", {"type": "string"}),
    _query("partial", "true: deliver what the healthy sources have when one fails.",
           {"type": "boolean"}),
]


def filter_parameters(model: type[Record]) -> list[dict[str, Any]]:
    """One ``field=value`` (eq) parameter per filterable field; ``field__op=value`` works for
    every operator (ne, in, gt, gte, lt, lte, contains, isnull) and is described, not listed."""
    params = []
    for path, info in sorted(field_catalog(model).items()):
        if path in ("id", "source", "remote_id", "updated_at"):
            continue
        name = path.replace(".", "__")
        params.append(
            _query(
                name,
                f"{path} equals ({info.kind}); {name}__OP for other operators.",
                _value_schema(info),
            )
        )
    return params


def _value_schema(info: FieldInfo) -> dict[str, Any]:
    # Only constraints the Hub enforces exactly: it also reads dates in ISO 8601's other forms
    # and booleans as yes/no/1/0, so those are described rather than given a format.
    if info.choices is not None:
        return {"type": "string", "enum": list(info.choices)}
    if info.kind in (FieldKind.NUMBER, FieldKind.MONEY):
        return {"type": "number"}
    described = {
        FieldKind.DATE: "an ISO 8601 date",
        FieldKind.DATETIME: "an ISO 8601 date or time (UTC when no offset is given)",
        FieldKind.BOOL: "true or false",
    }
    if info.kind in described:
        return {"type": "string", "description": described[info.kind]}
    return {"type": "string"}


def query_body_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "where": {
                "type": ["object", "null"],
                "description": 'The JSON filter: {"and": [{"field": "email", "op": "eq", '
                '"value": "..."}]} (and, or, not; ops eq ne in gt gte lt lte contains isnull).',
            },
            "since": {"type": ["string", "null"]},
            "order_by": {"type": ["string", "null"]},
            "fields": {"type": ["array", "null"], "items": {"type": "string"}},
            "limit": {"type": ["integer", "null"], "minimum": 1},
            "cursor": {"type": ["string", "null"]},
            "partial": {"type": "boolean"},
        },
    }


def problem_responses(*statuses: int) -> dict[int | str, Any]:
    content = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    described = {
        400: "The query is wrong (problem type invalid-query or invalid-cursor)",
        401: "No valid API key or token",
        403: "The consumer may not do this",
        404: "Not found",
        429: "The consumer's rate limit; see Retry-After",
        502: "A source failed",
        503: "A source is unavailable",
    }
    out: dict[int | str, Any] = {}
    for status in statuses:
        response: dict[str, Any] = {"description": described[status], "content": content}
        if status == 429:
            response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
        out[status] = response
    return out


def finish(document: dict[str, Any], models: list[type[Record]]) -> dict[str, Any]:
    """Add the components and the security scheme to FastAPI's generated document."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(entity_components(models))
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (pb_<id>_<secret>, `patchbay keys create`) or a JWT "
            "from the configured issuer.",
        }
    }
    document["security"] = [{"bearer": []}]
    return document
