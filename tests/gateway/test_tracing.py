"""OpenTelemetry: a server span per request, and a span around the Hub call inside it, when a
tracer provider is configured (here the SDK's, exporting to memory)."""

from __future__ import annotations

from pathlib import Path

from gateway_support import serve, write_config
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind


def test_spans_around_requests_and_hub_calls(demo_dir: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    write_config(demo_dir)
    for served in serve(demo_dir, tracer_provider=provider):
        with served.client("support_bot", **{"X-Request-ID": "span-1"}) as client:
            assert client.get("/v1/entities/contact/records", params={"limit": 3}).is_success
            assert client.get("/v1/entities/contact/records/erp:10001").is_success
            assert client.get("/v1/entities/invoice/records").status_code == 403
    spans = exporter.get_finished_spans()
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == [
        "GET /v1/entities/contact/records",
        "GET /v1/entities/contact/records/{record_id:path}",
        "GET /v1/entities/invoice/records",
    ]
    first = servers[0]
    assert first.attributes is not None
    assert first.attributes["http.response.status_code"] == 200
    assert first.attributes["patchbay.request_id"] == "span-1"
    assert first.attributes["patchbay.consumer"] == "support_bot"
    assert servers[2].attributes is not None
    assert servers[2].attributes["http.response.status_code"] == 403
    fetch = next(s for s in spans if s.name == "patchbay.fetch")
    assert fetch.parent is not None and fetch.parent.span_id == first.context.span_id
    assert fetch.attributes is not None
    assert fetch.attributes["patchbay.records"] == 3
    assert "erp" in fetch.attributes["patchbay.sources"]
    reads = [s for s in spans if s.name == "patchbay.source.read"]
    under_fetch = [s for s in reads if s.parent and s.parent.span_id == fetch.context.span_id]
    # both sources serving contact are read, concurrently, each in a span under the fetch
    assert sorted(s.attributes and s.attributes["patchbay.source"] for s in under_fetch) == [
        "crm", "erp"]
    get = next(s for s in spans if s.name == "patchbay.get")
    assert get.parent is not None and get.parent.span_id == servers[1].context.span_id
    # no span carries a query string or a record value
    assert "dupont" not in str([dict(s.attributes or {}) for s in spans])
