"""Talking JSON to a source over the Hub's client, the same way in every HTTP connector.

A connector builds one :class:`JsonApi` from its ``Resources`` and its base URL, and asks it:

* ``get_json`` / ``post_json``: the JSON body of a 2xx answer. A transport failure (refused,
  timed out) and a 429 or 5xx are ``SourceUnavailable``, any other status a ``SourceError``;
  both name the source and its owner and describe the request as method + host + path, never
  the query string (it may hold a key, a token or filter values). An answer that is not JSON
  (an HTML login page, say) is an error that says so.
* ``send`` for the answer itself (its headers, its URL) and ``request`` for an answer of any
  status, for a connector that reads error bodies of its own (Salesforce);
* ``same_origin`` before following a next link: only the base URL's origin (scheme, host,
  port) is ever called, so credentials never leave it.

:class:`PageGuard` keeps one read from looping: a page cap that is an error, not a silent
stop, and a next token or link that comes twice (a server bug) refused. ``quarantined`` keeps a
record that is not a JSON object, with the reason, and :data:`BaseUrl` validates a base URL
setting. The connector keeps what is its API's own: how pages are found, what an error body
says (``explain``), which headers report quotas (``observe``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator

from patchbay.core.connector import Resources
from patchbay.core.errors import SourceError, SourceUnavailable
from patchbay.core.mapping import ROW_ERRORS_KEY

__all__ = ["BaseUrl", "JsonApi", "PageGuard", "describe_request", "json_type", "quarantined"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _base_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise ValueError(f"not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("need an http:// or https:// URL with a host")
    if url.query or url.fragment:
        raise ValueError("no query string or fragment: only where the API is (the connector adds "
                         "the query)")
    return value.rstrip("/")


# A settings field holding where an API is: http(s) with a host, no query string or fragment,
# no trailing slash (paths are appended to it).
BaseUrl = Annotated[str, AfterValidator(_base_url)]


def describe_request(method: str, url: httpx.URL | str) -> str:
    """``GET api.example.com/v2/invoices``: method, host and path, never the query string."""
    url = httpx.URL(url)
    port = f":{url.port}" if url.port else ""
    return f"{method} {url.host}{port}{url.path}"


def json_type(value: Any) -> str:
    """The JSON type of a parsed value, as a message or a schema names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def quarantined(value: Any, where: str) -> dict[str, Any]:
    """A record that is not a JSON object, kept with the reason so the mapping quarantines it
    instead of losing it."""
    return {"_value": value, ROW_ERRORS_KEY: [f"{where}: a JSON {json_type(value)}, not an object"]}


def _at(where: str, message: str) -> str:
    return f"{where}: {message}" if where else message


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


