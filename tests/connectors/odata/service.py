"""A small OData service (v4 or v2) for the connector tests, served on 127.0.0.1.

It follows the documented request and response shapes of both versions: ``{"value": [...],
"@odata.nextLink": ...}`` (v4) and ``{"d": {"results": [...], "__next": ...}}`` (v2) with
``/Date(ms)/`` dates and decimals as strings, ``$select``, ``$expand`` (v2 answers
``__deferred`` for a navigation property that is not expanded), ``$top``/``$skip``,
server-driven paging by ``$skiptoken`` (at most ``cap`` entities a page), get by key, and
``$metadata`` (v4 CSDL or v2 EDMX).

``$filter`` is really evaluated, and strictly typed as a real service is: a literal of the wrong
kind for the property (``'…'`` for a guid, ``datetime'…'`` for an ``Edm.DateTimeOffset``, a v4
function in v2) is a 400 with an OData error body, so a test passes only when the connector
writes what the service parses. The grammar is the subset the connector emits: ``and``, ``or``,
parentheses, ``eq ne gt ge lt le``, ``contains``/``substringof`` and ``tolower``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

__all__ = ["EntitySet", "ODataError", "Service"]

Row = dict[str, Any]


class ODataError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class EntitySet:
    name: str
    type_name: str
    key: list[str]
    props: dict[str, str]  # property path ("address/city" for complex members) -> Edm type
    rows: list[Row]
    nav: dict[str, EntitySet] = field(default_factory=dict)
    lines: dict[str, Callable[[Row], list[Row]]] = field(default_factory=dict)

    def value(self, row: Row, path: str) -> Any:
        value: Any = row
        for part in path.split("/"):
            value = value.get(part) if isinstance(value, dict) else None
        return value


# --- $filter ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:
    (?P<typed>(?:datetimeoffset|datetime|guid)'[^']*')
   |(?P<str>'(?:[^']|'')*')
   |(?P<guid>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})
   |(?P<dt>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2}))
   |(?P<date>\d{4}-\d{2}-\d{2})
   |(?P<num>-?\d+(?:\.\d+)?[MmdDLlfF]?)
   |(?P<punct>[(),])
   |(?P<word>[A-Za-z_][A-Za-z0-9_/]*)
)""", re.VERBOSE)

_KINDS = {  # Edm type -> the literal kinds it accepts, per version
    ("4", "Edm.String"): {"str"}, ("2", "Edm.String"): {"str"},
    ("4", "Edm.Guid"): {"guid"}, ("2", "Edm.Guid"): {"guid'"},
    ("4", "Edm.Boolean"): {"bool"}, ("2", "Edm.Boolean"): {"bool"},
    ("4", "Edm.Int32"): {"int"}, ("2", "Edm.Int32"): {"int"},
    ("4", "Edm.Decimal"): {"int", "decimal"}, ("2", "Edm.Decimal"): {"int", "decimal'M"},
    ("4", "Edm.Date"): {"date"},
    ("4", "Edm.DateTimeOffset"): {"dt"}, ("2", "Edm.DateTimeOffset"): {"datetimeoffset'"},
    ("2", "Edm.DateTime"): {"datetime'"},
}


@dataclass(frozen=True)
class _Literal:
    kind: str
    value: Any


def _tokens(text: str) -> list[tuple[str, str]]:
    out, at = [], 0
    text = text.rstrip()
    while at < len(text):
        found = _TOKEN.match(text, at)
        if found is None or found.end() == at:
            raise ODataError(400, f"syntax error at position {at} in $filter")
        kind = found.lastgroup or ""
        out.append((kind, found.group(kind)))
        at = found.end()
    return out


