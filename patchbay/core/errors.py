"""The one exception tree of patchbay.

Every error a caller can see derives from ``PatchbayError``; front doors map each class to
one exit code (CLI) or one problem type (gateway), so the tree is part of the public contract::

    PatchbayError
    ├── ConfigError              the config file is wrong: names the file and the path inside it
    ├── ConnectorNotFound        no connector registered under that name: lists the known ones
    ├── EntityNotFound           no entity of that name: lists the known ones
    ├── QueryError               the query itself is wrong (unknown field, bad operator or value)
    │   └── CursorError          a cursor that was tampered with or belongs to another query
    ├── RecordNotFound           ``get`` of an id no source has
    ├── QuarantinedRecord        strict mode: a row failed validation (carries the reasons)
    ├── AccessDenied             the consumer may not do this (patchbay.core.consumers)
    ├── RateLimited              over the consumer's rate limit; ``retry_after`` seconds (same)
    └── SourceError              a source failed: names source and owner
        └── SourceUnavailable    the source cannot be reached (refused, down, breaker open)

Messages never contain secrets: source URLs are shown with their password masked.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ConfigError",
    "ConnectorNotFound",
    "CursorError",
    "EntityNotFound",
    "PatchbayError",
    "QuarantinedRecord",
    "QueryError",
    "RecordNotFound",
    "SourceError",
    "SourceUnavailable",
]


class PatchbayError(Exception):
    """Base class of every error patchbay raises on purpose."""


class ConfigError(PatchbayError):
    """The configuration is invalid. ``location`` is ``file: path.to.key`` when known."""

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None) -> None:
        self.file = file
        self.path = path
        self.message = message
        where = ": ".join(part for part in (file, path) if part)
        super().__init__(f"{where}: {message}" if where else message)


class ConnectorNotFound(PatchbayError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(
            f"Can't load connector: patchbay.connectors:{name}; "
            f"installed connectors: {', '.join(sorted(known)) or '(none)'}"
        )


class EntityNotFound(PatchbayError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        super().__init__(f"unknown entity {name!r}; known entities: {', '.join(sorted(known))}")


class QueryError(PatchbayError):
    """The query cannot be run as asked: the message says what to change."""


class CursorError(QueryError):
    pass


class RecordNotFound(PatchbayError):
    def __init__(self, entity: str, record_id: str) -> None:
        self.entity = entity
        self.record_id = record_id
        super().__init__(f"no {entity} with id {record_id!r}")


class QuarantinedRecord(PatchbayError):
    """Raised instead of quarantining when the query runs in strict mode."""

    def __init__(self, source: str, entity: str, remote_id: str | None, reasons: Sequence[str]):
        self.source = source
        self.entity = entity
        self.remote_id = remote_id
        self.reasons = tuple(reasons)
        super().__init__(
            f"{source}: {entity} {remote_id or '(no id)'} failed validation: {'; '.join(reasons)}"
        )


class SourceError(PatchbayError):
    """A source failed while answering. Names the source and who owns it."""

    def __init__(self, source: str, message: str, *, owner: str | None = None) -> None:
        self.source = source
        self.owner = owner
        self.detail = message
        who = f" (owner: {owner})" if owner else ""
        super().__init__(f"source {source!r}{who}: {message}")


class SourceUnavailable(SourceError):
    """The source cannot be reached right now; retrying later may work."""
