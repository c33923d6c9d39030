"""Every endpoint of the gateway, over real HTTP on 127.0.0.1, against the demo sources."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway_support import CONTACT_ID, MASKED_EMAIL, Served, serve, write_config
from servers import Server

PROBLEM = "application/problem+json"


@pytest.fixture
def served(demo_dir: Path) -> Iterator[Served]:
    write_config(demo_dir)
    yield from serve(demo_dir)


def test_healthz_is_open_and_holds_no_data(served: Served) -> None:
    response = httpx.get(f"{served.url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


def test_catalog_lists_only_what_the_consumer_may_see(served: Served) -> None:
    with served.client("support_bot") as client:
        body = client.get("/v1/entities").json()
    views = {view["name"]: view for view in body["entities"]}
    assert set(views) == {"company", "contact"}
    contact = views["contact"]
    fields = {field["name"]: field for field in contact["fields"]}
    assert "phone" not in fields and "mobile" not in fields
    assert fields["email"]["masked"] == "partial"
    assert fields["email"]["filterable"] is False
    assert "phone" not in contact["json_schema"]["properties"]
    assert views["company"]["operations"] == ["query"]

    with served.client("local") as client:
        everything = {v["name"] for v in client.get("/v1/entities").json()["entities"]}
    assert everything == {"company", "contact", "invoice", "order", "product"}

    with served.client("ops") as client:
        assert client.get("/v1/entities").json() == {"entities": []}


def test_list_records_applies_the_policy_and_filters(served: Served) -> None:
    with served.client("support_bot") as client:
        page = client.get("/v1/entities/contact/records", params={"limit": 5}).json()
        assert page["entity"] == "contact"
        assert len(page["records"]) == 5
        assert page["limit"] == 5 and page["limit_capped"] is False
        assert page["next_cursor"]
        first = page["records"][0]
        assert first["id"] == CONTACT_ID
        assert first["email"] == MASKED_EMAIL
        assert "phone" not in first and "mobile" not in first

        filtered = client.get(
            "/v1/entities/contact/records",
            params={"source": "crm", "address__country__in": "US,GB", "limit": 1000},
        ).json()
        assert filtered["records"]
        assert all(r["source"] == "crm" for r in filtered["records"])
        assert all(r["address"]["country"] in ("US", "GB") for r in filtered["records"])
        assert filtered["next_cursor"] is None

        # quality counts, without the fields this consumer cannot see
        everything = client.get("/v1/entities/contact/records", params={"limit": 1000}).json()
        assert everything["quality"]["quarantined"] == 1
        assert not [k for k in everything["quality"]["nulled"] if "phone" in k]
    with served.client("local") as client:
        trusted = client.get("/v1/entities/contact/records", params={"limit": 1000}).json()
    assert [k for k in trusted["quality"]["nulled"] if k.startswith("erp.phone:")]


def test_cursor_pages_through_everything_once(served: Served) -> None:
    seen: list[str] = []
    with served.client("finance") as client:
        cursor = None
        while True:
            params: dict[str, str | int] = {"limit": 40, "fields": "number,total"}
            if cursor:
                params["cursor"] = cursor
            page = client.get("/v1/entities/invoice/records", params=params).json()
            seen.extend(r["id"] for r in page["records"])
            assert all(set(r) <= {"id", "number", "total"} for r in page["records"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        everything = client.get("/v1/entities/invoice/records", params={"limit": 1000}).json()
    assert len(seen) == len(set(seen)) == len(everything["records"])


def test_limit_is_capped_and_says_so(served: Served) -> None:
    with served.client("local") as client:
        page = client.get("/v1/entities/order/records", params={"limit": 10**9}).json()
    assert page["limit"] == 1000
    assert page["limit_capped"] is True
    assert len(page["records"]) <= 1000


def test_get_one_record(served: Served) -> None:
    with served.client("support_bot") as client:
        record = client.get(f"/v1/entities/contact/records/{CONTACT_ID}").json()
        assert record["id"] == CONTACT_ID
        assert record["email"] == MASKED_EMAIL
        missing = client.get("/v1/entities/contact/records/erp:99999999")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == PROBLEM
        assert missing.json()["type"] == "urn:patchbay:problem:record-not-found"
        # company allows query only
        denied = client.get("/v1/entities/company/records/erp:10001")
        assert denied.status_code == 403
        assert denied.json()["type"] == "urn:patchbay:problem:forbidden"


def test_query_with_the_json_filter(served: Served) -> None:
    body = {
        "where": {"and": [{"field": "source", "op": "eq", "value": "erp"},
                          {"field": "address.country", "op": "in", "value": ["DE", "NL"]}]},
        "fields": ["address", "company_name"],
        "limit": 500,
    }
    with served.client("support_bot") as client:
        page = client.post("/v1/entities/contact/query", json=body).json()
        assert page["records"]
        for record in page["records"]:
            assert set(record) <= {"id", "address", "company_name"}
            assert record["id"].startswith("erp:")
            assert record["address"]["country"] in ("DE", "NL")
        bad = client.post("/v1/entities/contact/query",
                          json={"where": {"field": "source", "op": "nope"}})
        assert bad.status_code == 400
        assert bad.json()["type"] == "urn:patchbay:problem:invalid-query"
        extra = client.post("/v1/entities/contact/query", json={"limit": 0})
        assert extra.status_code == 400


def test_sources_and_health_name_the_owner(served: Served) -> None:
    with served.client("finance") as client:
        sources = client.get("/v1/sources").json()["sources"]
        assert sources == [
            {
                "name": "erp",
                "connector": "sql",
                "owner": "finance-systems@acme.example",
                "description": "Legacy ERP (SQLite file): customers, items, orders and invoices",
                "entities": ["invoice"],
            }
        ]
        health = client.get("/v1/sources/erp/health").json()
        assert health == {"source": "erp", "owner": "finance-systems@acme.example",
                          "healthy": True, "unavailable": False, "error": None}
        # finance reads nothing from the crm: it does not see that source
        hidden = client.get("/v1/sources/crm/health")
        assert hidden.status_code == 404
    with served.client("support_bot") as client:
        names = [s["name"] for s in client.get("/v1/sources").json()["sources"]]
    assert names == ["erp", "crm"]


def test_unknown_entity_and_path_are_problems(served: Served) -> None:
    with served.client("local") as client:
        unknown = client.get("/v1/entities/spaceship/records")
        assert unknown.status_code == 404
        assert unknown.json()["type"] == "urn:patchbay:problem:entity-not-found"
        nowhere = client.get("/v2/nothing")
        assert nowhere.status_code == 404
        assert nowhere.headers["content-type"] == PROBLEM
        wrong = client.delete("/v1/entities/contact/records")
        assert wrong.status_code == 405
        assert wrong.json()["type"] == "urn:patchbay:problem:method-not-allowed"


def test_request_ids_are_kept_or_made(served: Served) -> None:
    with served.client("local", **{"X-Request-ID": "trace-123"}) as client:
        response = client.get("/v1/entities/product/records", params={"limit": 1})
        assert response.headers["x-request-id"] == "trace-123"
        problem = client.get("/v1/entities/product/records", params={"limit": "x"})
        assert problem.json()["request_id"] == "trace-123"
    with served.client("local", **{"X-Request-ID": "bad id\twith spaces"}) as client:
        made = client.get("/healthz").headers["x-request-id"]
    assert made != "bad id\twith spaces" and len(made) == 32
    # The query is audited with the request id; the malformed request never reached the Hub.
    rows = [r for r in served.audit_rows() if r["request_id"] == "trace-123"]
    assert len(rows) == 1
    assert rows[0]["via"] == "rest" and rows[0]["consumer"] == "local"


def test_metrics_need_a_metrics_consumer(served: Served) -> None:
    with served.client("local") as client:
        client.get("/v1/entities/product/records", params={"limit": 3})
        client.get("/v1/entities/contact/records", params={"limit": 1000})
        assert client.get("/metrics").status_code == 403
    assert httpx.get(f"{served.url}/metrics").status_code == 401
    with served.client("ops") as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'patchbay_http_requests_total{method="GET",route="/v1/entities/product/records"' in text
    assert "patchbay_http_request_duration_seconds_bucket" in text
    assert 'patchbay_records_served_total{entity="product"} 3.0' in text
    # the demo CRM export has a row that fails validation: counted as quarantined
    assert 'patchbay_records_quarantined_total{entity="contact",source="crm"}' in text
    assert "patchbay_source_events_total" in text  # the Hub's resilience counters


def test_openapi_is_typed_per_entity_and_holds_no_data(served: Served) -> None:
    document = httpx.get(f"{served.url}/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert {"Contact", "Invoice", "Problem", "Money", "Address"} <= set(schemas)
    assert "required" not in schemas["Contact"]
    assert "required" not in schemas["Company"]  # name is required in the model, not here
    page = document["paths"]["/v1/entities/contact/records"]["get"]["responses"]["200"]
    records = page["content"]["application/json"]["schema"]["properties"]["records"]
    assert records["items"] == {"$ref": "#/components/schemas/Contact"}
    assert "dupont" not in str(document)
    docs = httpx.get(f"{served.url}/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text


def test_x_api_key_header_works_too(served: Served) -> None:
    response = httpx.get(f"{served.url}/v1/entities/product/records",
                         headers={"X-API-Key": served.tokens["local"]}, params={"limit": 1})
    assert response.status_code == 200
    assert len(response.json()["records"]) == 1


def test_the_consumer_rate_limit_is_a_429_with_retry_after(served: Served) -> None:
    with served.client("limited") as client:
        statuses = [client.get("/v1/entities/product/records").status_code for _ in range(3)]
        refused = client.get("/v1/entities/product/records")
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    body = refused.json()
    assert body["type"] == "urn:patchbay:problem:rate-limited"
    assert body["retry_after"] == int(refused.headers["retry-after"])


@pytest.fixture
def served_with_a_broken_source(demo_dir: Path) -> Iterator[Served]:
    import yaml

    path = write_config(demo_dir)
    data = yaml.safe_load(path.read_text())
    crm = data["sources"]["crm"]
    crm["settings"]["directory"] = "missing-export-folder"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    yield from serve(demo_dir)


def test_a_failing_source_is_a_503_naming_source_and_owner(
    served_with_a_broken_source: Served,
) -> None:
    served = served_with_a_broken_source
    with served.client("local") as client:
        failed = client.get("/v1/entities/contact/records", params={"limit": 1000})
        assert failed.status_code == 503
        problem = failed.json()
        assert problem["type"] == "urn:patchbay:problem:source-unavailable"
        assert problem["source"] == "crm" and problem["owner"] == "sales-ops@acme.example"
        assert "records" not in problem

        partial = client.get("/v1/entities/contact/records",
                             params={"limit": 1000, "partial": "true"}).json()
        assert partial["records"] and all(r["source"] == "erp" for r in partial["records"])
        assert [e["source"] for e in partial["errors"]] == ["crm"]
        assert partial["errors"][0]["owner"] == "sales-ops@acme.example"

        health = client.get("/v1/sources/crm/health").json()
        assert health["healthy"] is False and health["owner"] == "sales-ops@acme.example"
        metrics_text = httpx.get(f"{served.url}/metrics",
                                 headers={"Authorization": f"Bearer {served.tokens['ops']}"}).text
    assert 'patchbay_source_errors_total{source="crm"}' in metrics_text


def test_a_front_door_mounted_beside_v1_reuses_authenticate(demo_dir: Path) -> None:
    """The contract the MCP endpoint builds on: authenticate() inside a mounted app."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from patchbay.config import load_config
    from patchbay.gateway import authenticate, create_app
    from patchbay.gateway.problems import Unauthenticated, problem_for
    from patchbay.hub import Hub

    write_config(demo_dir)
    app = create_app(Hub(load_config(demo_dir / "patchbay.yaml")), close_hub=True)

    async def whoami(request: Request) -> Response:
        try:
            principal = await authenticate(request)
        except Unauthenticated as exc:
            return problem_for(exc).response(request.state.request_id)
        return JSONResponse({"consumer": principal.consumer, "key_id": principal.key_id,
                             "scopes": sorted(principal.scopes or [])})

    app.mount("/extra", Starlette(routes=[Route("/whoami", whoami)]))
    key, token = app.state.gateway.keys.create("support_bot", "mcp", ["read:contact"])
    with Server(app) as server:
        ok = httpx.get(f"{server.url}/extra/whoami", headers={"Authorization": f"Bearer {token}"})
        refused = httpx.get(f"{server.url}/extra/whoami")
    assert ok.json() == {"consumer": "support_bot", "key_id": key.id, "scopes": ["read:contact"]}
    assert ok.headers["x-request-id"]
    assert refused.status_code == 401
    assert refused.json()["type"] == "urn:patchbay:problem:unauthenticated"