def _literal(kind: str, text: str, version: str) -> _Literal:
    if kind == "str":
        return _Literal("str", text[1:-1].replace("''", "'"))
    if kind == "typed":
        prefix, _, rest = text.partition("'")
        inner = rest[:-1]
        if prefix == "guid":
            return _Literal("guid'", uuid.UUID(inner))
        moment = datetime.fromisoformat(inner.replace("Z", "+00:00"))
        if prefix == "datetime":
            if moment.tzinfo is not None:
                raise ODataError(400, f"datetime literal with an offset: {text}")
            return _Literal("datetime'", moment.replace(tzinfo=UTC))
        if moment.tzinfo is None:
            raise ODataError(400, f"datetimeoffset literal without an offset: {text}")
        return _Literal("datetimeoffset'", moment)
    if kind == "guid":
        if version == "2":
            raise ODataError(400, f"a bare guid is not a v2 literal: {text}")
        return _Literal("guid", uuid.UUID(text))
    if kind == "dt":
        if version == "2":
            raise ODataError(400, f"a bare timestamp is not a v2 literal: {text}")
        return _Literal("dt", datetime.fromisoformat(text.replace("Z", "+00:00")))
    if kind == "date":
        if version == "2":
            raise ODataError(400, f"a bare date is not a v2 literal: {text}")
        return _Literal("date", date.fromisoformat(text))
    if kind == "num":
        if text[-1] in "Mm":
            if version == "4":
                raise ODataError(400, f"the M suffix is not v4: {text}")
            return _Literal("decimal'M", Decimal(text[:-1]))
        if text[-1].isalpha():
            return _Literal("other", Decimal(text[:-1]))
        if "." in text:
            if version == "2":
                raise ODataError(400, f"a v2 decimal needs the M suffix: {text}")
            return _Literal("decimal", Decimal(text))
        return _Literal("int", int(text))
    raise ODataError(400, f"not a literal: {text}")