class JsonApi:
    """One source's JSON API through the Hub's client (auth, retries, rate limit, breaker).

    ``setting``: the settings field holding ``base_url``, as messages name it. ``headers``: sent
    with every request. ``explain(status, body)``: the source's own words on a refused request,
    appended to the message (``body`` is the parsed JSON, None when the body is not JSON).
    ``observe(response)``: sees every answer first (quota headers).
    """

    def __init__(self, resources: Resources, base_url: str, *, setting: str = "base_url",
                 headers: Mapping[str, str] | None = None,
                 explain: Callable[[int, Any], str] | None = None,
                 observe: Callable[[httpx.Response], None] | None = None) -> None:
        self.client: httpx.AsyncClient = resources.http_client
        self.source = resources.source
        self.owner = resources.owner
        self.base_url = base_url.rstrip("/")
        self.base = httpx.URL(self.base_url)
        self.setting = setting
        self.headers = dict(headers or {})
        self._explain = explain
        self._observe = observe

    def error(self, message: str) -> SourceError:
        return SourceError(self.source, message, owner=self.owner)

    def unavailable(self, message: str) -> SourceUnavailable:
        return SourceUnavailable(self.source, message, owner=self.owner)

    def url(self, path: str) -> str:
        """``path`` below the base URL."""
        return f"{self.base_url}/{path.lstrip('/')}"

    def same_origin(self, target: str, where: str = "") -> str:
        """``target`` (absolute, or relative to the base URL) as an absolute URL, refused unless
        it is on the base URL's origin: the client sends the source's credentials with it."""
        url = self.base.join(target)
        if _origin(url) != _origin(self.base):
            scheme, host, port = _origin(url)
            raise self.error(_at(where, (
                f"refused the next page at {scheme}://{host}:{port}, another origin than "
                f"{self.setting}'s ({self.base.scheme}://{self.base.host}); credentials are only "
                f"sent to {self.setting}'s origin"
            )))
        return str(url)

    # --- requests ------------------------------------------------------------------------------

    async def get_json(self, url: str, params: Mapping[str, str] | None = None, *,
                       where: str = "", headers: Mapping[str, str] | None = None,
                       missing_ok: bool = False) -> Any:
        """The JSON body of a GET; None for a 404 when ``missing_ok`` (a record that is not
        there)."""
        response = await self.request("GET", url, params=params, headers=headers, where=where)
        if response.status_code == 404 and missing_ok:
            return None
        if not response.is_success:
            raise self.refusal(response, where)
        return self.parse_json(response, where)

    async def post_json(self, url: str, body: Any, *, where: str = "",
                        headers: Mapping[str, str] | None = None,
                        extensions: dict[str, Any] | None = None) -> Any:
        """The JSON body of the answer to a POST of ``body`` as JSON."""
        response = await self.send("POST", url, json=body, headers=headers, where=where,
                                   extensions=extensions)
        return self.parse_json(response, where)

    async def send(self, method: str, url: str, *, where: str = "",
                   params: Mapping[str, str] | None = None, json: Any = None,
                   headers: Mapping[str, str] | None = None,
                   extensions: dict[str, Any] | None = None) -> httpx.Response:
        """A 2xx answer; any other status raises (see ``refusal``)."""
        response = await self.request(method, url, where=where, params=params, json=json,
                                      headers=headers, extensions=extensions)
        if not response.is_success:
            raise self.refusal(response, where)
        return response

    async def request(self, method: str, url: str, *, where: str = "",
                      params: Mapping[str, str] | None = None, json: Any = None,
                      headers: Mapping[str, str] | None = None,
                      extensions: dict[str, Any] | None = None) -> httpx.Response:
        """The answer, whatever its status; a transport failure is ``SourceUnavailable``."""
        try:
            # params=None, not {}: an empty dict would drop the query string of a next link
            response = await self.client.request(
                method, url, params=params or None, json=json,
                headers={**self.headers, **(headers or {})}, extensions=extensions,
            )
        except SourceError:
            raise  # the auth layer's, already naming the source
        except httpx.HTTPError as exc:
            failure = f"{describe_request(method, url)}: {type(exc).__name__}"
            raise self.unavailable(_at(where, failure)) from None
        if self._observe is not None:
            self._observe(response)
        return response

    # --- answers -------------------------------------------------------------------------------

    def refusal(self, response: httpx.Response, where: str = "", *, detail: str | None = None
                ) -> SourceError:
        """The error for an answer that is not a 2xx: a 429 or 5xx may pass (unavailable),
        a redirect means the base URL is wrong. ``detail`` (default: ``explain``'s) follows
        the status."""
        status = response.status_code
        if detail is None:
            detail = "" if self._explain is None else self._explain(status, _json_or_none(response))
        answer = f"{_request_of(response)} answered {status} {response.reason_phrase}".rstrip()
        message = _at(where, answer) + detail
        if 300 <= status < 400:
            return self.error(f"{message}: a redirect (set settings.{self.setting} to where "
                              "the API is)")
        if status == 429 or status >= 500:
            return self.unavailable(message)
        return self.error(message)

    def parse_json(self, response: httpx.Response, where: str = "") -> Any:
        """The body as JSON; an error naming the request and the content type if it is not."""
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise self.error(_at(where, (
                f"{_request_of(response)} answered {kind} (status {response.status_code}), "
                f"not JSON (check settings.{self.setting})"
            ))) from None


def _request_of(response: httpx.Response) -> str:
    return describe_request(response.request.method, response.request.url)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class PageGuard:
    """What keeps one read from looping: at most ``cap`` pages (None: no cap), and no next
    token or link twice. ``seen``: tokens already followed (a resumed read's)."""

    def __init__(self, api: JsonApi, *, cap: int | None = None, seen: Iterable[str] = ()) -> None:
        self.api = api
        self.cap = cap
        self.fetched = 0
        self.seen = set(seen)

    def count(self, where: str) -> int:
        """One more page is about to be fetched: its number, or an error past the cap."""
        if self.cap is not None and self.fetched >= self.cap:
            raise self.api.error(
                f"{where}: page_cap reached: read {self.fetched} pages and the API still has "
                "more; raise settings.page_cap if that is expected"
            )
        self.fetched += 1
        return self.fetched

    def fresh(self, token: str, where: str, what: str) -> str:
        """``token`` if it was not followed before in this read; ``what`` names it."""
        if token in self.seen:
            raise self.api.error(f"{where}: the API sent the same {what} twice; stopped "
                                 "instead of reading the same pages forever")
        self.seen.add(token)
        return token
