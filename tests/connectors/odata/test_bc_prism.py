"""Business Central's requests against its published contract, served by the Prism mock server.

Every preset entity is read through the Hub, as a user would, with filters of each kind the
connector pushes down, ``since``, client and server paging, ``get`` by key and the expanded
lines; Prism (``tests/prism.py``) validates each request against
``shared/specs/dynamics365-business-central/openapi.yaml`` and must answer none with a 4xx.

Prism validates values but does not obey them (``$skip`` changes nothing), so paging against
it may never end: pages are capped, a read that hits the cap is expected, and the assertions
are on the requests, not on counts. Semantics are tested against the OData service in
``service.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prism import PrismMock, shared_prism

from odata import data
from patchbay import Hub
from patchbay.config import load_config_data
from patchbay.core.errors import RecordNotFound, SourceError

GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.fixture(scope="module")
def prism(shared_dir: Path) -> PrismMock:
    return shared_prism(shared_dir / "specs" / "dynamics365-business-central" / "openapi.yaml")


async def _hub(prism: PrismMock, tmp_path: Path, **settings: Any) -> Hub:
    source = {
        "connector": "business_central", "owner": "finance-systems@acme.example",
        "auth": {"scheme": "bearer", "token": "prism-accepts-any-bearer"},
        "settings": {"service_root": prism.url, "company_id": data.COMPANY_ID,
                     "currency": "EUR", "page_size": 1, "page_cap": 3, **settings},
        "entities": "preset",
    }
    config = {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}",
              "secret_key": "odata-prism-secret-key-0123456789", "sources": {"bc": source}}
    return Hub(load_config_data(config, base_dir=tmp_path))


async def _drain(records: AsyncIterator[Any]) -> None:
    """Read to the end, or to page_cap: Prism answers every $skip with the same page."""
    try:
        async for _ in records:
            pass
    except SourceError as exc:
        if "page_cap reached" not in str(exc):
            raise


QUERIES: dict[str, list[dict[str, Any]]] = {
    "company": [
        {},
        {"name": "O'Brien & Söhne"},
        {"name__contains": "100% & +"},
        {"email": "Sales@Example.com"},
        {"name__in": ["Zeta", "Beta/Gamma"], "tax_id__ne": "GB1"},
        {"website__isnull": False, "address__city": "København"},
    ],
    "product": [{}, {"sku": "1001-W"}, {"name__contains": "widget's"}],
    "order": [
        {},
        {"customer_id": f"bc:{GUID}"},
        {"ordered_at__gte": "2024-01-01", "ordered_at__lt": "2024-12-31"},
        {"number__in": ["SO-1", "SO-2"]},
    ],
    "invoice": [
        {},
        {"customer_id__in": [f"bc:{GUID}", f"bc:{GUID.replace('0f', '1f')}"]},
        {"issued_on__gt": "2024-01-01", "due_on__lte": "2024-03-01", "number": "INV-1"},
    ],
}


@pytest.mark.parametrize("paging", ["client", "server"])
@pytest.mark.parametrize("entity", sorted(QUERIES))
async def test_every_read_is_valid_against_the_published_contract(
    prism: PrismMock, tmp_path: Path, entity: str, paging: str
) -> None:
    prism.reset()
    async with await _hub(prism, tmp_path, paging=paging) as hub:
        plans = []
        for where in QUERIES[entity]:
            plans.append(await hub.explain(entity, **where))
            await _drain(hub.query(entity, **where))
        await _drain(hub.query(entity, since="2024-03-01T00:00:00Z"))
        page = await hub.fetch(entity, limit=1)
        if page.next_cursor is not None:
            await hub.fetch(entity, limit=1, cursor=page.next_cursor)
        with pytest.raises(RecordNotFound):  # Prism's made-up entity has another id
            await hub.get(entity, f"bc:{GUID}")
    pushed = [p for plan in plans for source in plan["sources"] for p in source["pushed_down"]]
    assert pushed, "the queries should push filters down"
    seen = prism.assert_no_violations(at_least=len(QUERIES[entity]) + 3)
    targets = [exchange.target for exchange in seen]
    assert any("%24filter=" in t or "$filter=" in t for t in targets)
    assert any(f"({GUID})" in t for t in targets), "get asks by key"
    if entity in ("order", "invoice"):
        assert all("expand=sales" in t for t in targets), "lines come by $expand"
    if paging == "client":
        assert any("skip=1" in t for t in targets)


async def test_check_and_vendors_are_valid_against_the_published_contract(
    prism: PrismMock, tmp_path: Path
) -> None:
    prism.reset()
    async with await _hub(prism, tmp_path, companies="vendors") as hub:
        assert await hub.check(["bc"]) == {"bc": None}
        await _drain(hub.query("company", name="Fabrikam, Inc.", since="2024-03-01T00:00:00Z"))
    seen = prism.assert_no_violations(at_least=2)
    assert all("/vendors" in exchange.target for exchange in seen)
