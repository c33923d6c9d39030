"""Records as text for people: compact cells and default columns (used by the CLI and demo)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from patchbay.core.entities import Address, Money, Record

__all__ = ["cell", "default_columns", "to_json", "value_at"]

_ENVELOPE = ("id",)
_SKIP = frozenset({"source", "remote_id", "extra", "raw", "updated_at"})


def value_at(record: BaseModel, path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if value is None:
            return None
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
    return value


def cell(value: Any) -> str:
    """One value as a short table cell."""
    if value is None:
        return ""
    if isinstance(value, Money):
        return f"{value.amount} {value.currency}"
    if isinstance(value, Address):
        return ", ".join(
            p for p in (value.line1, value.city, value.postal_code, value.country) if p
        )
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, date | Decimal):
        return str(value)
    if isinstance(value, list):
        return f"{len(value)} items"
    if isinstance(value, dict):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def default_columns(model: type[Record], records: Sequence[Record], limit: int = 7) -> list[str]:
    """The id and the first fields that hold a value in any of ``records``."""
    columns = list(_ENVELOPE)
    for name in model.model_fields:
        if name in _SKIP or name in columns:
            continue
        if any(getattr(r, name, None) not in (None, [], {}) for r in records):
            columns.append(name)
        if len(columns) >= limit:
            break
    return columns


def to_json(record: Record, fields: Iterable[str] | None = None) -> dict[str, Any]:
    data = record.model_dump(mode="json", exclude={"raw"} if record.raw is None else None)
    if fields is None:
        return data
    out: dict[str, Any] = {"id": data["id"]}
    for path in fields:
        value: Any = data
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        out[path] = value
    return out