class _Parser:
    def __init__(self, text: str, entity_set: EntitySet, version: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.set = entity_set
        self.version = version

    def parse(self) -> Callable[[Row], bool]:
        predicate = self.expr()
        if self.at != len(self.tokens):
            raise ODataError(400, f"unexpected {self.tokens[self.at][1]!r} in $filter")
        return predicate

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise ODataError(400, f"expected {value or 'more'} in $filter")
        self.at += 1
        return token

    def expr(self) -> Callable[[Row], bool]:
        parts = [self.conjunction()]
        while self.peek() == ("word", "or"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda row: any(p(row) for p in parts))

    def conjunction(self) -> Callable[[Row], bool]:
        parts = [self.unary()]
        while self.peek() == ("word", "and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda row: all(p(row) for p in parts))

    def unary(self) -> Callable[[Row], bool]:
        token = self.peek()
        if token == ("punct", "("):
            self.take()
            inner = self.expr()
            self.take(")")
            return inner
        if token in (("word", "contains"), ("word", "substringof")):
            return self.function(token[1])
        return self.comparison()

    def operand(self) -> tuple[str, Any]:
        """("path", (path, folded)) or ("literal", _Literal)."""
        kind, text = self.take()
        if kind == "word" and text == "tolower":
            self.take("(")
            inner_kind, inner = self.operand()
            self.take(")")
            if inner_kind != "path" or self.set.props.get(inner[0]) != "Edm.String":
                raise ODataError(400, "tolower takes a string property")
            return "path", (inner[0], True)
        if kind == "word" and text in ("true", "false"):
            return "literal", _Literal("bool", text == "true")
        if kind == "word" and text == "null":
            return "literal", _Literal("null", None)
        if kind == "word":
            if text not in self.set.props:
                raise ODataError(400, f"unknown property {text!r} in $filter")
            return "path", (text, False)
        return "literal", _literal(kind, text, self.version)

    def function(self, name: str) -> Callable[[Row], bool]:
        if (name == "contains") != (self.version == "4"):
            raise ODataError(400, f"{name} is not an OData v{self.version} function")
        self.take()
        self.take("(")
        first = self.operand()
        self.take(",")
        second = self.operand()
        self.take(")")
        path, needle = (first, second) if name == "contains" else (second, first)
        if path[0] != "path" or needle[0] != "literal" or needle[1].kind != "str":
            raise ODataError(400, f"{name} takes a property and a string")
        (prop, folded), text = path[1], needle[1].value
        if self.set.props[prop] != "Edm.String":
            raise ODataError(400, f"{name} on a non-string property {prop}")

        def test(row: Row) -> bool:
            value = self.set.value(row, prop)
            if value is None:
                return False
            return text in (value.lower() if folded else value)

        return test

    def comparison(self) -> Callable[[Row], bool]:
        left = self.operand()
        op = self.take()[1]
        right = self.operand()
        if op not in ("eq", "ne", "gt", "ge", "lt", "le"):
            raise ODataError(400, f"unknown operator {op!r}")
        if left[0] != "path" or right[0] != "literal":
            raise ODataError(400, "comparisons here are property op literal")
        (prop, folded), lit = left[1], right[1]
        edm = self.set.props[prop]
        if lit.kind == "null":
            if op not in ("eq", "ne"):
                raise ODataError(400, "null compares only with eq and ne")
        elif lit.kind not in _KINDS.get((self.version, edm), set()):
            raise ODataError(400, f"a {lit.kind} literal is incompatible with {prop} ({edm})")

        def test(row: Row) -> bool:
            value = self.set.value(row, prop)
            if folded and value is not None:
                value = value.lower()
            target = lit.value
            if op == "eq":
                return bool(value == target)
            if op == "ne":
                return bool(value != target)
            if value is None or target is None:
                return False
            return {"gt": value > target, "ge": value >= target, "lt": value < target,
                    "le": value <= target}[op]

        return test


# --- serialisation ---------------------------------------------------------------------------


def _out(value: Any, edm: str | None, version: str) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        if version == "4":
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        millis = int(value.timestamp() * 1000)
        return f"/Date({millis}+0000)/" if edm == "Edm.DateTimeOffset" else f"/Date({millis})/"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value) if version == "4" else str(value)
    return value


def _key_text(entity_set: EntitySet, row: Row, version: str) -> str:
    parts = []
    for name in entity_set.key:
        value = row[name]
        edm = entity_set.props[name]
        if edm == "Edm.Guid":
            parts.append(str(value) if version == "4" else f"guid'{value}'")
        else:
            parts.append("'" + str(value).replace("'", "''") + "'")
    if len(parts) == 1:
        return parts[0]
    return ",".join(f"{n}={p}" for n, p in zip(entity_set.key, parts, strict=True))


# --- the service -----------------------------------------------------------------------------


class Service:
    """``Service(version, sets).app(prefix)``; ``seen`` records (path, query) of each request."""

    def __init__(self, version: str, sets: list[EntitySet], *, cap: int = 4,
                 namespace: str = "Test") -> None:
        self.version = version
        self.sets = {s.name: s for s in sets}
        self.cap = cap
        self.namespace = namespace
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.other_origin = "http://127.0.0.1:1"

    # -- documents --

    def metadata(self) -> str:
        types, sets = [], []
        for entity_set in self.sets.values():
            for candidate in (entity_set, *entity_set.nav.values()):
                keys = "".join(f'<PropertyRef Name="{k}"/>' for k in candidate.key)
                props = "".join(
                    f'<Property Name="{p}" Type="{t}" Nullable="{p not in candidate.key}"/>'
                    for p, t in candidate.props.items() if "/" not in p)
                navs = "".join(self._navigation(candidate, nav, target)
                               for nav, target in candidate.nav.items())
                types.append(f'<EntityType Name="{candidate.type_name}"><Key>{keys}</Key>'
                             f"{props}{navs}</EntityType>")
                for nav, target in candidate.nav.items():
                    if self.version == "2":
                        types.append(
                            f'<Association Name="assoc_{nav}">'
                            f'<End Type="{self.namespace}.{candidate.type_name}" '
                            f'Multiplicity="1" Role="From_{nav}"/>'
                            f'<End Type="{self.namespace}.{target.type_name}" '
                            f'Multiplicity="*" Role="To_{nav}"/></Association>')
            sets.append(f'<EntitySet Name="{entity_set.name}" '
                        f'EntityType="{self.namespace}.{entity_set.type_name}"/>')
        body = "".join(dict.fromkeys(types)) + (
            f'<EntityContainer Name="Container">{"".join(sets)}</EntityContainer>')
        if self.version == "4":
            return ('<?xml version="1.0" encoding="utf-8"?>'
                    '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">'
                    '<edmx:DataServices><Schema Namespace="' + self.namespace + '" '
                    'xmlns="http://docs.oasis-open.org/odata/ns/edm">' + body +
                    "</Schema></edmx:DataServices></edmx:Edmx>")
        return ('<?xml version="1.0" encoding="utf-8"?>'
                '<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx"'
                ' xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">'
                '<edmx:DataServices m:DataServiceVersion="2.0"><Schema Namespace="'
                + self.namespace + '" xmlns="http://schemas.microsoft.com/ado/2008/09/edm">'
                + body + "</Schema></edmx:DataServices></edmx:Edmx>")

    def _navigation(self, owner: EntitySet, nav: str, target: EntitySet) -> str:
        if self.version == "4":
            return (f'<NavigationProperty Name="{nav}" '
                    f'Type="Collection({self.namespace}.{target.type_name})"/>')
        return (f'<NavigationProperty Name="{nav}" Relationship="{self.namespace}.assoc_{nav}" '
                f'FromRole="From_{nav}" ToRole="To_{nav}"/>')

    def entity(self, entity_set: EntitySet, row: Row, select: list[str] | None,
               expand: str | None, base: str) -> Row:
        out: Row = {}
        if self.version == "2":
            key = _key_text(entity_set, row, "2")
            out["__metadata"] = {"uri": f"{base}/{entity_set.name}({key})",
                                 "type": f"{self.namespace}.{entity_set.type_name}"}
        for name, value in row.items():
            if select is not None and name not in select:
                continue
            if isinstance(value, dict):
                out[name] = {k: _out(v, entity_set.props.get(f"{name}/{k}"), self.version)
                             for k, v in value.items()}
            else:
                out[name] = _out(value, entity_set.props.get(name), self.version)
        for nav, lines_set in entity_set.nav.items():
            if select is not None and self.version == "2" and nav not in select:
                continue
            if nav == expand:
                lines = [self.entity(lines_set, line, None, None, base)
                         for line in entity_set.lines[nav](row)]
                out[nav] = lines if self.version == "4" else {"results": lines}
            elif self.version == "2":
                out[nav] = {"__deferred": {"uri": f"{base}/{entity_set.name}(...)/{nav}"}}
        return out

    def error(self, status: int, message: str) -> JSONResponse:
        inner: Any = message if self.version == "4" else {"lang": "en", "value": message}
        return JSONResponse({"error": {"code": str(status), "message": inner}},
                            status_code=status)

    # -- the app --

    def app(self, prefix: str) -> FastAPI:
        app = FastAPI()
        service = self

        @app.get(prefix + "/{path:path}")
        async def anything(request: Request, path: str) -> Response:
            service.seen.append((request.url.path, dict(request.query_params)))
            try:
                return service.answer(request, path, f"{request.base_url}{prefix.strip('/')}")
            except ODataError as exc:
                return service.error(exc.status, exc.message)

        return app

    def answer(self, request: Request, path: str, base: str) -> Response:
        q = request.query_params
        if path.endswith("$metadata"):
            return Response(self.metadata(), media_type="application/xml")
        if path.rstrip("/") in ("", "API_BUSINESS_PARTNER", "API_SALES_ORDER_SRV"):
            names = list(self.sets)  # the service document
            if self.version == "4":
                return JSONResponse({"@odata.context": f"{base}/$metadata", "value": [
                    {"name": n, "kind": "EntitySet", "url": n} for n in names]})
            return JSONResponse({"d": {"EntitySets": names}})
        segment = path.rsplit("/", 1)[-1]
        name, _, key = segment.partition("(")
        entity_set = self.sets.get(name)
        if entity_set is None:
            raise ODataError(404, f"no entity set {name!r}")
        select = q["$select"].split(",") if "$select" in q else None
        for prop in select or ():
            if prop not in entity_set.props and prop not in entity_set.nav:
                raise ODataError(400, f"$select: unknown property {prop!r}")
        expand = q.get("$expand")
        if expand is not None and expand not in entity_set.nav:
            raise ODataError(400, f"$expand: unknown navigation property {expand!r}")
        if key:
            wanted = key.rstrip(")")
            for row in entity_set.rows:
                if _key_text(entity_set, row, self.version) == wanted:
                    entity = self.entity(entity_set, row, select, expand, base)
                    return JSONResponse(entity if self.version == "4" else {"d": entity})
            if entity_set.props[entity_set.key[0]] == "Edm.Guid" and not re.fullmatch(
                r"(guid')?[0-9a-f-]{36}'?", wanted
            ):
                raise ODataError(400, f"bad key literal {wanted!r} for a guid key")
            raise ODataError(404, f"no {name} with key {wanted}")
        rows = entity_set.rows
        if "$filter" in q:
            predicate = _Parser(q["$filter"], entity_set, self.version).parse()
            rows = [row for row in rows if predicate(row)]
        skip = int(q.get("$skip", "0"))
        rows = rows[skip:]
        if "$top" in q:
            rows = rows[: int(q["$top"])]
        token = int(q.get("$skiptoken", "0"))
        page = rows[token: token + self.cap]
        items = [self.entity(entity_set, row, select, expand, base) for row in page]
        following = None
        if token + self.cap < len(rows):
            query = {**dict(q), "$skiptoken": str(token + self.cap)}
            encoded = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}"
                               for k, v in query.items())
            following = f"{base}/{path}?{encoded}"
        if self.version == "4":
            body: Row = {"@odata.context": f"{base}/$metadata#{name}", "value": items}
            if following:
                body["@odata.nextLink"] = following
        else:
            body = {"d": {"results": items}}
            if following:
                body["d"]["__next"] = following
        return JSONResponse(body)
