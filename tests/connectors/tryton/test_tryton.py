"""The tryton connector against a real Tryton 8.0 server with the shared recipe's demo data,
logged in by the auth broker's ``tryton_session`` scheme (the Hub's client; no credentials in the
connector).

The expected counts and values are the demo data's (``notes/tryton/NOTES.md``): parties 2-51
(30 in category Organisation, 20 in Person, party 51 inactive), 30 sales with 78 lines, 12 posted
customer invoices (plus 4 drafts), 20 products (XX-999 inactive).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from support import unavailable

from patchbay.auth import AuthError, MemoryTokenStore, TokenStore, build_auth, parse_auth_spec
from patchbay.config import load_config, load_config_data
from patchbay.connectors.tryton import TrytonConnector, TrytonSettings
from patchbay.connectors.tryton._domain import like_pattern, modified_clause
from patchbay.core.connector import LinesRequest, ReadRequest, Resources
from patchbay.core.errors import ConfigError, QueryError, SourceError
from patchbay.core.filters import Op
from patchbay.core.mapping import LINES_KEY
from patchbay.sync import SyncHub
from patchbay.testing import ConformanceCase, ConnectorConformance

from .conftest import PASSWORD, USER, TrytonServer

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "connectors" / "tryton.yaml"
OWNER = "erp-team@acme.example"
ORGANISATIONS = [["categories.name", "=", "Organisation"]]
PERSONS = [["categories.name", "=", "Person"]]


def tryton_session(password: str = PASSWORD) -> dict[str, Any]:
    return {"scheme": "tryton_session", "username": USER, "password": password}


def source(server: TrytonServer, entities: Any = "preset", password: str = PASSWORD,
           **settings: Any) -> dict[str, Any]:
    return {
        "connector": "tryton",
        "owner": OWNER,
        "auth": tryton_session(password),
        "settings": {
            "url": server.url, "database": server.database, "company_domain": ORGANISATIONS,
            "contact_domain": PERSONS, **settings,
        },
        "defaults": {"currency": "USD"},
        "entities": entities,
    }


def config(server: TrytonServer, **kwargs: Any) -> dict[str, Any]:
    return {"version": 1, "sources": {"erp": source(server, **kwargs)}}


@pytest.fixture
def hub(tryton_server: TrytonServer, tmp_path: Path) -> Iterator[SyncHub]:
    data = {**config(tryton_server), "state": f"sqlite:///{tmp_path / 'state.db'}",
            "secret_key": "tryton-tests-key-0123456789abcdef"}
    with contextlib.closing(SyncHub(load_config_data(data, base_dir=tmp_path))) as opened:
        yield opened


# --- the conformance kit, per preset entity ---------------------------------------------------


class _Conformance(ConnectorConformance):
    entity = ""

    @pytest.fixture
    def case(self, tryton_server: TrytonServer) -> ConformanceCase:
        return ConformanceCase(config=config(tryton_server), source="erp", entity=self.entity)


class TestContactConformance(_Conformance):
    entity = "contact"


class TestCompanyConformance(_Conformance):
    entity = "company"


class TestOrderConformance(_Conformance):
    entity = "order"


class TestInvoiceConformance(_Conformance):
    entity = "invoice"


# --- what the presets deliver ------------------------------------------------------------------


def test_presets_deliver_the_demo_data(hub: SyncHub) -> None:
    counts = {}
    for entity in ("company", "contact", "order", "invoice", "product"):
        stream = hub.query(entity)
        records = list(stream)
        counts[entity] = len(records)
        quality = stream.quality.sources["erp"]
        assert quality.quarantined == 0, quality.samples
    assert counts == {"company": 30, "contact": 20, "order": 30, "invoice": 12, "product": 20}


def test_an_order_with_its_lines(hub: SyncHub) -> None:
    order = hub.get("order", "erp:1")
    assert order.number == "1"
    assert order.customer_id == "erp:15"
    assert order.status == "confirmed"  # processing
    assert order.ordered_at == date(2025, 1, 6)
    assert order.total is not None
    assert (order.total.amount, order.total.currency) == (Decimal("29.50"), "USD")
    assert order.updated_at is not None and order.updated_at.tzinfo is not None
    first, comment = order.lines
    assert (first.sku, first.quantity, first.product_id) == ("EL-001", Decimal(2), "erp:13")
    assert first.unit_price is not None and first.unit_price.amount == Decimal("13.41")
    assert first.total is not None and first.total.amount == Decimal("26.82")
    assert (comment.sku, comment.quantity) == (None, None)
    every = list(hub.query("order"))
    assert sum(len(o.lines) for o in every) == 78
    assert Counter(o.status for o in every) == {"confirmed": 16, "draft": 12, "cancelled": 2}


def test_posted_invoices_only(hub: SyncHub) -> None:
    invoices = list(hub.query("invoice"))
    assert sorted(i.number or "" for i in invoices) == [
        f"INV/2025/{n:05d}" for n in range(1, 13)
    ]
    first = hub.get("invoice", "erp:1")
    assert (first.customer_id, first.issued_on, first.status) == (
        "erp:15", date(2025, 1, 9), "open")
    assert first.total is not None and first.total.amount == Decimal("29.50")
    assert first.balance is not None and first.balance.amount == Decimal("29.50")
    assert [(line.sku, line.quantity) for line in first.lines] == [("EL-001", Decimal(2))]


def test_parties_with_contact_mechanisms_and_addresses(hub: SyncHub) -> None:
    globex = list(hub.query("company", name__contains="globex"))
    assert sorted(c.name for c in globex) == ["Globex Corp.", "Globex Corporation"]
    corp = next(c for c in globex if c.name == "Globex Corp.")
    assert corp.email == "info@globexcorp.example"  # INFO@GLOBEXCORP.EXAMPLE, normalised
    assert corp.address is not None and corp.address.line1 == "1-1 Chiyoda"
    contacts = list(hub.query("contact"))
    assert len({c.id for c in contacts}) == 20
    inactive = [c for c in list(hub.query("company")) + contacts if c.status == "inactive"]
    assert [c.id for c in inactive] == ["erp:51"]  # read, with its status: not hidden
    products = {p.sku: p for p in hub.query("product")}
    assert products["XX-999"].active is False
    assert products["HW-001"].unit_price is not None
    assert products["HW-001"].unit_price.amount == Decimal("19.90")


def test_contains_escapes_like_wildcards(hub: SyncHub) -> None:
    assert list(hub.query("company", name__contains="_")) == []
    assert list(hub.query("company", name__contains="%")) == []
    hooli = list(hub.query("company", name__contains="hooli"))
    assert [c.name for c in hooli] == ["Hooli"]  # "Hooli " squashed


def test_like_pattern() -> None:
    assert like_pattern("a%b_c\\") == "%%\\%b\\_c\\\\%"  # a: a non-ASCII letter folds into it
    assert like_pattern("GLOBEX") == "%g%obex%"  # casefolded; l widened (ﬂ folds to fl)


def test_example_config_loads() -> None:
    conf = load_config(EXAMPLE, resolve_secrets=False)
    erp = conf.sources["erp"]
    assert erp.connector is TrytonConnector
    assert erp.auth.scheme == "tryton_session"
    assert set(erp.mappings) == {"company", "contact", "order", "invoice", "product"}


def test_credentials_in_settings_say_where_they_moved(tmp_path: Path) -> None:
    nowhere = TrytonServer("http://127.0.0.1:9", "tryton", tmp_path / "none", tmp_path / "log")
    data = config(nowhere)
    data["sources"]["erp"]["settings"].update(username=USER, password="env:NOT_READ")
    with pytest.raises(ConfigError, match=r"sources.erp.settings.*auth: \{scheme: tryton_session"):
        load_config_data(data, base_dir=tmp_path, resolve_secrets=False)


def test_bad_from_block_fails_at_config_load(tmp_path: Path) -> None:
    nowhere = TrytonServer("http://127.0.0.1:9", "tryton", tmp_path / "none", tmp_path / "log")
    data = config(nowhere, entities={
        "contact": {"from": {"model": "Party Party"}, "id": "id",
                    "fields": {"full_name": "name"}}})
    with pytest.raises(ConfigError, match=r"sources.erp.entities.contact.from.*model"):
        load_config_data(data, base_dir=tmp_path)


# --- the connector on its own: calls counted on the wire ---------------------------------------


class Wire:
    """Counts the JSON-RPC methods a client sends."""

    def __init__(self) -> None:
        self.methods: Counter[str] = Counter()

    async def __call__(self, request: httpx.Request) -> None:
        self.methods[json.loads(request.content)["method"]] += 1


@contextlib.asynccontextmanager
async def connector(server: TrytonServer, *, password: str = PASSWORD,
                    store: TokenStore | None = None, redis: aioredis.Redis | None = None,
                    redis_prefix: str = "patchbay:auth:", wire: Wire | None = None,
                    **settings: Any) -> AsyncIterator[tuple[TrytonConnector, Wire]]:
    """The connector on a client built as the Hub builds it: ``build_auth`` of the source's
    ``tryton_session`` block, the login through its own token client (both on the wire)."""
    wire = wire or Wire()
    hooks = {"request": [wire]}
    async with httpx.AsyncClient(event_hooks=hooks) as token_client:
        auth = build_auth(parse_auth_spec(tryton_session(password)), source="erp", owner=OWNER,
                          store=store or MemoryTokenStore(), token_client=token_client,
                          redis=redis, redis_prefix=redis_prefix)
        async with httpx.AsyncClient(auth=auth, event_hooks=hooks) as client:
            options = TrytonSettings.model_validate(
                {"url": server.url, "database": server.database, **settings})
            made = TrytonConnector(options, Resources(source="erp", owner=OWNER,
                                                      http_client=client))
            try:
                yield made, wire
            finally:
                await made.close()


SALES = ReadRequest(
    entity="order", origin={"model": "sale.sale"}, id_paths=("id",),
    paths=("number", "party.name", "last_modified_at"), batch_size=7,
    lines=LinesRequest(origin={"model": "sale.line"}, key=("sale",),
                       paths=("quantity", "product.code"), order_by=("sequence",)),
)


async def test_lines_come_with_one_call_per_batch(tryton_server: TrytonServer) -> None:
    async with connector(tryton_server) as (made, wire):
        batches = [batch async for batch in made.read(SALES)]
    assert [len(b.rows) for b in batches] == [7, 7, 7, 7, 2]
    assert wire.methods["model.sale.sale.search_read"] == 5
    assert wire.methods["model.sale.line.search_read"] == 5  # one per batch, not per sale
    rows = [row for batch in batches for row in batch.rows]
    assert sum(len(row[LINES_KEY]) for row in rows) == 78
    first = next(row for row in rows if row["id"] == 1)
    assert first["party.name"] == "María José García-López"
    assert [line["product.code"] for line in first[LINES_KEY]] == ["EL-001", None]


async def test_positions_resume_without_gaps_or_duplicates(tryton_server: TrytonServer) -> None:
    request = ReadRequest(entity="contact", origin={"model": "party.party", "active_test": False},
                          id_paths=("id",), paths=("name",), batch_size=4)
    async with connector(tryton_server) as (made, _):
        whole = [row["id"] async for batch in made.read(request) for row in batch.rows]
        resumed: list[int] = []
        position = None
        while True:
            async with contextlib.aclosing(made.read(replace(request, position=position))) as b:
                batch = await anext(b, None)
            if batch is None:
                break
            resumed += [row["id"] for row in batch.rows[:3]]
            position = json.loads(json.dumps(batch.position_after(2)))  # as a cursor holds it
    assert whole == resumed
    assert sorted(whole) == list(range(1, 52))  # 49 parties share one write date: ties by id


# --- bad input ---------------------------------------------------------------------------------


async def test_an_expired_session_logs_in_again_once(tryton_server: TrytonServer) -> None:
    request = ReadRequest(entity="contact", origin={"model": "party.party", "active_test": False},
                          id_paths=("id",), paths=("name",), batch_size=10)
    async with connector(tryton_server) as (made, wire):
        ids: list[int] = []
        async with contextlib.aclosing(made.read(request)) as batches:
            async for batch in batches:
                ids += [row["id"] for row in batch.rows]
                if len(ids) == 10:  # kill every session server-side, mid-read
                    with contextlib.closing(sqlite3.connect(tryton_server.db_file)) as db:
                        assert db.execute("DELETE FROM ir_session").rowcount >= 1
                        db.commit()
    assert ids == list(range(1, 52))  # no duplicates, no gaps
    assert wire.methods["common.db.login"] == 2


async def test_a_wrong_password_is_tried_exactly_once(tryton_server: TrytonServer) -> None:
    """Concurrent callers share the one refused login; later calls get the same error without a
    request (Tryton locks a login name out after six failures)."""
    async with connector(tryton_server, password="not-the-password") as (made, wire):
        errors = await asyncio.gather(*(made.check() for _ in range(3)), return_exceptions=True)
        with pytest.raises(AuthError) as again:
            await made.check()
        assert wire.methods == {"common.db.login": 1}  # nothing sent without a session
    for error in [*errors, again.value]:
        assert isinstance(error, AuthError)
        assert (error.source, error.owner, error.status_code) == ("erp", OWNER, 401)
        assert "check username and password" in str(error)
        assert "not-the-password" not in repr(error) + str(error)


def test_a_wrong_password_through_the_hub(tryton_server: TrytonServer, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("PB_TRYTON_PASSWORD", "not-the-password-either")
    data = config(tryton_server, password="env:PB_TRYTON_PASSWORD")
    opened = SyncHub(load_config_data(data, base_dir=tmp_path))
    caplog.set_level("DEBUG")
    with contextlib.closing(opened):
        with pytest.raises(AuthError, match=r"source 'erp' \(owner: erp-team@acme.example\)"
                           ) as caught:
            list(opened.query("contact"))
        assert "check username and password" in str(caught.value)
        assert "not-the-password-either" not in repr(caught.value)
        health = opened.check()
    assert "not-the-password-either" not in repr(health) + caplog.text
    assert "not-the-password-either" not in repr(opened.config.sources["erp"].auth)


async def test_no_auth_block_says_what_to_add(tryton_server: TrytonServer) -> None:
    async with httpx.AsyncClient() as client:
        options = TrytonSettings(url=tryton_server.url, database=tryton_server.database)
        made = TrytonConnector(options, Resources(source="erp", owner=OWNER, http_client=client))
        with pytest.raises(AuthError, match=r"401 to a call without credentials.*tryton_session"):
            await made.check()


async def test_concurrent_callers_share_one_login(tryton_server: TrytonServer) -> None:
    request = ReadRequest(entity="contact", origin={"model": "party.party"}, id_paths=("id",),
                          paths=("name",), batch_size=100)

    async def count(made: TrytonConnector) -> int:
        return sum([len(batch.rows) async for batch in made.read(request)])

    async with connector(tryton_server) as (made, wire):
        counts = await asyncio.gather(made.check(), *(count(made) for _ in range(8)))
    assert counts[1:] == [50] * 8
    assert wire.methods["common.db.login"] == 1


async def test_the_session_is_kept_in_the_token_store(tryton_server: TrytonServer) -> None:
    """A new client on the same store (a restarted process with the credential store) uses the
    stored session: no second login."""
    store = MemoryTokenStore()
    wire = Wire()
    async with connector(tryton_server, store=store, wire=wire) as (made, _):
        await made.check()
    async with connector(tryton_server, store=store, wire=wire) as (made, _):
        await made.check()
    assert wire.methods["common.db.login"] == 1
    assert wire.methods["model.res.user.get_preferences"] == 2


async def test_processes_sharing_redis_log_in_once(tryton_server: TrytonServer) -> None:
    """Two clients with their own token stores (two processes) and one Redis: one login, both
    read with it."""
    redis = aioredis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1)
    try:
        await redis.ping()
    except (aioredis.RedisError, OSError):
        await redis.aclose()
        unavailable("Redis is not running on 127.0.0.1:6379")
    prefix = f"pbtest:tryton:{uuid.uuid4().hex}:"
    wire = Wire()
    try:
        async with (connector(tryton_server, redis=redis, redis_prefix=prefix, wire=wire)
                    as (one, _),
                    connector(tryton_server, redis=redis, redis_prefix=prefix, wire=wire)
                    as (two, _)):
            await asyncio.gather(one.check(), two.check())
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
    assert wire.methods["common.db.login"] == 1
    assert wire.methods["model.res.user.get_preferences"] == 2


async def test_an_error_body_names_source_and_model(tryton_server: TrytonServer) -> None:
    request = ReadRequest(entity="contact",
                          origin={"model": "party.party", "domain": [["name", "like like", "x"]]},
                          id_paths=("id",), paths=("name",))
    async with connector(tryton_server) as (made, _):
        with pytest.raises(SourceError) as caught:
            [batch async for batch in made.read(request)]
    message = str(caught.value)
    assert "source 'erp'" in message and "model.party.party.search_read" in message
    assert "Tryton answered an error" in message


def test_a_field_the_model_lacks_is_an_error(tryton_server: TrytonServer,
                                             tmp_path: Path) -> None:
    data = config(tryton_server, entities={"contact": {
        "from": {"model": "party.party"}, "id": "id",
        "fields": {"full_name": "name", "email": "e_mail"}}})
    with contextlib.closing(SyncHub(load_config_data(data, base_dir=tmp_path))) as opened:
        with pytest.raises(SourceError, match=r"model party.party has no field 'e_mail'.*'email'"):
            list(opened.query("contact"))
        data["sources"]["erp"]["entities"]["contact"]["fields"]["email"] = "addresses.nope"
    opened = SyncHub(load_config_data(data, base_dir=tmp_path))
    with contextlib.closing(opened), pytest.raises(
            SourceError, match=r"model party.address has no field 'nope'"):
        list(opened.query("contact"))


async def test_the_last_modified_stand_in_selects_what_tryton_does(
        tryton_server: TrytonServer) -> None:
    """Servers whose models lack last_modified_at get COALESCE(write_date, create_date) as a
    domain: it selects exactly what Tryton's own field selects."""
    async with connector(tryton_server) as (made, _):
        ctx = {"active_test": False}
        stamps = await made.rpc.call("model.sale.sale.search_read",
                                     [[], 0, None, [["id", "ASC"]], ["last_modified_at"], ctx])
        middle = sorted(s["last_modified_at"] for s in stamps)[len(stamps) // 2]
        for op, compare in ((Op.GTE, ">="), (Op.LT, "<"), (Op.EQ, "=")):
            native = await made.rpc.call("model.sale.sale.search", [
                [["last_modified_at", compare, middle]], 0, None, [["id", "ASC"]], ctx])
            emulated = await made.rpc.call("model.sale.sale.search", [
                [modified_clause("", op, middle)], 0, None, [["id", "ASC"]], ctx])
            assert emulated == native and native


def test_order_by_a_date_sorts_at_the_source_and_pages(hub: SyncHub) -> None:
    every = list(hub.query("order"))
    by_date = sorted(every, key=lambda o: (o.ordered_at, int(o.remote_id)))
    assert [o.id for o in hub.query("order", order_by="ordered_at")] == [o.id for o in by_date]
    newest = sorted(every, key=lambda o: (-o.ordered_at.toordinal(), int(o.remote_id)))  # type: ignore[union-attr]
    seen: list[str] = []
    cursor = None
    while True:
        page = hub.fetch("order", order_by="-ordered_at", limit=7, cursor=cursor)
        seen += [r.id for r in page.records]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [o.id for o in newest]
    explained = hub.explain("order", order_by="ordered_at")["sources"][0]
    assert explained["order"] == [{"path": "sale_date", "descending": False}]


def test_text_is_not_sorted_at_the_source(hub: SyncHub) -> None:
    with pytest.raises(QueryError, match="cannot order company by name"):
        list(hub.query("company", order_by="name"))
