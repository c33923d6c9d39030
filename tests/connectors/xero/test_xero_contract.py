"""Contract validity: every request the xero connector sends, for every preset entity, is one
Xero's published OpenAPI description accepts. Prism (the Stoplight mock server) serves
../shared/specs/xero/xero_accounting.yaml and judges each request (auth, the required
``xero-tenant-id`` header, parameter types, the ``If-Modified-Since`` date-time format); no
request may get a 4xx or a violation. Prism does not obey request values, so what the requests
*mean* is tested against the handler app in test_xero.py."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prism import PrismMock, prism_binary, prism_server, shared_prism
from support import REQUIRED

from patchbay import Hub
from patchbay.config import load_config_data
from patchbay.core.connector import ReadRequest
from patchbay.core.errors import RecordNotFound

SPEC = Path("specs") / "xero" / "xero_accounting.yaml"
TENANT = "00000000-0000-4000-8000-0000000000aa"
SOME_GUID = "5cc8cf28-567e-4d43-b287-687cfcaec47c"
# A canonical filter per preset entity that the connector pushes down as ``where``.
WHERE: dict[str, dict[str, Any]] = {
    "company": {"name": 'Acme "Best" Ltd'},
    "contact": {"company_id": f"xero:{SOME_GUID}"},
    "invoice": {"customer_id": f"xero:{SOME_GUID}", "number": "INV-0001"},
    "product": {"sku": "W-1"},
}


@pytest.fixture(scope="module")
def prism(shared_dir: Path) -> PrismMock:
    mock = shared_prism(shared_dir / SPEC)
    mock.reset()
    return mock


@pytest.fixture
def hub(prism: PrismMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Hub:
    monkeypatch.setenv("XERO_TOKEN", "prism-accepts-any-bearer")
    monkeypatch.setenv("XERO_TENANT_ID", TENANT)
    data = {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}",
            "sources": {"xero": {
                "connector": "xero",
                "auth": {"scheme": "bearer", "token": "env:XERO_TOKEN"},
                "resilience": {"retry": {"attempts": 1}},
                "defaults": {"currency": "USD"},
                "settings": {"base_url": prism.url, "tenant_id": "env:XERO_TENANT_ID",
                             "page_cap": 3},
                "entities": "preset"}}}
    return Hub(load_config_data(data, base_dir=tmp_path))


@pytest.mark.parametrize("entity", sorted(WHERE))
async def test_every_request_of_a_preset_entity_fits_the_published_contract(
    prism: PrismMock, hub: Hub, entity: str
) -> None:
    prism.reset()
    async with hub:
        listed = [r async for r in hub.query(entity)]
        [r async for r in hub.query(entity, **WHERE[entity])]
        [r async for r in hub.query(entity, since=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))]
        with contextlib.suppress(RecordNotFound):
            await hub.get(entity, listed[0].id if listed else f"xero:{SOME_GUID}")
        if entity != "product":  # Items are not paged
            # The next page, as a resumed read asks for it (Prism's examples are one page).
            connector = await hub.connector("xero")
            mapping = hub.config.sources["xero"].mappings[entity]
            request = ReadRequest(entity, mapping.spec.origin, mapping.id_paths,
                                  mapping.source_paths, position={"page": 2, "skip": 0})
            async with contextlib.aclosing(connector.read(request)) as batches:
                async for _ in batches:
                    break
        assert await hub.check(["xero"]) == {"xero": None}
    assert listed, f"Prism's examples should give at least one {entity}"
    seen = prism.assert_no_violations(at_least=5)
    targets = [exchange.target for exchange in seen]
    assert any("where=" in t for t in targets)
    assert any("if-modified-since" in e.headers for e in seen)
    assert all(e.headers.get("xero-tenant-id") == TENANT for e in seen)
    if entity != "product":  # Items are not paged
        assert any("page=2" in t for t in targets)


def test_prism_reports_what_breaks_the_contract(prism: PrismMock) -> None:
    """The check above can fail: requests the contract refuses are recorded as violations."""
    prism.reset()
    base = {"Authorization": "Bearer x"}
    with httpx.Client(base_url=prism.url) as client:
        assert client.get("/Contacts", headers=base).status_code >= 400  # no xero-tenant-id
        assert client.get("/Contacts", params={"page": "two"},
                          headers={**base, "xero-tenant-id": TENANT}).status_code == 422
        assert client.get("/Contacts", headers={
            **base, "xero-tenant-id": TENANT,
            "If-Modified-Since": "Tue, 02 Jan 2024 03:04:05 GMT"}).status_code == 422
    bad = prism.violations()
    assert len(bad) == 3
    assert "page" in str(bad[1]) and "if-modified-since" in str(bad[2])
    assert all("Bearer x" not in str(e) for e in bad)


TINY_SPEC = """\
openapi: 3.0.0
info: {title: tiny, version: "1"}
paths:
  /ping:
    get:
      parameters:
        - {in: query, name: n, schema: {type: integer}}
      responses:
        "200":
          description: ok
          content:
            application/json:
              example: {pong: true}
"""


def test_a_private_prism_serves_and_is_stopped_by_its_own_process_group(tmp_path: Path) -> None:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC)
    with PrismMock(spec) as mock:
        process = mock._process
        assert process is not None
        assert httpx.get(f"{mock.url}/ping", params={"n": 1}).json() == {"pong": True}
        assert [str(e) for e in mock.exchanges] == ["GET /ping?n=1 -> 200 (no violation)"]
    assert process.poll() is not None  # exited, and reaped
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # nothing is left of its process group
    with prism_server(spec) as url:
        assert httpx.get(f"{url}/ping", params={"n": "x"}).status_code == 422


def test_without_node_prism_is_unavailable_skipped_here_failed_in_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATCHBAY_PRISM_DIR", str(tmp_path / "node"))  # nothing installed there
    monkeypatch.setenv("PATH", str(tmp_path))  # no node, no npm
    outcome = pytest.fail.Exception if REQUIRED else pytest.skip.Exception
    with pytest.raises(outcome, match="Node.js and npm are needed"):
        prism_binary()
