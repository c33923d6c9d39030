"""Quarantine: rows that failed validation, kept with their reasons in the ``state`` database.

A row is identified by a fingerprint of (source, entity, remote id, raw row), so reading the same
bad row again updates ``last_seen`` and ``times_seen`` instead of piling up copies. Fixed rows
(another raw content) get a new entry; ``purge`` clears what is no longer wanted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from patchbay import state
from patchbay.core.mapping import Quarantined

__all__ = ["QuarantineEntry", "QuarantineStore", "metadata"]

metadata = sa.MetaData()

quarantine_table = sa.Table(
    "patchbay_quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("entity", sa.String(200), nullable=False),
    sa.Column("remote_id", sa.String(500)),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list of strings
    sa.Column("raw", sa.Text, nullable=False),  # JSON object
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("times_seen", sa.Integer, nullable=False, default=1),
)


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    id: int
    source: str
    entity: str
    remote_id: str | None
    reasons: tuple[str, ...]
    raw: dict[str, Any]
    first_seen: datetime
    last_seen: datetime
    times_seen: int


def _fingerprint(item: Quarantined) -> str:
    text = json.dumps(
        [item.source, item.entity, item.remote_id, item.raw], sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes even for timezone=True columns; they were stored as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class QuarantineStore:
    """Synchronous store; the Hub calls it from a worker thread, off the event loop."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        state.upgrade(engine)

    def add(self, items: Sequence[Quarantined], now: datetime | None = None) -> None:
        if not items:
            return
        now = now or datetime.now(UTC)
        by_print = {_fingerprint(item): item for item in items}
        t = quarantine_table
        with self.engine.begin() as conn:
            known = set(
                conn.scalars(sa.select(t.c.fingerprint).where(t.c.fingerprint.in_(list(by_print))))
            )
            if known:
                conn.execute(
                    t.update()
                    .where(t.c.fingerprint.in_(list(known)))
                    .values(last_seen=now, times_seen=t.c.times_seen + 1)
                )
            fresh = [
                {
                    "fingerprint": fp,
                    "source": item.source,
                    "entity": item.entity,
                    "remote_id": item.remote_id,
                    "reasons": json.dumps(list(item.reasons)),
                    "raw": json.dumps(item.raw, default=str),
                    "first_seen": now,
                    "last_seen": now,
                    "times_seen": 1,
                }
                for fp, item in by_print.items()
                if fp not in known
            ]
            if fresh:
                conn.execute(t.insert(), fresh)

    def list(
        self, *, source: str | None = None, entity: str | None = None, limit: int = 100
    ) -> list[QuarantineEntry]:
        t = quarantine_table
        query = sa.select(t).order_by(t.c.id).limit(limit)
        if source:
            query = query.where(t.c.source == source)
        if entity:
            query = query.where(t.c.entity == entity)
        with self.engine.connect() as conn:
            return [self._entry(row) for row in conn.execute(query).mappings()]

    def get(self, entry_id: int) -> QuarantineEntry | None:
        t = quarantine_table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == entry_id)).mappings().first()
        return self._entry(row) if row else None

    def count(self, *, source: str | None = None, entity: str | None = None) -> int:
        t = quarantine_table
        query = sa.select(sa.func.count()).select_from(t)
        if source:
            query = query.where(t.c.source == source)
        if entity:
            query = query.where(t.c.entity == entity)
        with self.engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def purge(self, *, source: str | None = None, entity: str | None = None) -> int:
        t = quarantine_table
        query = t.delete()
        if source:
            query = query.where(t.c.source == source)
        if entity:
            query = query.where(t.c.entity == entity)
        with self.engine.begin() as conn:
            return int(conn.execute(query).rowcount or 0)

    @staticmethod
    def _entry(row: sa.RowMapping) -> QuarantineEntry:
        return QuarantineEntry(
            id=row["id"],
            source=row["source"],
            entity=row["entity"],
            remote_id=row["remote_id"],
            reasons=tuple(json.loads(row["reasons"])),
            raw=json.loads(row["raw"]),
            first_seen=_aware(row["first_seen"]),
            last_seen=_aware(row["last_seen"]),
            times_seen=row["times_seen"],
        )
