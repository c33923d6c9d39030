"""The Hub: builds every source from config, routes queries, and is what every front door holds.

One query, in order:

1. the filter (keywords or JSON) is parsed and bound to the entity: unknown fields and bad
   values fail here, before any source is touched;
2. per source, conditions the mapping and the connector can evaluate at the source are pushed
   down (see :mod:`patchbay.core.transforms` for the source forms); the rest stay in memory;
3. sources are read concurrently, each into a small bounded buffer;
4. batches are mapped and validated; bad rows go to quarantine with their reasons;
5. every condition is re-checked on the canonical record, so push-down can only narrow the scan,
   never change the result.

Every call runs as a consumer (``patchbay.core.policy``): its policy is checked before planning
(entity, operation, fields of the filter and order, tenant), its row filter joins the filter at
step 1, its rate limit is taken once the request is valid, and its records come out as views
(visible fields only, masked where masked). Each query, fetch and get is written once to the
audit log (``patchbay.core.audit``), off the read path.

Records come out in a stable order: without ``order_by``, source by source (in config order),
each by its id; with ``order_by``, a streaming merge of the sources sorted on that field.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import re
import secrets
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from opentelemetry import trace
from redis.asyncio import Redis

from patchbay.auth import MemoryTokenStore, TokenStore
from patchbay.config import Config, SourceConfig, for_tenant, load_config, mask_url
from patchbay.core.audit import VIAS, AuditTicket, AuditWriter
from patchbay.core.connector import (
    Batch,
    Capability,
    Connector,
    GetRequest,
    LinesRequest,
    Position,
    ReadRequest,
    Resources,
    SourceFilter,
    SourceOrder,
    SourceSchema,
    SqlSettings,
    TableInfo,
)
from patchbay.core.consumers import LOCAL, AccessDenied, Consumer, RateLimited
from patchbay.core.cursor import CursorSigner, query_digest
from patchbay.core.drift import Drift, SchemaBaseline, compare, origin_key
from patchbay.core.entities import Record
from patchbay.core.errors import (
    ConfigError,
    QuarantinedRecord,
    QueryError,
    RecordNotFound,
    SourceError,
    SourceUnavailable,
)
from patchbay.core.filters import (
    BoolOp,
    BoundCondition,
    BoundFilter,
    Condition,
    FieldKind,
    Filter,
    Op,
    bind,
    getter,
    lookup_field,
    parse,
    to_json,
)
from patchbay.core.gcpause import relaxed_gc
from patchbay.core.ids import split_id
from patchbay.core.mapping import Mapping as EntityMapping
from patchbay.core.mapping import Quarantined
from patchbay.core.policy import EntityPolicy, EntityView, compile_policy, sortable_fields
from patchbay.core.quality import SAMPLE, QualityReport, SourceFailure
from patchbay.core.quarantine import QuarantineStore
from patchbay.core.transforms import SourceForm
from patchbay.resilience import (
    CircuitBreaker,
    Clock,
    Events,
    Limiter,
    RedisTokenBucket,
    SystemClock,
    TokenBucket,
    run_sql,
)

__all__ = ["Hub", "Page", "Plan", "SourcePlan"]

log = logging.getLogger("patchbay.hub")

# Every time-zone offset in use lies within ±14 h of UTC: a datetime bound widened by that much is
# safe to push to a source whose column may be naive local time, whatever its zone.
_TZ_MARGIN = timedelta(hours=14)
_DONE = {"done": True}


@dataclass(frozen=True)
class SourcePlan:
    source: str
    owner: str | None
    mapping: EntityMapping
    pushed: tuple[SourceFilter, ...]
    order: tuple[SourceOrder, ...]
    kept: tuple[str, ...]  # conditions evaluated only in memory, with the reason
    excluded: str | None = None  # why this source cannot hold any match (it is not read)


@dataclass(frozen=True)
class Plan:
    entity: str
    model: type[Record]
    filter: BoundFilter
    order_by: tuple[str, bool] | None  # (field, descending)
    sources: tuple[SourcePlan, ...]
    consumer: Consumer
    tenant: str | None = None
    rules: EntityPolicy | None = None  # the consumer's policy for the entity (None: trusted)

    @property
    def digest(self) -> str:
        return query_digest(
            {
                "entity": self.entity,
                "tenant": self.tenant,
                "where": to_json(self.filter.node),
                "order": list(self.order_by) if self.order_by else None,
                "sources": [s.source for s in self.sources],
                "consumer": self.consumer.name,
            }
        )

    def describe(self) -> dict[str, Any]:
        """What goes where: the JSON shown by ``patchbay explain``."""
        return {
            "entity": self.entity,
            "where": to_json(self.filter.node),
            "order_by": (("-" if self.order_by[1] else "") + self.order_by[0])
            if self.order_by
            else None,
            "sources": [
                {
                    "source": s.source,
                    "read": s.excluded is None,
                    "excluded_because": s.excluded,
                    "pushed_down": [
                        {
                            "path": f.path,
                            "op": str(f.op),
                            "value": to_json_value(f.value),
                            "case_insensitive": f.fold,
                        }
                        for f in s.pushed
                    ],
                    "order": [{"path": o.path, "descending": o.descending} for o in s.order],
                    "in_memory_only": list(s.kept),
                    "rechecked_in_memory": [str(c) for c in _conditions_text(self.filter)],
                }
                for s in self.sources
            ],
        }


def to_json_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value if isinstance(value, str | int | float | bool | None) else str(value)


def _conditions_text(bound: BoundFilter) -> list[str]:
    return [f"{c.field.path} {c.op} {to_json_value(c.value)}" for c in bound.conjuncts] or (
        ["(complex filter)"] if bound.node is not None else []
    )


@dataclass
class Page:
    records: list[Record]
    next_cursor: str | None
    quality: QualityReport
    errors: list[SourceFailure]


@dataclass(slots=True)
class Chunk:
    """Records of one source batch that passed the filter, with their rows' indexes there.

    Records travel through the pipeline in chunks; the resume position after a record is
    computed from ``batch`` and its index only where a cursor needs it.
    """

    source: str
    batch: Batch
    records: list[Record]
    indexes: list[int]

    def head(self, count: int) -> Chunk:
        return Chunk(self.source, self.batch, self.records[:count], self.indexes[:count])


class QueryStream:
    """``async for record in hub.query(...)``; ``quality`` and ``errors`` fill in as it runs."""

    def __init__(
        self,
        run: Callable[[QueryStream], AsyncGenerator[Chunk, None]],
        ticket: AuditTicket | None = None,
    ):
        self.quality = QualityReport()
        self.errors: list[SourceFailure] = []
        self._run = run
        self._chunks: AsyncGenerator[Chunk, None] | None = None
        self._current: list[Record] = []
        self._index = 0
        self._ticket = ticket
        if ticket is not None:
            # A stream dropped unfinished is audited once all the same, with what it delivered.
            weakref.finalize(self, ticket.finish)

    def __aiter__(self) -> QueryStream:
        return self

    async def __anext__(self) -> Record:
        # Records travel in batches through the pipeline; here they come out one by one.
        try:
            while self._index >= len(self._current):
                if self._chunks is None:
                    self._chunks = self._run(self)
                self._current = (await self._chunks.__anext__()).records
                self._index = 0
        except StopAsyncIteration:
            if self._ticket is not None:
                self._ticket.finish()
            raise
        except BaseException as exc:
            if self._ticket is not None:
                self._ticket.fail(exc)
            raise
        record = self._current[self._index]
        self._index += 1
        if self._ticket is not None:
            self._ticket.delivered((record.id,))
        return record

    async def aclose(self) -> None:
        try:
            if self._chunks is not None:
                await self._chunks.aclose()
        finally:
            if self._ticket is not None:
                self._ticket.finish()


class Hub:
    """Async entry point. ``async with Hub.from_config("patchbay.yaml") as hub: ...``"""

    def __init__(
        self,
        config: Config,
        *,
        strict: bool = False,
        pushdown: bool = True,
        clock: Clock | None = None,
    ) -> None:
        """``strict``: raise QuarantinedRecord instead of quarantining. ``pushdown=False``:
        evaluate every filter in memory only (results are the same; for checking and debugging).
        ``clock``: the time of consumers' rate limits and of the audit log.
        """
        self.config = config
        self.strict = strict
        self.pushdown = pushdown
        self.clock: Clock = clock or SystemClock()
        self._consumers: dict[str, Consumer] = {}
        self._limiters: dict[str, Limiter] = {}
        self._audit: AuditWriter | None = None
        self._everything: dict[str, EntityPolicy] = {}  # a trusted consumer's catalog entries
        self._connectors: dict[tuple[str, str], Connector] = {}  # by (source, tenant)
        self._engines: list[sa.Engine] = []
        self._state: sa.Engine | None = None
        self._quarantine: QuarantineStore | None = None
        self._clients: list[httpx.AsyncClient] = []
        # Streams a caller may leave unfinished: closed (readers, connections) by close().
        self._streams: weakref.WeakSet[QueryStream] = weakref.WeakSet()
        self._redis: Redis | None = None
        self._token_store: TokenStore | None = None
        # Retries, waits and breaker transitions of every source, for logs and metrics.
        self.events = Events()
        # Spans around source reads; the global provider's (a no-op until one is configured)
        # unless a front door hands its own (the gateway's ``tracer_provider``).
        self.tracer: trace.Tracer = trace.get_tracer("patchbay.hub")
        self._signer: CursorSigner | None = None
        self._lock = asyncio.Lock()

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] = "patchbay.yaml", **kwargs: Any) -> Hub:
        return cls(load_config(path), **kwargs)

    async def __aenter__(self) -> Hub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- catalog -----------------------------------------------------------------------------

    def entities(self) -> list[str]:
        """Entities at least one source serves, in name order."""
        return sorted({e for s in self.config.sources.values() for e in s.mappings})

    def sources(self) -> list[SourceConfig]:
        return list(self.config.sources.values())

    # --- state ---------------------------------------------------------------------------------

    @property
    def state_engine(self) -> sa.Engine:
        """The engine of patchbay's own tables (the ``state`` URL), opened on first use."""
        if self._state is None:
            url = self.config.state_url
            if url.startswith("sqlite:///") and ":memory:" not in url:
                Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
            self._state = sa.create_engine(url, pool_pre_ping=True)
            self._engines.append(self._state)
        return self._state

    @property
    def redis(self) -> Redis | None:
        """The shared Redis (token refreshes, rate limits, breakers), when configured."""
        if self._redis is None and self.config.spec.redis:
            self._redis = Redis.from_url(self.config.spec.redis)
        return self._redis

    @property
    def token_store(self) -> TokenStore:
        """Where OAuth tokens outlive the process: the encrypted credential store when a
        secret_key is configured, else memory (a refresh token then needs a new login after
        a restart)."""
        if self._token_store is None:
            if self.config.secret_key:
                from patchbay.auth.store import CredentialStore, CredentialTokenStore
                from patchbay.config import StoreOpener

                opener = StoreOpener(
                    self.config.spec, base_dir=self.config.base_dir, file=self.config.file
                )
                store = CredentialStore(self.state_engine, opener.keys("secret_key"))
                self._token_store = CredentialTokenStore(store)
            else:
                self._token_store = MemoryTokenStore()
        return self._token_store

    @property
    def quarantine(self) -> QuarantineStore:
        if self._quarantine is None:
            self._quarantine = QuarantineStore(self.state_engine)
        return self._quarantine

    @property
    def signer(self) -> CursorSigner:
        if self._signer is None:
            self._signer = CursorSigner(self._cursor_key())
        return self._signer

    def _cursor_key(self) -> bytes:
        if self.config.secret_key:
            return self.config.secret_key.encode()
        url = self.config.state_url
        if url.startswith("sqlite:///") and ":memory:" not in url:
            # Embedded default: a key kept beside the state database, so cursors survive
            # restarts of this one process. Configure secret_key for several workers.
            key_file = Path(url[len("sqlite:///") :]).parent / "cursor.key"
            key_file.parent.mkdir(parents=True, exist_ok=True)
            if not key_file.exists():
                fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32))
            return key_file.read_text().strip().encode()
        log.warning("no secret_key configured: cursors are valid in this process only")
        return secrets.token_bytes(32)

    def consumer(self, name: str | None) -> Consumer:
        """The consumer of that name with its compiled policy (``local`` when None)."""
        name = name or LOCAL
        known = self._consumers.get(name)
        if known is not None:
            return known
        spec = self.config.spec.consumers.get(name)
        if spec is None:
            raise AccessDenied(
                f"unknown consumer {name!r}; consumers: {', '.join(self.config.spec.consumers)}"
            )
        try:
            policy = compile_policy(
                name,
                trusted=spec.trusted,
                tenant=spec.tenant,
                rate_limit=spec.rate_limit,
                entities=spec.entities,
                models={e: self.config.entities.get(e) for e in spec.entities},
                secret_key=self.config.secret_key,
            )
        except ValueError as exc:
            raise ConfigError(str(exc), file=self.config.file, path=f"consumers.{name}") from None
        consumer = Consumer(name, trusted=spec.trusted, policy=policy)
        self._consumers[name] = consumer
        return consumer

    def catalog(self, consumer: str | None = None) -> list[EntityView]:
        """The entities ``consumer`` may read, as it sees them: operations, visible fields (with
        their masks) and the JSON Schema of its records (visible fields only, all optional)."""
        who = self.consumer(consumer)
        views = []
        for entity in self.entities():
            model = self.config.entities.get(entity)
            if who.trusted:
                rules = self._everything.get(entity) or EntityPolicy.everything(model)
                self._everything[entity] = rules
            else:
                found = who.policy.entities.get(entity) if who.policy else None
                if found is None or not found.operations:
                    continue
                rules = found
            serving = self.config.sources_for(entity)
            plain = [
                {
                    path
                    for path, pushable in conf.mappings[entity].pushables.items()
                    if pushable.form is SourceForm.EXACT
                }
                for conf in serving
            ]
            views.append(
                rules.describe(sortable_fields(model, plain), [conf.name for conf in serving])
            )
        return views

    # --- governance: rate limits and the audit log ----------------------------------------------

    @property
    def audit(self) -> AuditWriter:
        """The background writer of the audit log (``patchbay.core.audit``)."""
        if self._audit is None:
            self._audit = AuditWriter(self.state_engine)
        return self._audit

    def _ticket(
        self,
        operation: str,
        entity: str,
        consumer: str | None,
        via: str,
        request_id: str | None,
        tenant: str | None,
    ) -> AuditTicket:
        if via not in VIAS:
            raise QueryError(f"via {via!r}: a front door is one of {', '.join(VIAS)}")
        return AuditTicket(
            self.audit,
            self.clock,
            consumer=consumer or LOCAL,
            via=via,
            request_id=request_id,
            tenant=tenant,
            operation=operation,
            entity=entity,
        )

    async def _admit(self, who: Consumer, ticket: AuditTicket) -> None:
        """Enforce the consumer's rate limit (RateLimited, with the seconds to wait)."""
        policy = who.policy
        if policy is None or policy.rate_limit is None:
            return
        limiter = self._limiters.get(who.name)
        if limiter is None:
            refusing = _Refusing(self.clock, who.name)
            limit = policy.rate_limit
            redis = self.redis
            if redis is not None:
                limiter = RedisTokenBucket(
                    redis, f"patchbay:consumer:{who.name}", limit.rate, limit.requests, refusing
                )
            else:
                limiter = TokenBucket(limit.rate, limit.requests, refusing)
            self._limiters[who.name] = limiter
        await limiter.acquire()

    def _audited_filter(
        self, who: Consumer, entity: str, node: Filter | None, since: datetime | str | None
    ) -> Any:
        """The filter as the audit log keeps it: values of fields masked for ``who`` masked."""
        if since is not None:
            since_condition = Condition("updated_at", Op.GTE, to_json_value(since))
            node = since_condition if node is None else BoolOp("and", (node, since_condition))
        rules = who.policy.entities.get(entity) if who.policy and not who.trusted else None
        return rules.mask_filter(node) if rules is not None else to_json(node)

    async def connector(self, source: str, tenant: str | None = None) -> Connector:
        """The source's connector, built on first use with its injected resources.

        With a ``tenant``, the source's ``store:`` credentials are that tenant's: one connector
        (and engine or client) per tenant that has its own credentials.
        """
        key = (source, tenant or "")
        existing = self._connectors.get(key)
        if existing is not None:
            return existing
        async with self._lock:
            existing = self._connectors.get(key)
            if existing is not None:
                return existing
            conf = self._source_config(source)
            if tenant:
                conf = await asyncio.to_thread(for_tenant, self.config, conf, tenant)
            resources = Resources(
                source=source,
                owner=conf.owner,
                base_dir=self.config.base_dir,
                logger=logging.getLogger(f"patchbay.source.{source}"),
                events=self.events,
            )
            if "sql_engine" in conf.connector.resources:
                from patchbay.resources import build_sql_engine

                if not isinstance(conf.settings, SqlSettings):
                    raise ConfigError(
                        f"connector {conf.spec.connector!r} asks for an SQL engine but its "
                        "settings do not derive from SqlSettings",
                        path=f"sources.{source}",
                    )
                try:
                    engine = build_sql_engine(conf.settings, self.config.base_dir)
                except (sa.exc.ArgumentError, ImportError, ValueError) as exc:
                    # The driver's message may quote the URL: its password is masked.
                    message = f"cannot open: {mask_url(str(exc))}"
                    raise SourceError(source, message, owner=conf.owner) from None
                self._engines.append(engine)
                resources.sql_engine = engine
                resources.sql_guard = self._sql_guard(conf)
            if "http_client" in conf.connector.resources:
                from patchbay.resources import build_http_client

                client = build_http_client(
                    conf,
                    base_dir=self.config.base_dir,
                    token_store=self.token_store,
                    events=self.events,
                    redis=self.redis,
                    opened=self._clients,
                )
                resources.http_client = client
            instance = conf.connector(conf.settings, resources)
            self._connectors[key] = instance
            return instance

    def _sql_guard(self, conf: SourceConfig) -> Callable[[Callable[[], Any]], Any]:
        """The source's resilience policy around one blocking SQL operation."""
        policy = conf.spec.resilience
        breaker = CircuitBreaker(
            conf.name, conf.owner, policy.breaker, SystemClock(), events=self.events
        )

        async def guard(fn: Callable[[], Any]) -> Any:
            return await run_sql(
                fn,
                policy=policy,
                source=conf.name,
                owner=conf.owner,
                breaker=breaker,
                events=self.events,
            )

        return guard

    def _source_config(self, source: str) -> SourceConfig:
        conf = self.config.sources.get(source)
        if conf is None:
            raise QueryError(
                f"unknown source {source!r}; sources: {', '.join(self.config.sources)}"
            )
        return conf

    async def close(self) -> None:
        """Release every connector, engine and pool this Hub opened."""
        for stream in list(self._streams):  # unfinished queries first: they hold connections
            with contextlib.suppress(Exception):
                await stream.aclose()
        if self._audit is not None:  # then every audit entry, before the state engine goes
            audit, self._audit = self._audit, None
            await asyncio.to_thread(audit.close)
        connectors, self._connectors = self._connectors, {}
        for instance in connectors.values():
            with contextlib.suppress(Exception):
                await instance.close()
        clients, self._clients = self._clients, []
        for client in clients:
            await client.aclose()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
        engines, self._engines = self._engines, []
        for engine in engines:
            engine.dispose()
        self._state = None
        self._quarantine = None

    # --- planning ------------------------------------------------------------------------------

    async def plan(
        self,
        entity: str,
        where: Filter | Mapping[str, Any] | None = None,
        *,
        since: datetime | str | None = None,
        order_by: str | None = None,
        consumer: str | None = None,
        sources: Sequence[str] | None = None,
        tenant: str | None = None,
        operation: str = "query",
        **filters: Any,
    ) -> Plan:
        who = self.consumer(consumer)
        model = self.config.entities.get(entity)
        rules = who.require(entity, operation)
        if who.policy is not None:
            tenant = who.policy.check_tenant(tenant)
        node = parse(where, **filters)
        if rules is not None:
            # The consumer's own filter and order first; then its row filter joins the query,
            # so it is pushed down (and re-checked) like any other condition.
            rules.check_filter(node, who.name)
            if order_by:
                rules.check_order(order_by.lstrip("-"), who.name)
            if since is not None and not rules.is_visible("updated_at"):
                raise AccessDenied(
                    f"consumer {who.name!r} may not use since on {entity}: updated_at is not "
                    "visible to it"
                )
            if rules.row_filter is not None:
                row = rules.row_filter
                node = row if node is None else BoolOp("and", (node, row))
        serving = self.config.sources_for(entity)
        if sources is not None:
            unknown = set(sources) - {s.name for s in serving}
            if unknown:
                raise QueryError(
                    f"sources {sorted(unknown)} do not serve {entity}; "
                    f"sources serving it: {', '.join(s.name for s in serving)}"
                )
            serving = [s for s in serving if s.name in sources]
        if not serving:
            raise QueryError(
                f"no source serves {entity!r}; entities served: {', '.join(self.entities())}"
            )
        if since is not None:
            lacking = [s.name for s in serving if s.mappings[entity].updated_at is None]
            if lacking:
                raise QueryError(
                    f"since needs updated_at, which {', '.join(lacking)} does not map for "
                    f"{entity}; leave since out or restrict sources"
                )
            since_condition = Condition("updated_at", Op.GTE, since)
            node = since_condition if node is None else BoolOp("and", (node, since_condition))
        bound = bind(model, node)
        order: tuple[str, bool] | None = None
        if order_by:
            name = order_by.lstrip("-")
            lookup_field(model, name)
            order = (name, order_by.startswith("-"))
        plans = []
        for conf in serving:
            plans.append(await self._plan_source(conf, conf.mappings[entity], bound, order, tenant))
        return Plan(entity, model, bound, order, tuple(plans), who, tenant, rules)

    async def _plan_source(
        self,
        conf: SourceConfig,
        mapping: EntityMapping,
        bound: BoundFilter,
        order: tuple[str, bool] | None,
        tenant: str | None = None,
    ) -> SourcePlan:
        connector = await self.connector(conf.name, tenant)
        probe = self._request(mapping, (), ())
        pushed: list[SourceFilter] = []
        kept: list[str] = []
        excluded: str | None = None
        for cond in bound.conjuncts:
            label = f"{cond.field.path} {cond.op}"
            try:
                candidate, reason = _source_filter(conf.name, mapping, cond)
            except _NoMatchHere as exc:
                excluded = f"{label}: {exc}"
                continue
            if candidate is None:
                kept.append(f"{label}: {reason}")
            elif not self.pushdown:
                kept.append(f"{label}: push-down is switched off")
            elif connector.accepts(probe, candidate):
                pushed.append(candidate)
            else:
                kept.append(f"{label}: the {conf.spec.connector} connector cannot evaluate it")
        source_order: tuple[SourceOrder, ...] = ()
        if order is not None:
            name, descending = order
            pushable = mapping.pushables.get(name)
            if pushable is None or pushable.form is not SourceForm.EXACT:
                raise QueryError(
                    f"cannot order {mapping.entity} by {name}: source {conf.name!r} maps it "
                    "through a transform, so it cannot sort on it (order by a field mapped "
                    "from a plain column, or leave order_by out)"
                )
            # Blank text is null in canonical records: the source must sort it with the NULLs.
            blank = lookup_field(mapping.model, name).kind in (FieldKind.TEXT, FieldKind.EMAIL)
            wanted = SourceOrder(pushable.path, descending, blank_is_null=blank)
            if not connector.can_order(probe, wanted):
                raise QueryError(
                    f"cannot order {mapping.entity} by {name}: source {conf.name!r} "
                    f"({conf.spec.connector}) cannot sort"
                )
            source_order = (wanted,)
        return SourcePlan(
            conf.name, conf.owner, mapping, tuple(pushed), source_order, tuple(kept), excluded
        )

    @staticmethod
    def _request(
        mapping: EntityMapping,
        pushed: tuple[SourceFilter, ...],
        order: tuple[SourceOrder, ...],
        position: Position | None = None,
        batch_size: int = 1000,
    ) -> ReadRequest:
        spec = mapping.spec
        lines = None
        if spec.lines is not None and mapping.lines is not None:
            lines = LinesRequest(
                origin=spec.lines.origin,
                key=mapping.lines.key,
                paths=tuple(_paths_of(spec.lines.fields)),
                order_by=tuple(_as_list(spec.lines.order_by)),
            )
        return ReadRequest(
            entity=mapping.entity,
            origin=spec.origin,
            id_paths=mapping.id_paths,
            paths=mapping.source_paths,
            filters=pushed,
            order=order,
            position=position,
            batch_size=batch_size,
            lines=lines,
        )

    async def _governed_plan(
        self,
        ticket: AuditTicket,
        entity: str,
        where: Filter | Mapping[str, Any] | None,
        filters: Mapping[str, Any],
        *,
        since: datetime | str | None,
        order_by: str | None,
        consumer: str | None,
        sources: Sequence[str] | None,
        tenant: str | None,
        raw: bool,
    ) -> Plan:
        """Plan a query for the audit ``ticket``: the filter is recorded (masked) before the
        policy may refuse it, and the rate limit is taken once the request is valid."""
        who = self.consumer(consumer)
        node = parse(where, **filters)
        ticket.filters = self._audited_filter(who, entity, node, since)
        plan = await self.plan(
            entity,
            node,
            since=since,
            order_by=order_by,
            consumer=consumer,
            sources=sources,
            tenant=tenant,
        )
        ticket.tenant = plan.tenant
        ticket.sources = [s.source for s in plan.sources if s.excluded is None]
        if plan.rules is not None:
            _check_raw(plan.rules, raw, who.name)
        await self._admit(who, ticket)
        return plan

    # --- reading -------------------------------------------------------------------------------

    def query(
        self,
        entity: str,
        where: Filter | Mapping[str, Any] | None = None,
        *,
        since: datetime | str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        consumer: str | None = None,
        sources: Sequence[str] | None = None,
        tenant: str | None = None,
        partial: bool = False,
        strict: bool | None = None,
        raw: bool = False,
        via: str = "python",
        request_id: str | None = None,
        **filters: Any,
    ) -> QueryStream:
        """Stream matching records: ``async for record in hub.query("contact", email=...)``.

        A consumer with a policy receives views of the records (its visible fields, masked
        where masked). ``via`` (python, cli, rest, mcp, tool) and ``request_id`` go to the audit
        log, which records the request once, when the stream ends or is closed.
        """
        ticket = self._ticket("query", entity, consumer, via, request_id, tenant)

        async def run(stream: QueryStream) -> AsyncGenerator[Chunk, None]:
            plan = await self._governed_plan(
                ticket,
                entity,
                where,
                filters,
                since=since,
                order_by=order_by,
                consumer=consumer,
                sources=sources,
                tenant=tenant,
                raw=raw,
            )
            produced = 0
            async with contextlib.aclosing(
                self._execute(
                    plan,
                    {},
                    stream.quality,
                    stream.errors,
                    partial=partial,
                    strict=self.strict if strict is None else strict,
                    raw=raw,
                    batch_hint=limit,
                )
            ) as chunks:
                async for chunk in chunks:
                    if limit is not None and produced + len(chunk.records) >= limit:
                        yield _viewed(chunk.head(limit - produced), plan.rules)
                        break
                    produced += len(chunk.records)
                    yield _viewed(chunk, plan.rules)

        stream = QueryStream(run, ticket)
        self._streams.add(stream)
        return stream

    async def fetch(
        self,
        entity: str,
        where: Filter | Mapping[str, Any] | None = None,
        *,
        since: datetime | str | None = None,
        order_by: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        consumer: str | None = None,
        sources: Sequence[str] | None = None,
        tenant: str | None = None,
        partial: bool = False,
        strict: bool | None = None,
        raw: bool = False,
        via: str = "python",
        request_id: str | None = None,
        **filters: Any,
    ) -> Page:
        """One page of records and the cursor to the next (None on the last page)."""
        ticket = self._ticket("fetch", entity, consumer, via, request_id, tenant)
        try:
            if limit < 1:
                raise QueryError(f"limit must be at least 1, got {limit}")
            plan = await self._governed_plan(
                ticket,
                entity,
                where,
                filters,
                since=since,
                order_by=order_by,
                consumer=consumer,
                sources=sources,
                tenant=tenant,
                raw=raw,
            )
            page = await self._page(plan, limit, cursor, partial, strict, raw)
        except BaseException as exc:
            ticket.fail(exc)
            raise
        ticket.delivered(record.id for record in page.records)
        ticket.finish()
        return page

    async def _page(
        self,
        plan: Plan,
        limit: int,
        cursor: str | None,
        partial: bool,
        strict: bool | None,
        raw: bool,
    ) -> Page:
        # The page's records stay alive until it is returned (views are made of them): the
        # cyclic GC runs less often meanwhile (see _execute).
        with relaxed_gc():
            return await self._page_in(plan, limit, cursor, partial, strict, raw)

    async def _page_in(
        self,
        plan: Plan,
        limit: int,
        cursor: str | None,
        partial: bool,
        strict: bool | None,
        raw: bool,
    ) -> Page:
        positions = self.signer.load(cursor, plan.digest) if cursor else {}
        quality = QualityReport()
        errors: list[SourceFailure] = []
        records: list[Record] = []
        last: dict[str, tuple[Batch, int]] = {}  # per source, where its last record came from
        more_from: str | None = None
        async with contextlib.aclosing(
            self._execute(
                plan,
                positions,
                quality,
                errors,
                partial=partial,
                strict=self.strict if strict is None else strict,
                raw=raw,
                batch_hint=limit + 1,
            )
        ) as chunks:
            async for chunk in chunks:
                room = limit - len(records)
                if room <= 0:
                    more_from = chunk.source
                    break
                taken = chunk.records[:room]
                records.extend(taken)
                last[chunk.source] = (chunk.batch, chunk.indexes[len(taken) - 1])
                if len(taken) < len(chunk.records):
                    more_from = chunk.source
                    break
        if plan.rules is not None:
            records = [_view(plan.rules, record) for record in records]
        if more_from is None:
            return Page(records, None, quality, errors)
        # Sources not reached on this page keep the position they had.
        after = dict(positions)
        for source, (batch, index) in last.items():
            after[source] = batch.position_after(index)
        if plan.order_by is None:
            # Source by source: every source before the one still going is finished, except
            # one that failed (partial results): the next page tries it again.
            failed = {failure.source for failure in errors}
            for source_plan in plan.sources:
                if source_plan.source == more_from:
                    break
                if source_plan.source not in failed:
                    after[source_plan.source] = _DONE
        return Page(records, self.signer.dump(plan.digest, after), quality, errors)

    async def get(
        self,
        entity: str,
        record_id: str,
        *,
        consumer: str | None = None,
        raw: bool = False,
        tenant: str | None = None,
        via: str = "python",
        request_id: str | None = None,
    ) -> Record:
        """One record by its canonical id (RecordNotFound also when it lies outside the
        consumer's row filter: its existence does not leak)."""
        ticket = self._ticket("get", entity, consumer, via, request_id, tenant)
        try:
            who = self.consumer(consumer)
            self.config.entities.get(entity)  # EntityNotFound before anything else
            rules = who.require(entity, "get")
            if who.policy is not None:
                tenant = ticket.tenant = who.policy.check_tenant(tenant)
            if rules is not None:
                _check_raw(rules, raw, who.name)
            await self._admit(who, ticket)
            record = await self._get(entity, record_id, raw, tenant, ticket)
            if rules is not None:
                if rules.row_predicate is not None and not rules.row_predicate(record):
                    raise RecordNotFound(entity, record_id)
                record = _view(rules, record)
        except BaseException as exc:
            ticket.fail(exc)
            raise
        ticket.delivered((record.id,))
        ticket.finish()
        return record

    async def _get(
        self, entity: str, record_id: str, raw: bool, tenant: str | None, ticket: AuditTicket
    ) -> Record:
        try:
            source, parts = split_id(record_id)
        except ValueError as exc:
            raise QueryError(str(exc)) from None
        conf = self.config.sources.get(source)
        if conf is None or entity not in conf.mappings:
            raise RecordNotFound(entity, record_id)
        ticket.sources = [source]
        mapping = conf.mappings[entity]
        if len(parts) != len(mapping.id_paths):
            raise RecordNotFound(entity, record_id)
        connector = await self.connector(source, tenant)
        request = self._request(mapping, (), ())
        try:
            if Capability.GET in connector.capabilities:
                row = await connector.get(
                    GetRequest(
                        entity,
                        request.origin,
                        request.id_paths,
                        tuple(parts),
                        request.paths,
                        request.lines,
                    )
                )
                rows = [] if row is None else [row]
            else:
                rows = await self._scan_for(connector, mapping, request, record_id)
        except SourceError:
            raise
        except Exception as exc:
            raise _wrap(conf, exc) from exc
        mapped = mapping.map_batch(rows, raw=raw)
        if mapped.quarantined:
            await asyncio.to_thread(self.quarantine.add, mapped.quarantined)
            bad = mapped.quarantined[0]
            raise QuarantinedRecord(bad.source, bad.entity, bad.remote_id, bad.reasons)
        for record in mapped.records:
            if record.id == record_id:
                return record
        raise RecordNotFound(entity, record_id)

    async def _scan_for(
        self, connector: Connector, mapping: EntityMapping, request: ReadRequest, record_id: str
    ) -> list[Mapping[str, Any]]:
        async with contextlib.aclosing(connector.read(request)) as batches:
            async for batch in batches:
                mapped = mapping.map_batch(batch.rows)
                for index, record in zip(mapped.indexes, mapped.records, strict=True):
                    if record.id == record_id:
                        return [batch.rows[index]]
        return []

    async def explain(
        self,
        entity: str,
        where: Filter | Mapping[str, Any] | None = None,
        *,
        since: datetime | str | None = None,
        order_by: str | None = None,
        consumer: str | None = None,
        sources: Sequence[str] | None = None,
        tenant: str | None = None,
        **filters: Any,
    ) -> dict[str, Any]:
        plan = await self.plan(
            entity,
            where,
            since=since,
            order_by=order_by,
            consumer=consumer,
            sources=sources,
            tenant=tenant,
            **filters,
        )
        return plan.describe()

    async def check(self, sources: Sequence[str] | None = None) -> dict[str, SourceFailure | None]:
        """Reach every source concurrently: None for a healthy one, the failure otherwise."""
        names = list(sources or self.config.sources)

        async def one(name: str) -> SourceFailure | None:
            conf = self._source_config(name)
            try:
                connector = await self.connector(name)
                if Capability.CHECK in connector.capabilities:
                    await connector.check()
                return None
            except Exception as exc:
                error = exc if isinstance(exc, SourceError) else _wrap(conf, exc)
                return SourceFailure(
                    name, conf.owner, error.detail, isinstance(error, SourceUnavailable)
                )

        results = await asyncio.gather(*(one(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def drift(
        self, sources: Sequence[str] | None = None, *, accept: bool = False
    ) -> list[Drift]:
        """Schema drift of the sources' mapped columns (see :mod:`patchbay.core.drift`).

        The first check of a source records its column types as the baseline; ``accept=True``
        records the current schema as the new baseline after reporting.
        """
        baseline = SchemaBaseline(self.state_engine)
        findings: list[Drift] = []
        for name in sources or list(self.config.sources):
            conf = self._source_config(name)
            connector = await self.connector(name)
            if Capability.DISCOVER not in connector.capabilities:
                continue
            origins = {
                origin_key(origin): origin
                for mapping in conf.mappings.values()
                for _, _, origin in mapping.reads()
            }
            described: dict[str, TableInfo | None] = {}
            for key, origin in origins.items():
                try:
                    described[key] = await connector.describe(origin)
                except SourceError:
                    raise
                except Exception as exc:
                    raise _wrap(conf, exc) from exc
            recorded = await asyncio.to_thread(baseline.get, name)
            for entity, mapping in conf.mappings.items():
                findings.extend(
                    compare(
                        source=name,
                        owner=conf.owner,
                        entity=entity,
                        reads=mapping.reads(),
                        described=described,
                        baseline=recorded,
                    )
                )
            if accept or not recorded:
                await asyncio.to_thread(baseline.record, name, described)
        return findings

    async def discover(self, source: str) -> SourceSchema:
        conf = self._source_config(source)
        connector = await self.connector(source)
        if Capability.DISCOVER not in connector.capabilities:
            raise QueryError(f"the {conf.spec.connector} connector of {source!r} cannot discover")
        try:
            return await connector.discover()
        except SourceError:
            raise
        except Exception as exc:
            raise _wrap(conf, exc) from exc

    # --- execution -----------------------------------------------------------------------------

    async def _execute(
        self,
        plan: Plan,
        positions: Mapping[str, Any],
        quality: QualityReport,
        errors: list[SourceFailure],
        *,
        partial: bool,
        strict: bool,
        raw: bool,
        batch_hint: int | None,
    ) -> AsyncGenerator[Chunk, None]:
        streams = []
        for source_plan in plan.sources:
            position = positions.get(source_plan.source)
            if source_plan.excluded is not None or position == _DONE:
                continue
            quality.source(source_plan.source)
            streams.append(
                _Prefetch(
                    self._read_source(
                        plan, source_plan, position, quality, strict, raw, batch_hint
                    ),
                )
            )
        with relaxed_gc():
            try:
                if plan.order_by is None:
                    for stream in streams:
                        async with contextlib.aclosing(
                            self._guarded(stream, errors, partial)
                        ) as one:
                            async for chunk in one:
                                yield chunk
                else:
                    merged = self._merge(streams, plan, errors, partial)
                    async with contextlib.aclosing(merged) as chunks:
                        async for chunk in chunks:
                            yield chunk
            finally:
                for stream in streams:
                    await stream.aclose()

    async def _guarded(
        self, stream: _Prefetch, errors: list[SourceFailure], partial: bool
    ) -> AsyncGenerator[Chunk, None]:
        try:
            async for chunk in stream:
                yield chunk
        except SourceError as exc:
            if not partial:
                raise
            errors.append(
                SourceFailure(exc.source, exc.owner, exc.detail, isinstance(exc, SourceUnavailable))
            )

    async def _merge(
        self, streams: list[_Prefetch], plan: Plan, errors: list[SourceFailure], partial: bool
    ) -> AsyncGenerator[Chunk, None]:
        """A streaming k-way merge: one record per source ahead, nothing more buffered."""
        assert plan.order_by is not None
        name, descending = plan.order_by
        read = getter(lookup_field(plan.model, name))
        heap: list[tuple[_SortKey, int, Chunk]] = []
        sources = [_Records(self._guarded(s, errors, partial)) for s in streams]

        async def pull(index: int) -> None:
            one = await sources[index].next()
            if one is not None:
                key = _SortKey(read(one.records[0]), descending)
                heapq.heappush(heap, (key, index, one))

        for index in range(len(sources)):
            await pull(index)
        while heap:
            _, index, one = heapq.heappop(heap)
            yield one
            await pull(index)

    async def _read_source(
        self,
        plan: Plan,
        source_plan: SourcePlan,
        position: Position | None,
        quality: QualityReport,
        strict: bool,
        raw: bool,
        batch_hint: int | None,
    ) -> AsyncGenerator[Chunk, None]:
        name = source_plan.source
        conf = self._source_config(name)
        mapping = source_plan.mapping
        stats = quality.source(name)
        batch_size = conf.spec.batch_size
        if batch_hint is not None:
            batch_size = max(1, min(batch_size, batch_hint))
        request = self._request(
            mapping, source_plan.pushed, source_plan.order, position, batch_size
        )
        predicate = plan.filter.predicate if plan.filter.node is not None else None
        # Start and end of every source read, as events: how many reads are in flight at once.
        self.events.emit("read_start", name, f"{name}: reading {plan.entity}", level=logging.DEBUG)
        # A span per source read, a child of the caller's (the gateway's request) when traced.
        span = self.tracer.start_span(
            "patchbay.source.read",
            attributes={"patchbay.source": name, "patchbay.entity": plan.entity},
        )
        try:
            connector = await self.connector(name, plan.tenant)
            async with contextlib.aclosing(connector.read(request)) as batches:
                async for batch in batches:
                    mapped = mapping.map_batch(batch.rows, raw=raw)
                    stats.read += len(batch.rows)
                    stats.nulled.update(mapped.nulled)
                    if mapped.quarantined:
                        if strict:
                            bad = mapped.quarantined[0]
                            raise QuarantinedRecord(
                                bad.source, bad.entity, bad.remote_id, bad.reasons
                            )
                        await self._keep_aside(stats, mapped.quarantined)
                    chunk = Chunk(name, batch, mapped.records, mapped.indexes)
                    if predicate is not None:
                        kept = [i for i, rec in enumerate(chunk.records) if predicate(rec)]
                        if len(kept) < len(chunk.records):
                            chunk.records = [chunk.records[i] for i in kept]
                            chunk.indexes = [chunk.indexes[i] for i in kept]
                    stats.delivered += len(chunk.records)
                    if chunk.records:
                        yield chunk
                    if batch_hint is not None and stats.delivered >= batch_hint:
                        # A page (or a query's limit) needs at most this many records of one
                        # source: reading ahead would only map and validate rows for nothing.
                        break
        except (SourceError, QuarantinedRecord):
            raise
        except Exception as exc:
            raise _wrap(conf, exc) from exc
        finally:
            span.set_attribute("patchbay.rows_read", stats.read)
            span.set_attribute("patchbay.rows_delivered", stats.delivered)
            span.end()
            self.events.emit(
                "read_end", name, f"{name}: read of {plan.entity} ended", level=logging.DEBUG
            )

    async def _keep_aside(self, stats: Any, rows: list[Quarantined]) -> None:
        stats.quarantined += len(rows)
        room = SAMPLE - len(stats.samples)
        if room > 0:
            stats.samples.extend(rows[:room])
        await asyncio.to_thread(self.quarantine.add, rows)


def _view(rules: EntityPolicy, record: Record) -> Record:
    # A restricted consumer's view has only its visible fields: it reads like the record (same
    # attribute names) but is not an instance of the entity model.
    return rules.apply(record)  # type: ignore[return-value]


def _viewed(chunk: Chunk, rules: EntityPolicy | None) -> Chunk:
    if rules is not None and rules.view is not None:
        chunk = Chunk(chunk.source, chunk.batch, [_view(rules, r) for r in chunk.records], [])
    return chunk


def _check_raw(rules: EntityPolicy, raw: bool, consumer: str) -> None:
    if raw and "raw" not in rules.visible:
        raise AccessDenied(
            f"consumer {consumer!r} may not read the raw source rows of {rules.entity}"
        )


class _Refusing:
    """A clock for a consumer's token bucket: where the bucket would wait, the request is
    refused instead (RateLimited with the wait), so a gateway answers 429 at once."""

    def __init__(self, clock: Clock, consumer: str) -> None:
        self._clock = clock
        self._consumer = consumer

    def monotonic(self) -> float:
        return self._clock.monotonic()

    def now(self) -> datetime:
        return self._clock.now()

    async def sleep(self, seconds: float) -> None:
        raise RateLimited(self._consumer, seconds)


class _SortKey:
    """Orders canonical values with NULLs last in both directions."""

    __slots__ = ("descending", "value")

    def __init__(self, value: Any, descending: bool) -> None:
        self.value = value
        self.descending = descending

    def __lt__(self, other: _SortKey) -> bool:
        if self.value is None:
            return False
        if other.value is None:
            return True
        if self.descending:
            return bool(self.value > other.value)
        return bool(self.value < other.value)


class _Prefetch:
    """Runs a source's stream as a task ahead of the consumer, a few batches deep.

    Sources start reading as soon as the query starts (concurrent fan-out) while memory stays
    bounded by ``depth`` batches per source.
    """

    def __init__(self, batches: AsyncGenerator[Chunk, None], depth: int = 2) -> None:
        self._batches = batches
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=depth)
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async with contextlib.aclosing(self._batches):
                async for batch in self._batches:
                    await self._queue.put(batch)
        except Exception as exc:
            await self._queue.put(_Raised(exc))
            return
        await self._queue.put(None)

    def __aiter__(self) -> _Prefetch:
        return self

    async def __anext__(self) -> Chunk:
        batch = await self._queue.get()
        if batch is None:
            self._queue.put_nowait(None)  # stay exhausted
            raise StopAsyncIteration
        if isinstance(batch, _Raised):
            raise batch.exc
        return batch  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


class _Records:
    """One record at a time out of a stream of chunks (for the merge), as one-record chunks."""

    def __init__(self, chunks: AsyncGenerator[Chunk, None]) -> None:
        self._chunks = chunks
        self._current: Chunk | None = None
        self._index = 0

    async def next(self) -> Chunk | None:
        while self._current is None or self._index >= len(self._current.records):
            try:
                self._current = await self._chunks.__anext__()
            except StopAsyncIteration:
                return None
            self._index = 0
        i, current = self._index, self._current
        self._index += 1
        return Chunk(current.source, current.batch, [current.records[i]], [current.indexes[i]])


@dataclass
class _Raised:
    exc: BaseException


def _wrap(conf: SourceConfig, exc: BaseException) -> SourceError:
    """An unexpected error inside a source read, as a SourceError naming the source.

    HTTP errors are described by status, method, host and path only: httpx puts the whole URL in
    its messages, and a query string may carry a key. Any secret of the source's auth that a
    message still holds is masked.
    """
    if isinstance(exc, httpx.HTTPStatusError):
        request = exc.request
        message = (
            f"HTTP {exc.response.status_code} from {request.method} "
            f"{request.url.host}{request.url.path}"
        )
    elif isinstance(exc, httpx.RequestError):
        request = exc.request
        message = f"{type(exc).__name__} on {request.method} {request.url.host}{request.url.path}"
    else:
        message = f"{type(exc).__name__}: {exc}"
    secrets: list[str] = []
    if conf.auth is not None:
        from patchbay.auth.schemes import secret_values

        secrets = [value for value in secret_values(conf.auth) if value]
    for secret in secrets:
        message = message.replace(secret, "***")
    if isinstance(exc, httpx.HTTPError):
        # The original stays chained (for debugging) but no longer shows a URL's query string
        # or a secret: tracebacks and error reporters print the chain.
        text = _QUERY.sub(r"\1?***", str(exc))
        for secret in secrets:
            text = text.replace(secret, "***")
        exc.args = (text,)
    unavailable = isinstance(exc, OSError | httpx.TransportError)
    kind = SourceUnavailable if unavailable else SourceError
    return kind(conf.name, message, owner=conf.owner)


_QUERY = re.compile(r"(https?://[^\s'\"?]+)\?[^\s'\"]*")


class _NoMatchHere(Exception):
    """No record of this source can match the condition: the source need not be read."""


def _source_filter(
    source: str, mapping: EntityMapping, cond: BoundCondition
) -> tuple[SourceFilter | None, str]:
    """The source-side form of a condition, or None and why it stays in memory only."""
    if cond.field.path == "source" and cond.op in (Op.EQ, Op.NE, Op.IN):
        # Every record of a source carries its name: such a condition (often a consumer's row
        # filter, ``source in [crm]``) decides at planning whether the source is read at all.
        if cond.op is Op.IN:
            holds = source in cond.value
        else:
            holds = (source == cond.value) is (cond.op is Op.EQ)
        if not holds:
            raise _NoMatchHere(f"no record of source {source!r} can match")
        return None, "true of every record of this source"
    pushable = mapping.pushables.get(cond.field.path)
    if pushable is None:
        return None, "not mapped from a plain column here"
    op, value, path = cond.op, cond.value, pushable.path
    if pushable.form is SourceForm.REF:
        if op not in (Op.EQ, Op.IN):
            return None, "only eq and in on references go to the source"
        ids = value if op is Op.IN else (value,)
        keys = []
        for canonical in ids:
            try:
                owner, parts = split_id(canonical)
            except ValueError:
                continue
            if owner == source and len(parts) == 1:
                keys.append(parts[0])
        if not keys:
            raise _NoMatchHere(f"no id in the filter belongs to source {source!r}")
        if len(keys) == 1:
            return SourceFilter(path, Op.EQ, keys[0]), ""
        return SourceFilter(path, Op.IN, tuple(keys)), ""
    if pushable.form is SourceForm.FOLD:
        if op in (Op.EQ, Op.CONTAINS):
            return SourceFilter(path, Op.CONTAINS, str(value).lower(), fold=True), ""
        return None, "compared case-folded at the source: only eq and contains go there"
    # EXACT
    if op is Op.CONTAINS:
        return SourceFilter(path, Op.CONTAINS, value, fold=True), ""
    if cond.field.kind is FieldKind.DATETIME:
        if op in (Op.GT, Op.GTE):
            return SourceFilter(path, Op.GTE, _naive(value - _TZ_MARGIN)), ""
        if op in (Op.LT, Op.LTE):
            return SourceFilter(path, Op.LTE, _naive(value + _TZ_MARGIN)), ""
        if op is Op.ISNULL:
            return _isnull(path, value)
        return None, "datetimes are compared exactly only in memory (source time zones differ)"
    if cond.field.kind is FieldKind.ANY:
        return None, "extra fields are compared in memory"
    if op is Op.ISNULL:
        return _isnull(path, value)
    return SourceFilter(path, op, value), ""


def _isnull(path: str, value: bool) -> tuple[SourceFilter | None, str]:
    # Blank source values are canonical nulls: only "is not null" narrows safely at the source.
    if value:
        return None, "blank values are null here but not at the source"
    return SourceFilter(path, Op.ISNULL, False), ""


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _paths_of(fields: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for entry in fields.values():
        path = entry if isinstance(entry, str) else entry.path
        for p in _as_list(path):
            if p not in out:
                out.append(p)
    return out


def _as_list(path: Any) -> list[str]:
    if path is None:
        return []
    return list(path) if isinstance(path, list) else [path]
