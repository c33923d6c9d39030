"""The connector contract: what a source adapter declares and implements.

A connector adapts one kind of source (SQL database, file exports, a REST API, …). It declares:

* ``kind``: its name, the entry point name in group ``patchbay.connectors``;
* ``Settings``: a pydantic model validating the source's ``settings:`` block;
* ``capabilities``: what it can do, as data (checked against the methods it implements when the
  class is defined, so a plugin that claims ``get`` without implementing it fails at load);
* ``pushdown``: the filter operators it can evaluate at the source;
* ``resources``: what it wants injected (``"sql_engine"``, ``"http_client"``), built by the Hub
  with auth, timeouts and resilience applied.

It yields batches of source-native rows and knows nothing of canonical entities: mapping does that.
It never retries and never builds its own client.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from patchbay.core.filters import Op

__all__ = [
    "READ_ONLY",
    "Batch",
    "Capability",
    "Clock",
    "ColumnInfo",
    "Connector",
    "GetRequest",
    "LinesRequest",
    "Position",
    "ReadRequest",
    "Resources",
    "SourceFilter",
    "SourceOrder",
    "SourceSchema",
    "SqlSettings",
    "TableInfo",
    "invalid_block",
]

# An httpx request extension: ``extensions={READ_ONLY: True}`` marks a POST that only reads (a
# search, a JSON-RPC read), so the resilience layer may replay it like a GET.
READ_ONLY = "patchbay.read_only"

Position = Any  # JSON-serialisable: where to resume a read (keyset values, a page token, …)


class Capability(enum.StrEnum):
    READ = "read"
    GET = "get"
    INCREMENTAL = "incremental"  # can filter on the updated-at path (``since``)
    ORDER = "order"  # can sort on a mapped path (streaming merges across sources)
    DISCOVER = "discover"
    CHECK = "check"


# The method each capability requires the class to implement (not inherit from the base).
_REQUIRES: Mapping[Capability, str] = {
    Capability.READ: "read",
    Capability.GET: "get",
    Capability.DISCOVER: "discover",  # and describe
    Capability.CHECK: "check",
}


class NoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True, slots=True)
class SourceFilter:
    """A filter the source evaluates on its own values. ``fold``: compare case-insensitively."""

    path: str
    op: Op
    value: Any
    fold: bool = False


@dataclass(frozen=True, slots=True)
class SourceOrder:
    """Sort on ``path``; NULLs last either way. ``blank_is_null``: blank text sorts as NULL
    (the mapping turns it into null, so the merge expects it among the NULLs)."""

    path: str
    descending: bool = False
    blank_is_null: bool = False


@dataclass(frozen=True, slots=True)
class LinesRequest:
    """Line rows of each header row: the connector attaches them under ``LINES_KEY``."""

    origin: Mapping[str, Any]
    key: tuple[str, ...]  # line paths that hold the header's id values, in id order
    paths: tuple[str, ...]
    order_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReadRequest:
    entity: str
    origin: Mapping[str, Any]  # the binding's ``from:`` block, connector-specific
    id_paths: tuple[str, ...]
    paths: tuple[str, ...]  # every path the mapping reads
    filters: tuple[SourceFilter, ...] = ()
    order: tuple[SourceOrder, ...] = ()  # empty: the source's natural order (SQL: by id)
    position: Position | None = None
    batch_size: int = 1000
    lines: LinesRequest | None = None


@dataclass(frozen=True, slots=True)
class GetRequest:
    entity: str
    origin: Mapping[str, Any]
    id_paths: tuple[str, ...]
    id_values: tuple[str, ...]  # the remote key parts as text, in id_paths order
    paths: tuple[str, ...]
    lines: LinesRequest | None = None


@dataclass(slots=True)
class Batch:
    """Rows of one read step. ``position_after(i)`` resumes just after ``rows[i]``."""

    rows: Sequence[Mapping[str, Any]]
    position_after: Callable[[int], Position]


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    type: str  # the source's own type name, e.g. "VARCHAR(40)", "INTEGER", "string"
    nullable: bool = True


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceSchema:
    tables: tuple[TableInfo, ...]


class Clock:
    """Time as the connector sees it; tests inject their own."""

    def now(self) -> datetime:
        from datetime import UTC

        return datetime.now(UTC)


@dataclass
class Resources:
    """What the Hub injects. Only the resources a connector names in ``resources`` are set."""

    source: str
    owner: str | None = None
    sql_engine: Any = None  # sqlalchemy.ext.asyncio.AsyncEngine or Engine
    http_client: Any = None  # httpx.AsyncClient
    base_dir: Any = None  # pathlib.Path the config file lives in (relative paths resolve here)
    # SQL: ``await sql_guard(fn)`` runs a blocking database operation in a thread under the
    # source's resilience policy (breaker, retries on dropped connections). None: run it plainly.
    sql_guard: Any = None
    clock: Clock = field(default_factory=Clock)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("patchbay.source"))
    # The Hub's event sink (``count(counter, source)``, ``emit(event, source, message)``): what
    # a connector reports beyond its log, such as API quota readings. None outside a Hub.
    events: Any = None


class Connector:
    """Base class of connectors. Subclasses set the class variables and implement methods."""

    kind: ClassVar[str] = ""
    Settings: ClassVar[type[BaseModel]] = NoSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.READ})
    pushdown: ClassVar[frozenset[Op]] = frozenset()
    resources: ClassVar[frozenset[str]] = frozenset()
    # Query parameters whose values never reach a log (httpx logs request URLs at INFO): a
    # query language's text (SOQL ``q``) carries filter values, which may be personal data.
    redact_params: ClassVar[frozenset[str]] = frozenset()
    # The pydantic model of an entity's ``from:`` block, checked when the config loads.
    origin_model: ClassVar[type[BaseModel] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.kind:
            return  # an abstract intermediate class
        for capability in cls.capabilities:
            method = _REQUIRES.get(capability)
            if method and getattr(cls, method) is getattr(Connector, method):
                raise TypeError(
                    f"connector {cls.kind!r} ({cls.__qualname__}) declares {capability!s} "
                    f"but does not implement {method}()"
                )
        unknown = cls.resources - {"sql_engine", "http_client"}
        if unknown:
            raise TypeError(f"connector {cls.kind!r} asks for unknown resources {sorted(unknown)}")

    def __init__(self, settings: BaseModel, resources: Resources) -> None:
        self.settings = settings
        self.res = resources

    @classmethod
    def preset_entities(cls, settings: BaseModel) -> Mapping[str, Mapping[str, Any]]:
        """Ready-made entity bindings (the YAML shape of a source's ``entities:`` block).

        Vendor presets ship their default mappings here; users take them with ``entities:
        preset`` or ``contact: preset`` and override them field by field.
        """
        return {}

    @classmethod
    def check_origin(cls, settings: BaseModel, entity: str, origin: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` (saying what to fix) when a ``from:`` block is wrong.

        Called when the config loads, so a bad binding fails there rather than on first read.
        The default validates it against ``origin_model`` when the connector sets one.
        """
        if cls.origin_model is not None:
            try:
                cls.origin_model.model_validate(dict(origin))
            except ValidationError as exc:
                raise ValueError(invalid_block(exc)) from None

    def accepts(self, request: ReadRequest, condition: SourceFilter) -> bool:
        """Whether this source can evaluate ``condition`` for this entity. Default: by operator."""
        return condition.op in self.pushdown

    def can_order(self, request: ReadRequest, order: SourceOrder) -> bool:
        return Capability.ORDER in self.capabilities

    def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        """Yield batches of source rows (an ``async def`` with ``yield``)."""
        raise NotImplementedError

    async def get(self, request: GetRequest) -> Mapping[str, Any] | None:
        raise NotImplementedError

    async def discover(self) -> SourceSchema:
        raise NotImplementedError

    async def describe(self, origin: Mapping[str, Any]) -> TableInfo | None:
        """The columns one ``from:`` block has right now (what schema drift is checked against).

        Connectors that declare DISCOVER implement it; ``None`` means the origin cannot be
        described (a declared query whose columns only exist when it runs, say).
        """
        raise NotImplementedError

    async def check(self) -> None:
        """Raise when the source cannot be reached or read; return quietly otherwise."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release what the connector opened itself (injected resources are the Hub's)."""


class SqlSettings(BaseModel):
    """Settings of connectors that ask for an injected ``sql_engine``.

    ``url`` is a SQLAlchemy URL; keep the password out of it and give ``password`` as a
    reference (``env:ERP_DB_PASSWORD``). Relative SQLite paths are relative to the config file.
    """

    model_config = ConfigDict(extra="forbid")

    url: str
    password: SecretStr | None = None
    connect_args: dict[str, Any] = Field(default_factory=dict, repr=False)  # may hold secrets
    schema_: str | None = Field(default=None, alias="schema")


def invalid_block(exc: ValidationError, prefix: str = "") -> str:
    """What is wrong with a ``settings:`` or ``from:`` block, as one line of ``path: problem``
    (``prefix`` goes before each path), for the errors connectors raise."""
    out = []
    for error in exc.errors(include_url=False):
        where = ".".join(part for part in (prefix, *map(str, error["loc"])) if part)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        out.append(f"{where}: {message}" if where else message)
    return "; ".join(out)
