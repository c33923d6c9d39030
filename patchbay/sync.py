"""A synchronous facade over :class:`~patchbay.hub.Hub`.

The async Hub runs on an event loop in a background thread owned by the facade, so the same calls
work from plain scripts and from code already inside a running loop (a Jupyter notebook), where
``asyncio.run`` would refuse. One copy of the logic: every method forwards to the async Hub.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from patchbay.config import Config, SourceConfig, load_config
from patchbay.core.connector import SourceSchema
from patchbay.core.drift import Drift
from patchbay.core.entities import Record
from patchbay.core.filters import Filter
from patchbay.core.policy import EntityView
from patchbay.core.quality import QualityReport, SourceFailure
from patchbay.core.quarantine import QuarantineStore
from patchbay.hub import Hub, Page, QueryStream

__all__ = ["SyncHub", "SyncQuery"]

T = TypeVar("T")


class SyncQuery:
    """``for record in hub.query(...)``; ``quality`` and ``errors`` fill in as it runs."""

    def __init__(self, owner: SyncHub, stream: QueryStream) -> None:
        self._owner = owner
        self._stream = stream

    @property
    def quality(self) -> QualityReport:
        return self._stream.quality

    @property
    def errors(self) -> list[SourceFailure]:
        return self._stream.errors

    def __iter__(self) -> Iterator[Record]:
        try:
            while True:
                try:
                    yield self._owner._run(self._stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._owner._run(self._stream.aclose())


class SyncHub:
    """``with SyncHub.from_config("patchbay.yaml") as hub: hub.fetch("contact", limit=10)``"""

    def __init__(self, config: Config, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="patchbay-hub", daemon=True
        )
        self._thread.start()
        self.hub: Hub = self._run(_make(config, kwargs))

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] = "patchbay.yaml", **kwargs: Any) -> SyncHub:
        return cls(load_config(path), **kwargs)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop.is_closed():
            coroutine.close()
            raise RuntimeError("this SyncHub is closed")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __enter__(self) -> SyncHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def config(self) -> Config:
        return self.hub.config

    @property
    def quarantine(self) -> QuarantineStore:
        return self.hub.quarantine

    def entities(self) -> list[str]:
        return self.hub.entities()

    def sources(self) -> list[SourceConfig]:
        return self.hub.sources()

    def query(
        self, entity: str, where: Filter | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> SyncQuery:
        return SyncQuery(self, self.hub.query(entity, where, **kwargs))

    def fetch(
        self, entity: str, where: Filter | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> Page:
        return self._run(self.hub.fetch(entity, where, **kwargs))

    def get(self, entity: str, record_id: str, **kwargs: Any) -> Record:
        return self._run(self.hub.get(entity, record_id, **kwargs))

    def explain(
        self, entity: str, where: Filter | Mapping[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        return self._run(self.hub.explain(entity, where, **kwargs))

    def check(self, sources: Sequence[str] | None = None) -> dict[str, SourceFailure | None]:
        return self._run(self.hub.check(sources))

    def catalog(self, consumer: str | None = None) -> list[EntityView]:
        """The entities ``consumer`` may read, as it sees them (see :meth:`Hub.catalog`)."""
        return self.hub.catalog(consumer)

    def discover(self, source: str) -> SourceSchema:
        return self._run(self.hub.discover(source))

    def drift(self, sources: Sequence[str] | None = None, *, accept: bool = False) -> list[Drift]:
        return self._run(self.hub.drift(sources, accept=accept))

    def close(self) -> None:
        """Close the Hub and stop the background loop. Safe to call twice."""
        if self._loop.is_closed():
            return
        try:
            self._run(self.hub.close())
            # Async generators a caller left unfinished are closed here, on their own loop,
            # and the clean-ups they started (a reader thread to join) are waited for.
            self._run(self._loop.shutdown_asyncgens())
            self._run(_drain())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()


async def _drain() -> None:
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    if pending:
        await asyncio.wait(pending, timeout=5)


async def _make(config: Config, kwargs: dict[str, Any]) -> Hub:
    # Built on the facade's loop: the Hub's locks and tasks belong to that loop.
    return Hub(config, **kwargs)
