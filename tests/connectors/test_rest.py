"""The declarative REST connector against a real uvicorn server on 127.0.0.1.

One FastAPI app serves the same invoices in the five pagination styles (offset, page number,
cursor token in the body, next URL in the body, RFC 8288 Link header), with filters,
``updated_since``, a detail endpoint, a page of HTML, next URLs pointing at another origin and a
"dirty" dataset holding one record without an id. Hubs are built from config with ``api_key``
auth, as a user would write them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from servers import Server

from patchbay import Hub
from patchbay.config import load_config_data
from patchbay.core.errors import SourceError, SourceUnavailable
from patchbay.testing import ConformanceCase, ConnectorConformance

API_KEY = "r3st-k3y-n3ver-app3ar"
OWNER = "billing-team@acme.example"
AUTH = {"scheme": "api_key", "name": "X-API-Key", "value": "env:BILLING_API_KEY"}
START = datetime(2024, 1, 1, tzinfo=UTC)
STATUSES = ("draft", "open", "paid", "void")
SERVER_CAP = 10  # the server returns at most this many records per page, whatever is asked


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _invoice(i: int) -> dict[str, Any]:
    return {"id": i, "number": f"INV-{i:04d}", "status": STATUSES[i % 4],
            "customer": f"C{i % 5}", "total": f"{i * 10}.50", "currency": "EUR",
            "updated_at": _stamp(START + timedelta(hours=7 * i))}


CLEAN = [_invoice(i) for i in range(1, 58)]
BROKEN = {"number": "INV-BROKEN", "status": "open", "customer": "C0", "total": "1.00",
          "currency": "EUR", "updated_at": _stamp(START)}
DIRTY = [*CLEAN[:30], BROKEN, *CLEAN[30:]]
CLEAN_IDS = [f"billing:{i}" for i in range(1, 58)]


# --- the server -------------------------------------------------------------------------------


class Api:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []  # (path, query) of every request
        self.other_origin = "http://127.0.0.1:1"

    def app(self) -> FastAPI:
        app = FastAPI()

        def select(request: Request, dataset: str) -> list[dict[str, Any]]:
            self.seen.append((request.url.path, dict(request.query_params)))
            rows = DIRTY if dataset == "dirty" else CLEAN
            q = request.query_params
            if "status" in q:
                rows = [r for r in rows if r["status"] == q["status"]]
            if "customer" in q:
                rows = [r for r in rows if r["customer"] == q["customer"]]
            if "updated_since" in q:
                since = datetime.fromisoformat(q["updated_since"])
                rows = [r for r in rows if datetime.fromisoformat(r["updated_at"]) >= since]
            return rows

        @app.middleware("http")
        async def key(request: Request, call_next: Any) -> Response:
            if request.headers.get("x-api-key") != API_KEY:
                return Response(status_code=401)
            response: Response = await call_next(request)
            return response

        @app.get("/api/health")
        async def health() -> dict[str, bool]:
            return {"ok": True}

        # Before the generic routes, which would match these paths too.
        @app.get("/api/evil/next")
        async def evil_next() -> dict[str, Any]:
            return {"items": CLEAN[:SERVER_CAP],
                    "links": {"next": f"{self.other_origin}/api/clean/next?start=10"}}

        @app.get("/api/evil/link")
        async def evil_link() -> Response:
            link = f'<{self.other_origin}/api/clean/link?p=1>; rel="next"'
            return JSONResponse(CLEAN[:SERVER_CAP], headers={"Link": link})

        # A server bug: after two pages, the same cursor / next page comes back for ever.
        @app.get("/api/loop/cursor")
        async def loop_cursor(request: Request, after: str = "i-0") -> dict[str, Any]:
            self.seen.append((request.url.path, dict(request.query_params)))
            start = min(int(after.removeprefix("i-")), SERVER_CAP)
            return {"results": CLEAN[start:start + SERVER_CAP],
                    "paging": {"next": {"after": f"i-{min(start + SERVER_CAP, SERVER_CAP)}"}}}

        @app.get("/api/loop/next")
        async def loop_next(request: Request, start: int = 0) -> dict[str, Any]:
            self.seen.append((request.url.path, dict(request.query_params)))
            return {"items": CLEAN[:SERVER_CAP],
                    "links": {"next": str(request.url.replace_query_params(start=SERVER_CAP))}}

        @app.get("/api/loop/link")
        async def loop_link(request: Request, p: int = 0) -> Response:
            self.seen.append((request.url.path, dict(request.query_params)))
            return JSONResponse(CLEAN[:SERVER_CAP],
                                headers={"Link": '</api/loop/link?p=1>; rel="next"'})

        @app.get("/api/{dataset}/offset")
        async def by_offset(request: Request, dataset: str, offset: int = 0, limit: int = 10
                            ) -> dict[str, Any]:
            rows = select(request, dataset)
            size = min(limit, SERVER_CAP)
            return {"data": {"items": rows[offset:offset + size]}, "meta": {"total": len(rows)}}

        @app.get("/api/{dataset}/page")
        async def by_page(request: Request, dataset: str, page: int = 1, per_page: int = 10
                          ) -> dict[str, Any]:
            rows = select(request, dataset)
            return {"data": {"items": rows[(page - 1) * per_page:page * per_page]}}

        @app.get("/api/{dataset}/cursor")
        async def by_cursor(request: Request, dataset: str, after: str = "i-0") -> dict[str, Any]:
            rows = select(request, dataset)
            start = int(after.removeprefix("i-"))
            chunk = rows[start:start + SERVER_CAP]
            more = start + SERVER_CAP < len(rows)
            paging = {"next": {"after": f"i-{start + SERVER_CAP}"}} if more else {}
            return {"results": chunk, "paging": paging}

        def following(request: Request, name: str, value: int) -> str:
            query = dict(request.query_params)
            query[name] = str(value)
            return str(request.url.replace_query_params(**query))

        @app.get("/api/{dataset}/next")
        async def by_next_url(request: Request, dataset: str, start: int = 0) -> dict[str, Any]:
            rows = select(request, dataset)
            more = start + SERVER_CAP < len(rows)
            return {"items": rows[start:start + SERVER_CAP],
                    "links": {"next": following(request, "start", start + SERVER_CAP)
                              if more else None}}

        @app.get("/api/{dataset}/link")
        async def by_link(request: Request, dataset: str, p: int = 0) -> Response:
            rows = select(request, dataset)
            headers = {}
            if (p + 1) * SERVER_CAP < len(rows):
                nxt = following(request, "p", p + 1)
                relative = nxt[nxt.index("/api/"):]  # a relative link, resolved by the client
                headers["Link"] = f'<{relative}>; rel="next", </api/{dataset}/link>; rel="first"'
            return JSONResponse(rows[p * SERVER_CAP:(p + 1) * SERVER_CAP], headers=headers)

        @app.get("/api/{dataset}/invoices/{ident}")
        async def detail(request: Request, dataset: str, ident: str) -> Response:
            self.seen.append((request.url.path, dict(request.query_params)))
            for row in CLEAN:
                if str(row["id"]) == ident:
                    return JSONResponse({"data": row})
            return JSONResponse({"error": "not found"}, status_code=404)

        @app.get("/api/html")
        async def html() -> HTMLResponse:
            return HTMLResponse("<html><body>Maintenance</body></html>")

        @app.get("/api/fail/{status}")
        async def fail(status: int) -> Response:
            return JSONResponse({"error": "nope"}, status_code=status)

        return app


def other_app(hits: list[str]) -> FastAPI:
    app = FastAPI()

    @app.get("/{path:path}")
    async def anything(request: Request, path: str) -> dict[str, Any]:
        hits.append(request.headers.get("x-api-key") or "(no key)")
        return {"items": [], "data": {"items": []}}

    return app


@pytest.fixture(scope="module")
def other() -> Iterator[tuple[Server, list[str]]]:
    hits: list[str] = []
    with Server(other_app(hits)) as running:
        yield running, hits


@pytest.fixture(scope="module")
def api(other: tuple[Server, list[str]]) -> Iterator[tuple[Server, Api]]:
    state = Api()
    state.other_origin = other[0].url
    with Server(state.app()) as running:
        yield running, state


@pytest.fixture(autouse=True)
def _api_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BILLING_API_KEY", API_KEY)


# --- config -----------------------------------------------------------------------------------

STYLES: dict[str, dict[str, Any]] = {
    "offset": {"endpoint": "/{ds}/offset", "records": "data.items",
               "pagination": {"type": "offset", "limit": 25, "offset_param": "offset",
                              "limit_param": "limit"},
               "stop": {"total_path": "meta.total"}},
    "page": {"endpoint": "/{ds}/page", "records": "data.items",
             "pagination": {"type": "page", "size": 10, "page_param": "page",
                            "size_param": "per_page", "first": 1}},
    "cursor": {"endpoint": "/{ds}/cursor", "records": "results",
               "pagination": {"type": "cursor", "cursor_param": "after",
                              "cursor_path": "paging.next.after"}},
    "next_url": {"endpoint": "/{ds}/next", "records": "items",
                 "pagination": {"type": "next_url", "next_path": "links.next"}},
    "link_header": {"endpoint": "/{ds}/link", "records": "",
                    "pagination": {"type": "link_header"}},
}


def origin(style: str, dataset: str = "clean", **extra: Any) -> dict[str, Any]:
    block = copy.deepcopy(STYLES[style])
    block["endpoint"] = block["endpoint"].format(ds=dataset)
    block.update({"params": {"scope": "all"},
                  "since": {"param": "updated_since", "format": "iso"},
                  "filters": {"status": "status", "customer": "customer"}})
    block.update(extra)
    return block


def source(url: str, from_: dict[str, Any], *, auth: dict[str, Any] | None = None,
           **settings: Any) -> dict[str, Any]:
    return {
        "connector": "rest", "owner": OWNER, "auth": auth or AUTH,
        "resilience": {"retry": {"attempts": 2, "backoff": 0.01}},
        "settings": {"base_url": f"{url}/api", "headers": {"Accept": "application/json"},
                     "health": "/health", **settings},
        "entities": {"invoice": {
            "from": from_, "id": "id", "updated_at": "updated_at",
            "fields": {"number": "number", "status": "status",
                       "customer_id": {"path": "customer", "transform": "ref"},
                       "total": {"path": ["total", "currency"], "transform": "money"}}}},
    }


def config(url: str, from_: dict[str, Any], tmp_path: Path, **kwargs: Any) -> dict[str, Any]:
    return {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}",
            "secret_key": "rest-tests-secret-key-0123456789",
            "sources": {"billing": source(url, from_, **kwargs)}}


def hub_for(url: str, from_: dict[str, Any], tmp_path: Path, *, pushdown: bool = True,
            **kwargs: Any) -> Hub:
    data = config(url, from_, tmp_path, **kwargs)
    return Hub(load_config_data(data, base_dir=tmp_path), pushdown=pushdown)


async def ids(hub: Hub, **kwargs: Any) -> list[str]:
    return [r.id async for r in hub.query("invoice", **kwargs)]


# --- reading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("style", sorted(STYLES))
async def test_reads_every_record_in_each_pagination_style(
    api: tuple[Server, Api], tmp_path: Path, style: str
) -> None:
    server, _ = api
    async with hub_for(server.url, origin(style), tmp_path) as hub:
        got = await ids(hub)
        page = await hub.fetch("invoice", limit=13)
        resumed = await hub.fetch("invoice", limit=100, cursor=page.next_cursor)
    assert got == CLEAN_IDS
    assert [r.id for r in page.records] + [r.id for r in resumed.records] == CLEAN_IDS


async def test_records_are_mapped(api: tuple[Server, Api], tmp_path: Path) -> None:
    server, _ = api
    async with hub_for(server.url, origin("offset"), tmp_path) as hub:
        (first,) = [r async for r in hub.query("invoice", limit=1)]
    assert first.model_dump(mode="json", include={"id", "number", "status", "customer_id",
                                                  "total", "updated_at"}) == {
        "id": "billing:1", "number": "INV-0001", "status": "open", "customer_id": "billing:C1",
        "total": {"amount": "10.50", "currency": "EUR"}, "updated_at": "2024-01-01T07:00:00Z",
    }


async def test_filters_are_pushed_down_and_equal_the_in_memory_result(
    api: tuple[Server, Api], tmp_path: Path
) -> None:
    server, state = api
    where = {"status": "paid", "customer_id": "billing:C3", "number__contains": "00"}
    async with hub_for(server.url, origin("cursor"), tmp_path) as hub:
        plan = await hub.explain("invoice", **where)
        state.seen.clear()
        pushed = await ids(hub, **where)
        requests = list(state.seen)
    async with hub_for(server.url, origin("cursor"), tmp_path, pushdown=False) as memory:
        reference = await ids(memory, **where)
    assert pushed == reference
    assert pushed == [f"billing:{i}" for i in range(1, 58) if i % 4 == 2 and i % 5 == 3]
    described = plan["sources"][0]
    assert {(p["path"], p["op"]) for p in described["pushed_down"]} == {
        ("status", "eq"), ("customer", "eq")}
    assert any("number contains" in k for k in described["in_memory_only"])
    assert requests and all(q["status"] == "paid" and q["customer"] == "C3" and q["scope"] == "all"
                            for _, q in requests)


async def test_only_eq_on_a_declared_filter_is_pushed(
    api: tuple[Server, Api], tmp_path: Path
) -> None:
    server, _ = api
    async with hub_for(server.url, origin("offset"), tmp_path) as hub:
        plan = await hub.explain("invoice", status__in=["paid", "void"], number="INV-0002")
        got = await ids(hub, status__in=["paid", "void"])
    assert plan["sources"][0]["pushed_down"] == []
    assert got == [f"billing:{i}" for i in range(1, 58) if i % 4 in (2, 3)]


async def test_since_is_pushed_as_the_declared_parameter(
    api: tuple[Server, Api], tmp_path: Path
) -> None:
    server, state = api
    since = START + timedelta(hours=7 * 40)
    async with hub_for(server.url, origin("page"), tmp_path) as hub:
        state.seen.clear()
        got = await ids(hub, since=since)
        requests = list(state.seen)
    assert got == [f"billing:{i}" for i in range(40, 58)]
    # The Hub widens the bound by the 14 hours a time zone can add, then re-checks in memory.
    assert {q["updated_since"] for _, q in requests} == {_stamp(since - timedelta(hours=14))}


async def test_get_uses_the_detail_endpoint(api: tuple[Server, Api], tmp_path: Path) -> None:
    server, state = api
    block = origin("offset", detail="/clean/invoices/{id}", detail_record="data")
    async with hub_for(server.url, block, tmp_path) as hub:
        state.seen.clear()
        record = await hub.get("invoice", "billing:42")
        requests = list(state.seen)
    assert record.number == "INV-0042"
    assert [path for path, _ in requests] == ["/api/clean/invoices/42"]


async def test_get_without_detail_scans(api: tuple[Server, Api], tmp_path: Path) -> None:
    server, _ = api
    async with hub_for(server.url, origin("link_header"), tmp_path) as hub:
        record = await hub.get("invoice", "billing:33")
    assert record.number == "INV-0033"


async def test_a_record_without_id_is_quarantined(api: tuple[Server, Api], tmp_path: Path) -> None:
    server, _ = api
    async with hub_for(server.url, origin("next_url", "dirty"), tmp_path) as hub:
        stream = hub.query("invoice")
        got = [r.id async for r in stream]
        kept = hub.quarantine.list(source="billing", entity="invoice")
    assert got == CLEAN_IDS
    assert stream.quality.quarantined == 1
    assert len(kept) == 1 and kept[0].raw["number"] == "INV-BROKEN"


# --- refusals and errors ------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["next_url", "link_header"])
async def test_a_next_page_on_another_origin_is_refused(
    api: tuple[Server, Api], other: tuple[Server, list[str]], tmp_path: Path, style: str
) -> None:
    server, _ = api
    _, hits = other
    async with hub_for(server.url, origin(style, "evil"), tmp_path) as hub:
        with pytest.raises(SourceError, match="refused the next page") as info:
            await ids(hub)
    message = str(info.value)
    assert "billing" in message and OWNER in message
    assert hits == []  # not one request, so no credential, reached the other origin


@pytest.mark.parametrize("style", ["cursor", "next_url", "link_header"])
async def test_a_next_page_that_repeats_is_an_error_not_a_loop(
    api: tuple[Server, Api], tmp_path: Path, style: str
) -> None:
    server, app = api
    async with hub_for(server.url, origin(style, "loop"), tmp_path) as hub:
        with pytest.raises(SourceError, match="twice; stopped instead of reading the same "
                                              "pages forever") as info:
            await ids(hub)
    assert "billing" in str(info.value) and OWNER in str(info.value)
    path = {"cursor": "/api/loop/cursor", "next_url": "/api/loop/next",
            "link_header": "/api/loop/link"}[style]
    assert [seen for seen, _ in app.seen].count(path) == 2  # the second page, then it stops


async def test_page_cap_is_an_error_not_a_silent_stop(
    api: tuple[Server, Api], tmp_path: Path
) -> None:
    server, _ = api
    async with hub_for(server.url, origin("page"), tmp_path, page_cap=3) as hub:
        with pytest.raises(SourceError, match="page_cap reached") as info:
            await ids(hub)
    assert OWNER in str(info.value)


async def test_html_and_a_missing_records_path_name_endpoint_and_path(
    api: tuple[Server, Api], tmp_path: Path
) -> None:
    server, _ = api
    async with hub_for(server.url, {"endpoint": "/html"}, tmp_path) as hub:
        with pytest.raises(SourceError, match=r"/html: .*text/html.*not JSON"):
            await ids(hub)
    block = origin("offset", records="data.rows")
    async with hub_for(server.url, block, tmp_path) as hub:
        with pytest.raises(SourceError, match=r"/clean/offset: no list .* 'data\.rows'"):
            await ids(hub)
        with pytest.raises(SourceError, match="data.rows"):
            await hub.discover("billing")


async def test_http_errors_name_source_owner_and_status_never_the_query(
    api: tuple[Server, Api], tmp_path: Path
) -> None:
    server, _ = api
    in_query = {"scheme": "api_key", "name": "X-API-Key", "value": "env:BILLING_API_KEY"}
    block = {"endpoint": "/fail/500", "params": {"token": "t0p-s3cret-param"}}
    async with hub_for(server.url, block, tmp_path, auth=in_query) as hub:
        with pytest.raises(SourceUnavailable) as down:
            await ids(hub)
    async with hub_for(server.url, {"endpoint": "/fail/403"}, tmp_path) as hub:
        with pytest.raises(SourceError) as denied:
            await ids(hub)
    assert not isinstance(denied.value, SourceUnavailable)
    for error, status in ((down.value, "500"), (denied.value, "403")):
        message = str(error)
        assert "billing" in message and OWNER in message and status in message
        assert f"GET 127.0.0.1:{server.port}/api/fail/{status}" in message
        assert "?" not in message and "t0p-s3cret" not in message and API_KEY not in message


async def test_a_bad_from_block_names_the_path(api: tuple[Server, Api], tmp_path: Path) -> None:
    server, _ = api
    block = origin("offset", pagination={"type": "offset", "limit": 0})
    async with hub_for(server.url, block, tmp_path) as hub:
        with pytest.raises(SourceError, match=r"entities\.invoice\.from\.pagination\..*limit"):
            await ids(hub)
    block = origin("cursor", endpoint="https://elsewhere.example/invoices")
    async with hub_for(server.url, block, tmp_path) as hub:
        with pytest.raises(SourceError, match=r"from\.endpoint: .*relative to base_url"):
            await ids(hub)


async def test_check_and_discover(api: tuple[Server, Api], tmp_path: Path) -> None:
    server, _ = api
    block = origin("offset")
    async with hub_for(server.url, block, tmp_path, discover=[block]) as hub:
        assert await hub.check() == {"billing": None}
        schema = await hub.discover("billing")
    (table,) = schema.tables
    assert table.name == "/clean/offset"
    assert {c.name: c.type for c in table.columns} == {
        "id": "integer", "number": "string", "status": "string", "customer": "string",
        "total": "string", "currency": "string", "updated_at": "string"}
    async with hub_for(server.url, {"endpoint": "/x"}, tmp_path, health="/fail/503") as hub:
        failure = (await hub.check())["billing"]
    assert failure is not None and failure.unavailable and "503" in failure.error


# --- the conformance kit ------------------------------------------------------------------------


class TestRestConformanceOffset(ConnectorConformance):
    @pytest.fixture
    def case(self, api: tuple[Server, Api], tmp_path: Path) -> ConformanceCase:
        server, _ = api
        block = origin("offset", "dirty", detail="/clean/invoices/{id}", detail_record="data")
        return ConformanceCase(config=config(server.url, block, tmp_path, discover=[block]),
                               source="billing", entity="invoice", base_dir=tmp_path,
                               quarantined=1)


class TestRestConformanceCursor(ConnectorConformance):
    @pytest.fixture
    def case(self, api: tuple[Server, Api], tmp_path: Path) -> ConformanceCase:
        server, _ = api
        block = origin("cursor", "dirty")
        return ConformanceCase(config=config(server.url, block, tmp_path, discover=[block]),
                               source="billing", entity="invoice", base_dir=tmp_path,
                               quarantined=1)


class TestRestConformanceLinkHeader(ConnectorConformance):
    @pytest.fixture
    def case(self, api: tuple[Server, Api], tmp_path: Path) -> ConformanceCase:
        server, _ = api
        block = origin("link_header", "dirty")
        return ConformanceCase(config=config(server.url, block, tmp_path, discover=[block]),
                               source="billing", entity="invoice", base_dir=tmp_path,
                               quarantined=1)
