"""Schema drift: a legacy change caught before it silently becomes nulls.

``check`` describes each origin a mapping reads (``Connector.describe``) and compares it with what
the mapping needs: a column that disappeared is reported at once; a column whose type changed is
reported against the baseline recorded in the ``state`` database the first time the source was
checked (``accept`` records the current schema as the new baseline). Each finding names the
source, its owner, and the mapping path that reads the column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import sqlalchemy as sa

from patchbay import state
from patchbay.core.connector import TableInfo
from patchbay.core.quarantine import metadata

__all__ = ["Drift", "SchemaBaseline", "compare"]

baseline_table = sa.Table(
    "patchbay_schema_baseline",
    metadata,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("origin", sa.String(500), primary_key=True),
    sa.Column("column", sa.String(500), primary_key=True),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Drift:
    source: str
    owner: str | None
    entity: str
    mapping_path: str  # e.g. sources.erp.entities.contact.fields.email
    origin: str  # the table or file
    column: str
    problem: str  # "missing table", "missing column", "type changed"
    detail: str

    def __str__(self) -> str:
        who = f" (owner: {self.owner})" if self.owner else ""
        return f"{self.source}{who}: {self.mapping_path}: {self.detail}"


def origin_key(origin: Mapping[str, Any]) -> str:
    """A stable name for a ``from:`` block, for the baseline."""
    return ", ".join(f"{k}={origin[k]}" for k in sorted(origin))


def compare(
    *,
    source: str,
    owner: str | None,
    entity: str,
    reads: Sequence[tuple[str, str, Mapping[str, Any]]],
    described: Mapping[str, TableInfo | None],
    baseline: Mapping[tuple[str, str], str],
) -> list[Drift]:
    """Findings for one mapping. ``described`` maps origin keys to what describe returned."""
    findings: list[Drift] = []
    for spec_path, path, origin in reads:
        key = origin_key(origin)
        info = described.get(key)
        if info is None:
            continue  # the origin cannot be described: nothing to compare
        where = f"sources.{source}.entities.{entity}.{spec_path}"
        column = path.split(".", 1)[0]  # a nested JSON path lives in its top-level field
        finding = partial(Drift, source, owner, entity, where, info.name, column)
        if not info.columns:
            findings.append(finding("missing table", f"{info.name} is gone (or has no columns)"))
            continue
        types = {c.name.lower(): c.type for c in info.columns}
        current = types.get(column.lower())
        if current is None:
            findings.append(
                finding(
                    "missing column",
                    f"column {column!r} is no longer in {info.name}; it has "
                    f"{', '.join(c.name for c in info.columns)}",
                )
            )
            continue
        before = baseline.get((key, column.lower()))
        if before is not None and before != current:
            findings.append(
                finding(
                    "type changed",
                    f"column {column!r} of {info.name} changed type from {before} to {current}",
                )
            )
    return findings


class SchemaBaseline:
    """The column types recorded for each source, in the state database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        state.upgrade(engine)

    def get(self, source: str) -> dict[tuple[str, str], str]:
        t = baseline_table
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.origin, t.c.column, t.c.type).where(t.c.source == source)
            )
            return {(origin, column): kind for origin, column, kind in rows}

    def record(
        self, source: str, described: Mapping[str, TableInfo | None], now: datetime | None = None
    ) -> None:
        """Replace the source's baseline with what was described now."""
        now = now or datetime.now(UTC)
        t = baseline_table
        unique = {
            (key, c.name.lower()): c.type
            for key, info in described.items()
            if info is not None
            for c in info.columns
        }
        rows = [
            {"source": source, "origin": key, "column": column, "type": kind, "recorded_at": now}
            for (key, column), kind in unique.items()
        ]
        with self.engine.begin() as conn:
            conn.execute(t.delete().where(t.c.source == source))
            if rows:
                conn.execute(t.insert(), rows)
