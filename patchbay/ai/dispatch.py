"""The dispatcher: runs a model's tool call through the Hub as one consumer and answers in a
form the model can use and recover from.

A call is checked against its tool's schema first; a wrong argument gets a short message that
lists the valid choices (field names, operators, enum values). The query then runs through the
Hub under the consumer's policy and is audited like any read (``via="tool"``, or ``"mcp"``
from the MCP server). The answer is
compact JSON within a :class:`~patchbay.ai.render.Budget`: as many records as fit, in order,
with ``truncated`` and a ``next_cursor`` that continues right after the last record shown
(no gaps, no duplicates). Records sit in ``untrusted_records`` next to a notice that their text
is data. Every patchbay error becomes an error result naming what to change; nothing raises.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jsonschema import (  # type: ignore[import-untyped]  # mcp depends on it, no stubs
    Draft202012Validator,
    FormatChecker,
    ValidationError,
)

from patchbay.ai.render import (
    Budget,
    fitting,
    json_envelope,
    record_data,
    to_json_text,
)
from patchbay.ai.tools import DEFAULT_LIMIT, Tool, ToolSet, tools_for
from patchbay.core.consumers import AccessDenied, RateLimited
from patchbay.core.errors import (
    EntityNotFound,
    PatchbayError,
    QueryError,
    RecordNotFound,
    SourceError,
)
from patchbay.core.filters import Op
from patchbay.core.policy import FieldView

if TYPE_CHECKING:
    from patchbay.hub import Hub

__all__ = ["Dispatcher", "ToolResult"]

log = logging.getLogger("patchbay.ai")

_FORMATS = FormatChecker()
_FORMATS.checks("date")(lambda value: not isinstance(value, str) or _iso(value, date_only=True))
_FORMATS.checks("date-time")(lambda value: not isinstance(value, str) or _iso(value))
_OPTIONS = ("since", "limit", "fields", "cursor")


def _iso(value: str, *, date_only: bool = False) -> bool:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return not date_only or (len(value) == 10 and parsed.hour == parsed.minute == 0)


@dataclass(frozen=True)
class ToolResult:
    """What a tool call answers: ``text`` for the model and the same as ``data``."""

    text: str
    data: dict[str, Any]
    is_error: bool = False
    truncated: bool = False
    next_cursor: str | None = None
    estimated_tokens: int = 0

    def openai(self, tool_call_id: str) -> dict[str, Any]:
        """The message answering an OpenAI tool call."""
        return {"role": "tool", "tool_call_id": tool_call_id, "content": self.text}

    def anthropic(self, tool_use_id: str) -> dict[str, Any]:
        """The content block answering an Anthropic ``tool_use`` block."""
        return {
            "type": "tool_result",
            "tool_use_id": tool_use_id,
            "content": self.text,
            "is_error": self.is_error,
        }


class Dispatcher:
    """Runs tool calls for one consumer: ``await Dispatcher(hub, "support-bot").call(...)``."""

    def __init__(
        self,
        hub: Hub,
        consumer: str,
        *,
        budget: Budget | None = None,
        default_limit: int = DEFAULT_LIMIT,
        via: str = "tool",
        may_read: Callable[[str], bool] | None = None,
    ) -> None:
        """``via``: the front door named in the audit log. ``may_read``: a narrowing of the
        consumer's entities (a gateway credential's scopes); None keeps the whole policy."""
        self.hub = hub
        self.consumer = consumer
        self.budget = budget or Budget()
        self.default_limit = default_limit
        self.via = via
        self.may_read = may_read
        self._tools: ToolSet | None = None
        self._validators: dict[str, Draft202012Validator] = {}
        # Average size of a record per tool and field selection, to ask for pages that fit.
        self._record_chars: dict[tuple[str, tuple[str, ...]], int] = {}

    async def tools(self) -> ToolSet:
        """The consumer's tools (built once per dispatcher from the Hub's catalog)."""
        if self._tools is None:
            self._tools = await tools_for(self.hub, self.consumer, self.may_read)
        return self._tools

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        """Run one tool call; errors come back as results with ``is_error`` set."""
        request_id = uuid.uuid4().hex
        try:
            if arguments is not None and not isinstance(arguments, Mapping):
                return self._error(
                    "invalid_arguments", f"{name}: arguments must be an object", request_id
                )
            args = dict(arguments or {})
            tools = await self.tools()
            tool = tools.get(name)
            if tool is None:
                return await self._not_offered(name, tools, args, request_id)
            problems = self._check(tool, args)
            if problems:
                return self._error(
                    "invalid_arguments", f"{name}: " + "; ".join(problems), request_id
                )
            if tool.kind == "list_entities":
                return self._list_entities(tools, request_id)
            if tool.kind == "get":
                return await self._get(tool, args, request_id)
            return await self._search(tool, args, request_id)
        except AccessDenied as exc:
            offered = "" if self._tools is None else f"; your tools: {', '.join(self._tools.names)}"
            return self._error("access_denied", f"{exc}{offered}", request_id)
        except RateLimited as exc:
            return self._error("rate_limited", f"{exc}; wait before the next call", request_id)
        except RecordNotFound as exc:
            return self._error(
                "not_found",
                f"{exc}; ids look like erp:1001 and come from a "
                "search result's id or a reference field",
                request_id,
            )
        except SourceError as exc:
            return self._error("source_unavailable", f"{exc}; try again later", request_id)
        except (QueryError, EntityNotFound) as exc:
            return self._error("invalid_query", str(exc), request_id)
        except PatchbayError as exc:
            return self._error("error", str(exc), request_id)
        except Exception:
            # A bug must not end the agent's conversation; it is logged with its traceback.
            log.exception("tool %s failed (request %s)", name, request_id)
            return self._error(
                "internal_error",
                f"{name} failed unexpectedly; the error is logged under request id {request_id}",
                request_id,
            )

    # --- checking arguments --------------------------------------------------------------

    def _validator(self, tool: Tool) -> Draft202012Validator:
        validator = self._validators.get(tool.name)
        if validator is None:
            validator = Draft202012Validator(tool.input_schema, format_checker=_FORMATS)
            self._validators[tool.name] = validator
        return validator

    def _check(self, tool: Tool, args: dict[str, Any]) -> list[str]:
        problems: list[str] = []
        properties = tool.input_schema.get("properties", {})
        for key in args:
            if key not in properties:
                problems.append(_unknown_argument(tool, key))
        for error in self._validator(tool).iter_errors(args):
            if error.validator != "additionalProperties":
                problems.append(_describe(tool, error))
        return problems[:5]

    # --- running -------------------------------------------------------------------------

    async def _search(self, tool: Tool, args: dict[str, Any], request_id: str) -> ToolResult:
        assert tool.entity is not None
        where = {key: value for key, value in args.items() if key in tool.filters}
        limit = int(args.get("limit", self.default_limit))
        fields: Sequence[str] | None = args.get("fields")
        cursor: str | None = args.get("cursor")

        async def page(count: int) -> tuple[list[str], str | None]:
            result = await self.hub.fetch(
                tool.entity or "",
                where,
                since=args.get("since"),
                limit=count,
                cursor=cursor,
                consumer=self.consumer,
                via=self.via,
                request_id=request_id,
            )
            return [
                to_json_text(record_data(r, fields)) for r in result.records
            ], result.next_cursor

        def answer(shown: Sequence[str], after: str | None, by_size: bool) -> str:
            meta: dict[str, Any] = {
                "tool": tool.name,
                "request_id": request_id,
                "returned": len(shown),
                "truncated": after is not None,
                "truncated_by": None if after is None else "size_budget" if by_size else "limit",
                "next_cursor": after,
            }
            if after is not None:
                meta["hint"] = (
                    f"more records match: call {tool.name} again with the same "
                    "arguments and cursor=next_cursor"
                    + ("; fewer fields fit more records per answer" if by_size else "")
                )
            return json_envelope(shown, meta)

        # Room for the records: the budget less the envelope, with a cursor about as long as
        # the Hub's (they grow a little with the positions they hold).
        room = self.budget.max_chars - len(answer([], "x" * 200, True)) - 40
        # Ask for as many as the records seen before suggest will fit, so that a page is
        # usually read once (and audited once).
        size_key = (tool.name, tuple(fields or ()))
        seen = self._record_chars.get(size_key)
        count = limit if seen is None else max(1, min(limit, room // seen))
        by_size = count < limit
        items, next_cursor = await page(count)
        if items:
            self._record_chars[size_key] = sum(len(i) + 1 for i in items) // len(items) + 1
        text = answer(items, next_cursor, by_size)
        # Too many after all: fewer records need a cursor right after the last one shown, so
        # the same page is asked again with that many records (the Hub's cursors continue
        # after a page, not inside one).
        while len(text) > self.budget.max_chars:
            by_size = True
            count = min(len(items) - 1, fitting(items, room))
            if count == 0:
                return self._too_large(tool, cursor, request_id)
            items, next_cursor = await page(count)
            text = answer(items, next_cursor, True)
        return self._result(text, truncated=next_cursor is not None, next_cursor=next_cursor)

    def _too_large(self, tool: Tool, cursor: str | None, request_id: str) -> ToolResult:
        # Not even one record fits: say so, and continue from the same place (never skip it).
        return self._error(
            "too_large",
            f"the next {tool.entity} record alone is larger than the answer size budget "
            f"({self.budget.max_chars} characters); call {tool.name} again with fields=[...] "
            f"choosing fewer of: {', '.join(tool.fields)}"
            + ("" if cursor is None else " (and the same cursor)"),
            request_id,
        )

    async def _get(self, tool: Tool, args: dict[str, Any], request_id: str) -> ToolResult:
        record = await self.hub.get(
            tool.entity or "",
            args["id"],
            consumer=self.consumer,
            via=self.via,
            request_id=request_id,
        )
        item = to_json_text(record_data(record, args.get("fields")))
        text = json_envelope([item], {"tool": tool.name, "request_id": request_id, "returned": 1})
        if len(text) > self.budget.max_chars:
            return self._too_large(tool, None, request_id)
        return self._result(text)

    def _list_entities(self, tools: ToolSet, request_id: str) -> ToolResult:
        entities = []
        for view in tools.entities:
            entities.append(
                {
                    "name": view.name,
                    "description": view.description,
                    "tools": [t.name for t in tools if t.entity == view.name],
                    "fields": {f.name: _field_note(f) for f in view.fields if f.name != "raw"},
                }
            )
        text = to_json_text({"request_id": request_id, "entities": entities})
        if len(text) > self.budget.max_chars:
            # A catalog too large for the budget: names and tools only, and where the rest is.
            for entry in entities:
                entry.pop("fields")
            text = to_json_text(
                {
                    "request_id": request_id,
                    "truncated": True,
                    "hint": "fields left out to fit the answer size; each tool's description "
                    "lists its entity's fields",
                    "entities": entities,
                }
            )
        return self._result(text, truncated=len(entities) > 0 and "fields" not in entities[0])

    async def _not_offered(
        self, name: str, tools: ToolSet, args: dict[str, Any], request_id: str
    ) -> ToolResult:
        """A tool this consumer was not offered. For an entity that exists, the Hub is asked
        anyway so that the refusal is its own (and audited), not only the tool list's."""
        match = re.fullmatch(r"(search|get)_(\w+)", name)
        offered = f"your tools: {', '.join(tools.names)}"
        if match and match.group(2) in self.hub.entities():
            entity = match.group(2)
            if self.may_read is not None and not self.may_read(entity):
                return self._error(
                    "access_denied",
                    f"{name}: the credential's scopes do not include read:{entity}; {offered}",
                    request_id,
                )
            if match.group(1) == "search":
                await self.hub.fetch(
                    entity, limit=1, consumer=self.consumer, via=self.via, request_id=request_id
                )
            else:
                await self.hub.get(
                    entity,
                    str(args.get("id") or f"{entity}:-"),
                    consumer=self.consumer,
                    via=self.via,
                    request_id=request_id,
                )
            return self._error(
                "access_denied",
                f"{name} is not offered to consumer {self.consumer!r}; {offered}",
                request_id,
            )
        close = difflib.get_close_matches(name, tools.names, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        return self._error("unknown_tool", f"unknown tool {name!r}; {hint}{offered}", request_id)

    # --- answers ---------------------------------------------------------------------------

    def _result(
        self, text: str, *, truncated: bool = False, next_cursor: str | None = None
    ) -> ToolResult:
        data = json.loads(text)
        return ToolResult(text, data, False, truncated, next_cursor, self.budget.tokens(text))

    def _error(self, kind: str, message: str, request_id: str) -> ToolResult:
        data = {"error": kind, "message": message, "request_id": request_id}
        text = to_json_text(data)
        return ToolResult(text, data, True, estimated_tokens=self.budget.tokens(text))


def _field_note(field: FieldView) -> str:
    """``"email"``, ``"text, masked (partial)"``: what a model needs to know of one field."""
    note = field.kind
    if field.masked:
        note += f", masked ({field.masked})"
    elif not field.filterable:
        note += ", not filterable"
    return note


# --- messages for wrong arguments ----------------------------------------------------------


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _filter_names(tool: Tool, path: str) -> list[str]:
    return [arg.name for arg in tool.filters.values() if arg.path == path]


def _unknown_argument(tool: Tool, key: str) -> str:
    if tool.kind != "search":
        names = list(tool.input_schema.get("properties", {}))
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown argument {key!r}{hint}; arguments: {', '.join(names) or '(none)'}"
    whole = _filter_names(tool, key.replace("__", "."))
    if whole:  # a field whose plain equality is not offered (a timestamp): it needs an op
        return f"{key} needs an operator; valid: {', '.join(whole)}"
    head, sep, op = key.rpartition("__")
    path = head.replace("__", ".")
    valid = _filter_names(tool, path) if sep else []
    if valid:
        ops = ", ".join(str(a.op) for a in tool.filters.values() if a.path == path)
        what = "is not available" if op in Op.__members__.values() else "is not an operator"
        return f"{op!r} {what} for {path} (operators: {ops}); valid: {', '.join(valid)}"
    fields = sorted({arg.path.replace(".", "__") for arg in tool.filters.values()})
    if key.split("__", 1)[0] in tool.fields:
        return (
            f"{key.replace('__', '.')} cannot be filtered on; filter fields: "
            f"{', '.join(fields) or '(none)'}"
        )
    close = difflib.get_close_matches(key, [*tool.filters, *_OPTIONS], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"unknown argument {key!r}{hint}; filter fields: {', '.join(fields) or '(none)'} "
        f"(as field or field__op); other arguments: {', '.join(_OPTIONS)}"
    )


def _describe(tool: Tool, error: ValidationError) -> str:
    where = ".".join(str(p) for p in error.absolute_path) or "arguments"
    argument = str(error.absolute_path[0]) if error.absolute_path else ""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "enum":
        choices = ", ".join(str(c) for c in schema.get("enum", []))
        if argument == "fields":
            return (
                f"fields: {_short(error.instance)} is not a field of {tool.entity}; "
                f"fields: {choices}"
            )
        return f"{where}: {_short(error.instance)} is not one of {choices}"
    if error.validator == "type":
        return f"{where}: expected {schema.get('type')}, got {_short(error.instance)}"
    if error.validator in ("minimum", "maximum"):
        return (
            f"{where}: must be between {schema.get('minimum', '-')} and "
            f"{schema.get('maximum', '-')}, got {_short(error.instance)}"
        )
    if error.validator == "format":
        example = "2024-05-01" if schema.get("format") == "date" else "2024-05-01T00:00:00Z"
        return (
            f"{where}: {_short(error.instance)} is not a valid {schema.get('format')} "
            f"(e.g. {example})"
        )
    if error.validator == "required":
        return f"missing argument: {error.message.split(' ')[0]}"
    if error.validator == "minItems":
        return f"{where}: give at least one value"
    if error.validator == "uniqueItems":
        return f"{where}: each value only once"
    if error.validator == "minLength":
        return f"{where}: must not be empty"
    return f"{where}: {error.message[:120]}"
