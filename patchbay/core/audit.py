"""The audit log: one row per request a consumer made, from any front door.

``AuditTicket`` follows one request (query, fetch or get) and is finished exactly once: when the
stream ends, fails, is closed, or is dropped unfinished (a finalizer then records what was
delivered). Finished entries go to ``AuditWriter``, a background thread that writes them in
batches to ``patchbay_audit`` in the ``state`` database (migration 0003), off the read path. Its
queue is bounded: when the database falls behind, requests wait for room rather than losing
rows. ``close()`` (called by ``Hub.close``) writes everything still queued.

Filter values of masked fields are stored masked (``EntityPolicy.mask_filter``); ``record_ids``
holds the first ``MAX_IDS`` ids, ``record_count`` the total delivered.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from patchbay import state
from patchbay.core.consumers import AccessDenied, RateLimited
from patchbay.resilience import Clock

__all__ = [
    "MAX_IDS",
    "OUTCOMES",
    "VIAS",
    "AuditEntry",
    "AuditTicket",
    "AuditWriter",
    "audit_table",
    "read_audit",
]

log = logging.getLogger("patchbay.audit")

MAX_IDS = 100
OUTCOMES = ("ok", "denied", "error", "rate_limited")
VIAS = ("python", "cli", "rest", "mcp", "tool")

audit_table = sa.Table(
    "patchbay_audit",
    sa.MetaData(),
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("consumer", sa.String(200), nullable=False),
    sa.Column("via", sa.String(20), nullable=False),
    sa.Column("request_id", sa.String(200)),
    sa.Column("tenant", sa.String(200)),
    sa.Column("operation", sa.String(20), nullable=False),
    sa.Column("entity", sa.String(200), nullable=False),
    sa.Column("filters", sa.Text),
    sa.Column("sources", sa.Text, nullable=False),
    sa.Column("record_count", sa.Integer, nullable=False),
    sa.Column("record_ids", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("error", sa.String(200)),
    sa.Column("duration_ms", sa.Float, nullable=False),
)


@dataclass
class AuditEntry:
    """One audit row."""

    id: str
    at: datetime
    consumer: str
    via: str
    request_id: str | None
    tenant: str | None
    operation: str
    entity: str
    filters: Any  # the JSON filter form, masked values masked; None without a filter
    sources: list[str]
    record_count: int
    record_ids: list[str]
    outcome: str
    error: str | None  # the error class, for outcomes other than ok
    duration_ms: float

    def to_row(self) -> dict[str, Any]:
        # Not asdict(): it deep-copies the (up to MAX_IDS) record ids only for them to be
        # JSON-encoded; that copy was most of the audit writer's time.
        row = {name: getattr(self, name) for name in _COLUMNS}
        row["filters"] = None if self.filters is None else json.dumps(self.filters)
        row["sources"] = json.dumps(self.sources)
        row["record_ids"] = json.dumps(self.record_ids)
        return row

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> AuditEntry:
        at = row["at"]
        return cls(
            id=row["id"],
            at=at if at.tzinfo else at.replace(tzinfo=UTC),
            consumer=row["consumer"],
            via=row["via"],
            request_id=row["request_id"],
            tenant=row["tenant"],
            operation=row["operation"],
            entity=row["entity"],
            filters=None if row["filters"] is None else json.loads(row["filters"]),
            sources=json.loads(row["sources"]),
            record_count=row["record_count"],
            record_ids=json.loads(row["record_ids"]),
            outcome=row["outcome"],
            error=row["error"],
            duration_ms=row["duration_ms"],
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = self.at.isoformat()
        return data


_COLUMNS = tuple(f.name for f in fields(AuditEntry))


def outcome_of(exc: BaseException) -> str:
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, AccessDenied):
        return "denied"
    return "error"


@dataclass
class AuditTicket:
    """One request being audited: filled in as it runs, submitted once by ``finish``."""

    writer: AuditWriter | None = field(repr=False)
    clock: Clock = field(repr=False)
    consumer: str
    via: str
    request_id: str | None
    tenant: str | None
    operation: str
    entity: str
    filters: Any = None
    sources: list[str] = field(default_factory=list)
    record_count: int = 0
    record_ids: list[str] = field(default_factory=list)
    at: datetime = field(init=False)
    _started: float = field(init=False, repr=False)
    _done: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.at = self.clock.now()
        self._started = self.clock.monotonic()

    def delivered(self, ids: Iterable[str]) -> None:
        for record_id in ids:
            self.record_count += 1
            if len(self.record_ids) < MAX_IDS:
                self.record_ids.append(record_id)

    def fail(self, exc: BaseException) -> None:
        self.finish(outcome_of(exc), type(exc).__name__)

    def finish(self, outcome: str = "ok", error: str | None = None) -> None:
        """Submit the entry; later calls do nothing (exactly once per request)."""
        if self._done:
            return
        self._done = True
        if self.writer is None:
            return
        elapsed = max(0.0, (self.clock.monotonic() - self._started) * 1000)
        self.writer.submit(
            AuditEntry(
                id=uuid.uuid4().hex,
                at=self.at,
                consumer=self.consumer,
                via=self.via,
                request_id=self.request_id,
                tenant=self.tenant,
                operation=self.operation,
                entity=self.entity,
                filters=self.filters,
                sources=list(self.sources),
                record_count=self.record_count,
                record_ids=list(self.record_ids),
                outcome=outcome,
                error=error,
                duration_ms=round(elapsed, 3),
            )
        )


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class AuditWriter:
    """Writes audit entries from a background thread, in batches of up to ``batch_size``.

    After the first entry of a batch the thread waits up to ``linger`` seconds for more: one
    transaction per request cost about as much CPU as the rest of a 100-record page on the
    gateway, and the thread took it from the requests (the GIL); a batch of everything that
    arrived in the meantime costs about the same as one entry. ``flush`` and ``close`` end the
    wait at once. The state database is migrated (``patchbay.state.upgrade``) by the thread
    before its first write. A batch that fails to write is kept and tried again with the next
    one; what is still unwritten at ``close`` is logged (its count, not its content) as lost.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        max_queue: int = 10_000,
        batch_size: int = 500,
        linger: float = 0.1,
    ):
        self.engine = engine
        self.batch_size = batch_size
        self.linger = linger
        self._hurry = threading.Event()  # set by flush and close: stop lingering
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._pending: list[AuditEntry] = []

    def __repr__(self) -> str:
        return f"AuditWriter(queued={self._queue.qsize()})"

    def submit(self, entry: AuditEntry) -> None:
        if self._closed:
            log.error(
                "audit entry of a %s on %s by %r arrived after the hub closed; not written",
                entry.operation,
                entry.entity,
                entry.consumer,
            )
            return
        self._start()
        # Blocks only when the queue is full: back-pressure rather than lost rows.
        self._queue.put(entry)

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything submitted so far is written (or failed to be)."""
        if self._thread is None:
            return
        marker = _Flush()
        self._queue.put(marker)
        self._hurry.set()
        marker.done.wait(timeout)

    def close(self) -> None:
        """Write what is queued and stop the thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._hurry.set()
            self._thread.join()
            self._thread = None

    def _start(self) -> None:
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="patchbay-audit", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        migrated = False
        while True:
            items = self._collect()
            self._pending.extend(i for i in items if isinstance(i, AuditEntry))
            if self._pending:
                try:
                    if not migrated:
                        state.upgrade(self.engine)
                        migrated = True
                    self._write(self._pending)
                    self._pending = []
                except Exception as exc:  # the writer must outlive any database trouble
                    log.error(
                        "cannot write %d audit rows to the state database (%s); "
                        "trying again with the next ones",
                        len(self._pending),
                        type(exc).__name__,
                    )
            for marker in items:
                if isinstance(marker, _Flush):
                    marker.done.set()
            if any(i is _STOP for i in items):
                if self._pending:
                    log.error("%d audit rows could not be written", len(self._pending))
                return

    def _collect(self) -> list[Any]:
        """The next batch: what arrived within ``linger`` of its first item, up to
        ``batch_size``; ``flush`` and ``close`` cut the wait short.

        The thread sleeps through the linger instead of waking for every entry: a wake-up per
        request would cost the requests a switch of the GIL each."""
        items = [self._queue.get()]
        if isinstance(items[0], AuditEntry) and self.linger > 0:
            self._hurry.wait(self.linger)
            self._hurry.clear()  # a marker that set it is in the queue already: drained below
        while len(items) < self.batch_size:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _write(self, entries: Sequence[AuditEntry]) -> None:
        with self.engine.begin() as conn:
            conn.execute(audit_table.insert(), [e.to_row() for e in entries])


def read_audit(
    engine: sa.Engine,
    *,
    consumer: str | None = None,
    entity: str | None = None,
    since: datetime | None = None,
    outcome: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """The newest audit rows first, filtered (the ``patchbay audit`` listing)."""
    state.upgrade(engine)
    query = sa.select(audit_table)
    if consumer is not None:
        query = query.where(audit_table.c.consumer == consumer)
    if entity is not None:
        query = query.where(audit_table.c.entity == entity)
    if since is not None:
        query = query.where(audit_table.c.at >= since)
    if outcome is not None:
        query = query.where(audit_table.c.outcome == outcome)
    query = query.order_by(audit_table.c.at.desc(), audit_table.c.id).limit(limit)
    with engine.connect() as conn:
        return [AuditEntry.from_row(row) for row in conn.execute(query).mappings()]
