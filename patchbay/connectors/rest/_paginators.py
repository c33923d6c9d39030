"""Paginators: how to ask for a page, and what the next page is.

Each follows a three-method contract (as dlt's do), composed into the connector:

* ``start()``: the state of the first page;
* ``call(state)``: the request for the page at ``state``: query parameters added to the
  endpoint's, or an absolute URL to GET as it is (a next URL from the body or a Link header);
* ``advance(state, count, response, body)``: the state of the next page, or ``None`` when this
  page was the last.

A state is JSON (an offset, a page number, a cursor token, a URL), so it goes into positions
and cursors as it is. An empty page always ends a read; the connector checks that itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from ._spec import (
    CursorPages,
    LinkHeaderPages,
    NextUrlPages,
    NoPages,
    OffsetPages,
    PageNumbers,
    Stop,
)

__all__ = ["MISSING", "PageCall", "Paginator", "State", "at_path", "paginator"]

State = Any  # JSON: int, str or None
MISSING = object()


@dataclass(frozen=True, slots=True)
class PageCall:
    params: dict[str, str] = field(default_factory=dict)
    url: str | None = None  # absolute: GET it as is (it carries its own query string)


class Paginator(Protocol):
    def start(self) -> State: ...

    def call(self, state: State) -> PageCall: ...

    def advance(self, state: State, count: int, response: httpx.Response, body: Any
                ) -> State | None: ...

    def valid(self, state: object) -> bool:
        """Whether ``state`` (from a position) is one this paginator produces."""
        ...


def at_path(body: Any, path: str) -> Any:
    """The value at a dotted path (``data.items``, ``links.0.href``); ``""`` is the body."""
    value = body
    for part in path.split(".") if path else ():
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def _resolved(response: httpx.Response, found: Any) -> str | None:
    """A next URL, absolute: a relative one is relative to the page it came with."""
    if not isinstance(found, str) or not found:
        return None
    return str(response.request.url.join(found))


def _total(body: Any, stop: Stop) -> int | None:
    if stop.total_path is None:
        return None
    value = at_path(body, stop.total_path)
    return value if type(value) is int else None


@dataclass(frozen=True, slots=True)
class _Offset:
    spec: OffsetPages
    stop: Stop

    def start(self) -> State:
        return self.spec.start

    def call(self, state: State) -> PageCall:
        return PageCall({self.spec.offset_param: str(state), self.spec.limit_param:
                         str(self.spec.limit)})

    def advance(self, state: State, count: int, response: httpx.Response, body: Any
                ) -> State | None:
        after = int(state) + count  # not + limit: a server may cap the limit lower
        total = _total(body, self.stop)
        return None if total is not None and after >= total else after

    def valid(self, state: object) -> bool:
        return type(state) is int and state >= 0


@dataclass(frozen=True, slots=True)
class _Page:
    spec: PageNumbers
    stop: Stop

    def start(self) -> State:
        return self.spec.first

    def call(self, state: State) -> PageCall:
        params = {self.spec.page_param: str(state)}
        if self.spec.size_param:
            params[self.spec.size_param] = str(self.spec.size)
        return PageCall(params)

    def advance(self, state: State, count: int, response: httpx.Response, body: Any
                ) -> State | None:
        total = _total(body, self.stop)
        seen = (int(state) - self.spec.first) * self.spec.size + count
        return None if total is not None and seen >= total else int(state) + 1

    def valid(self, state: object) -> bool:
        return type(state) is int and state >= self.spec.first


@dataclass(frozen=True, slots=True)
class _Cursor:
    spec: CursorPages

    def start(self) -> State:
        return None

    def call(self, state: State) -> PageCall:
        return PageCall({} if state is None else {self.spec.cursor_param: str(state)})

    def advance(self, state: State, count: int, response: httpx.Response, body: Any
                ) -> State | None:
        token = at_path(body, self.spec.cursor_path)
        if token is MISSING or token is None or token == "" or token is False:
            return None
        return str(token)

    def valid(self, state: object) -> bool:
        return state is None or isinstance(state, str)


class _FollowUrl:
    """Pages found by URL (the first is the endpoint): the state is the next page's URL."""

    __slots__ = ()

    def start(self) -> State:
        return None

    def call(self, state: State) -> PageCall:
        return PageCall() if state is None else PageCall(url=str(state))

    def valid(self, state: object) -> bool:
        return state is None or isinstance(state, str)


@dataclass(frozen=True, slots=True)
class _NextUrl(_FollowUrl):
    spec: NextUrlPages

    def advance(self, state: State, count: int, response: httpx.Response, body: Any
                ) -> State | None:
        return _resolved(response, at_path(body, self.spec.next_path))


@dataclass(frozen=True, slots=True)
class _LinkHeader(_FollowUrl):
    spec: LinkHeaderPages

    def advance(self, state: State, count: int, response: httpx.Response, body: Any
                ) -> State | None:
        return _resolved(response, response.links.get("next", {}).get("url"))


@dataclass(frozen=True, slots=True)
class _Single:
    spec: NoPages

    def start(self) -> State:
        return 0

    def call(self, state: State) -> PageCall:
        return PageCall()

    def advance(self, state: State, count: int, response: httpx.Response, body: Any
                ) -> State | None:
        return None

    def valid(self, state: object) -> bool:
        return state == 0


def paginator(spec: Any, stop: Stop) -> Paginator:
    """The paginator of a validated ``pagination:`` block."""
    if isinstance(spec, OffsetPages):
        return _Offset(spec, stop)
    if isinstance(spec, PageNumbers):
        return _Page(spec, stop)
    if isinstance(spec, CursorPages):
        return _Cursor(spec)
    if isinstance(spec, NextUrlPages):
        return _NextUrl(spec)
    if isinstance(spec, LinkHeaderPages):
        return _LinkHeader(spec)
    if isinstance(spec, NoPages):
        return _Single(spec)
    raise TypeError(f"unknown pagination {spec!r}")
