"""The SQL connector under the source's resilience policy, against real databases.

* PostgreSQL: the Hub's connections are terminated server-side (``pg_terminate_backend``) between
  two queries, or right after a connection was checked out of the pool (past its pre-ping), or in
  the middle of a read; the next query succeeds through pre-ping or a retry, a read is retried only
  until its first batch, and a read that already handed out rows fails and resumes by position;
* a database that is down (PostgreSQL on a closed port): the first calls fail with
  ``SourceUnavailable`` naming source and owner, then the breaker opens and every operation
  (reads, planning, ``get``, ``discover``, ``describe``, ``check``) fails fast. "Without new
  connection attempts" is counted with a ``do_connect`` listener on the source's engine;
* a breaker opened by reads of a live database makes ``check``, ``get`` and ``discover`` fail at
  once: they go through the same guard.

Sources are the demo config's ``erp`` source with only its settings (and policy) replaced; the
PostgreSQL copy of the demo ERP lives in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import copy
import dataclasses
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlcopy import copy_sqlite

from patchbay.config import load_config_data
from patchbay.connectors.sql import SqlConnector
from patchbay.core.connector import ReadRequest, Resources, SourceFilter, SqlSettings
from patchbay.core.entities import Record
from patchbay.core.errors import SourceError, SourceUnavailable
from patchbay.core.filters import Op
from patchbay.demo.generate import DemoFiles
from patchbay.hub import Hub
from patchbay.resources import build_sql_engine

ROOT = Path(__file__).resolve().parents[2]
DEMO = yaml.safe_load((ROOT / "examples" / "patchbay.yaml").read_text(encoding="utf-8"))
ERP: dict[str, Any] = DEMO["sources"]["erp"]
OWNER: str = ERP["owner"]
DOWN_OWNER = "dba-on-call@acme.example"
DOWN_URL = "postgresql+psycopg://patchbay@127.0.0.1:1/erp"  # nothing listens on port 1
SECRET_KEY = "sql-resilience-tests-cursor-key-0123456789"
FAST = {"retry": {"attempts": 2, "backoff": 0.01}, "breaker": {"failures": 2, "cooldown": 60}}


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_erp(postgres_url: str, demo_files: DemoFiles) -> Iterator[str]:
    """The demo ERP copied into a PostgreSQL schema of its own; its URL."""
    base = sa.make_url(postgres_url).difference_update_query(["options"])
    schema = f"pbres_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = f"{base.render_as_string(hide_password=False)}?options=-csearch_path%3D{schema}"
    try:
        copy_sqlite(demo_files.erp, url)
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def admin(pg_erp: str) -> Iterator[sa.Engine]:
    """A connection of the test's own, to terminate the Hub's."""
    engine = sa.create_engine(pg_erp)
    yield engine
    engine.dispose()


def terminate(admin: sa.Engine, *, app: str | None = None, pid: int | None = None) -> int:
    """Terminate backends by application name (or one by pid) and wait until they are gone."""
    where = "application_name = :app" if pid is None else "pid = :pid"
    with admin.connect() as conn:
        killed = conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                f"WHERE datname = current_database() AND pid <> pg_backend_pid() AND {where}"
            ),
            {"app": app, "pid": pid},
        ).scalars().all()
    assert all(killed)
    return len(killed)


def erp_source(url: str, app: str, **changes: Any) -> dict[str, Any]:
    source = copy.deepcopy(ERP)
    source["settings"] = {"url": url, "connect_args": {"application_name": app}}
    source.update(changes)
    return source


MakeHub = Callable[..., Hub]


@pytest.fixture
async def make_hub(tmp_path: Path) -> AsyncIterator[MakeHub]:
    hubs: list[Hub] = []

    def make(**sources: dict[str, Any]) -> Hub:
        data = {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}",
                "secret_key": SECRET_KEY, "sources": sources}
        hubs.append(Hub(load_config_data(data, base_dir=tmp_path)))
        return hubs[-1]

    yield make
    for hub in hubs:
        await hub.close()


async def read_all(hub: Hub, entity: str, **query: Any) -> list[Record]:
    return [record async for record in hub.query(entity, **query)]


async def sql_connector(hub: Hub, source: str) -> SqlConnector:
    connector = await hub.connector(source)
    assert isinstance(connector, SqlConnector)
    return connector


def count_connects(engine: sa.Engine) -> list[int]:
    """Connection attempts to the database: one per DB-API connect the engine tries."""
    attempts = [0]

    @sa.event.listens_for(engine, "do_connect")
    def _count(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
        attempts[0] += 1

    return attempts


def kill_on_checkout(engine: sa.Engine, admin: sa.Engine, times: int) -> list[int]:
    """Terminate the backend of the next ``times`` connections checked out of the pool, after
    their pre-ping: the first statement on each fails with a dropped connection."""
    killed: list[int] = []

    @sa.event.listens_for(engine, "checkout")
    def _kill(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if len(killed) < times:
            pid = dbapi_connection.info.backend_pid
            assert terminate(admin, pid=pid) == 1
            killed.append(pid)

    return killed


def counter(hub: Hub, name: str, source: str) -> int:
    return hub.events.counters.get((name, source), 0)


def _names(error: SourceError, source: str, owner: str) -> None:
    assert error.source == source and error.owner == owner
    assert repr(source) in str(error) and owner in str(error)


@pytest.mark.services
async def test_terminated_connections_between_queries(make_hub: MakeHub, pg_erp: str,
                                                      admin: sa.Engine) -> None:
    app = f"pb-res-{uuid.uuid4().hex[:8]}"
    hub = make_hub(erp=erp_source(pg_erp, app))
    engine = (await sql_connector(hub, "erp")).engine
    first = await read_all(hub, "company", sources=["erp"])
    assert first
    connects = count_connects(engine)
    assert terminate(admin, app=app) >= 1  # the pooled connection(s) the read returned
    second = await read_all(hub, "company", sources=["erp"])
    assert second == first
    assert connects[0] >= 1  # a new connection replaced the terminated one
    # Pre-ping found the dead connection at checkout (no retry needed), or the retry saved it.
    assert counter(hub, "give_ups", "erp") == 0
    assert counter(hub, "retries", "erp") in (0, 1)
    # The one-shot operations too.
    assert terminate(admin, app=app) >= 1
    assert await hub.get("company", first[0].id) == first[0]
    assert terminate(admin, app=app) >= 1
    assert await hub.check(["erp"]) == {"erp": None}
    assert terminate(admin, app=app) >= 1
    assert {t.name for t in (await hub.discover("erp")).tables} >= {"CUSTOMERS", "INV_HDR"}
    assert counter(hub, "give_ups", "erp") == 0


@pytest.mark.services
@pytest.mark.parametrize("operation", ["read", "get", "check", "discover", "describe"])
async def test_a_connection_dropped_after_checkout_is_retried(
        make_hub: MakeHub, pg_erp: str, admin: sa.Engine, operation: str) -> None:
    """Past pre-ping only the policy's retry can save the operation: it is visible in the
    counters, and the operation succeeds."""
    app = f"pb-res-{uuid.uuid4().hex[:8]}"
    hub = make_hub(erp=erp_source(pg_erp, app))
    connector = await sql_connector(hub, "erp")
    expected = await read_all(hub, "company", sources=["erp"])  # reflects CUSTOMERS, warms up
    killed = kill_on_checkout(connector.engine, admin, times=1)
    if operation == "read":
        assert await read_all(hub, "company", sources=["erp"]) == expected
    elif operation == "get":
        assert await hub.get("company", expected[-1].id) == expected[-1]
    elif operation == "check":
        assert await hub.check(["erp"]) == {"erp": None}
    elif operation == "discover":
        assert "CUSTOMERS" in {t.name for t in (await hub.discover("erp")).tables}
    else:
        info = await connector.describe({"table": "CUSTOMERS"})
        assert info is not None and "CUST_NO" in {c.name for c in info.columns}
    assert len(killed) == 1
    assert counter(hub, "retries", "erp") == 1
    assert counter(hub, "give_ups", "erp") == 0


@pytest.mark.services
async def test_first_reflection_is_retried(make_hub: MakeHub, pg_erp: str,
                                           admin: sa.Engine) -> None:
    """The first query of a fresh Hub reflects the table before reading; a connection dropped
    then is retried like the read itself (here while planning a pushed-down filter)."""
    app = f"pb-res-{uuid.uuid4().hex[:8]}"
    hub = make_hub(erp=erp_source(pg_erp, app))
    connector = await sql_connector(hub, "erp")
    await hub.check(["erp"])  # a pooled connection, so the next checkout is pre-pinged
    killed = kill_on_checkout(connector.engine, admin, times=1)
    records = await read_all(hub, "company", sources=["erp"], id="erp:10001")
    assert [r.id for r in records] == ["erp:10001"]
    assert len(killed) == 1 and counter(hub, "retries", "erp") == 1
    # Planning reflected the table after the retry, so the id went to the database.
    [plan] = (await hub.explain("company", sources=["erp"], id="erp:10001"))["sources"]
    assert [(f["path"], f["op"]) for f in plan["pushed_down"]] == [("CUST_NO", "eq")]


@pytest.mark.services
async def test_a_read_is_not_retried_after_its_first_batch(make_hub: MakeHub, pg_erp: str,
                                                           admin: sa.Engine) -> None:
    app = f"pb-res-{uuid.uuid4().hex[:8]}"
    hub = make_hub(erp=erp_source(pg_erp, app))
    connector = await sql_connector(hub, "erp")
    request = ReadRequest(entity="company", origin={"table": "CUSTOMERS"}, id_paths=("CUST_NO",),
                          paths=("CUST_NO", "CUST_NAME"), batch_size=5)
    full = [row async for batch in connector.read(request) for row in batch.rows]
    assert len(full) > 20  # more than the reader thread buffers ahead

    rows: list[Any] = []
    position: list[Any] = []
    reader = connector.read(request)

    async def consume(count: int | None) -> None:
        async for batch in reader:
            rows.extend(batch.rows)
            position[:] = [batch.position_after(len(batch.rows) - 1)]
            if count is not None and len(rows) >= count:
                return

    await consume(1)  # the first batch
    assert len(rows) == 5
    assert terminate(admin, app=app) >= 1
    with pytest.raises(SourceUnavailable) as caught:
        await consume(None)
    assert 5 <= len(rows) < len(full)
    _names(caught.value, "erp", OWNER)
    assert counter(hub, "retries", "erp") == 0  # not retried inside the connector
    assert connector.engine.pool.checkedout() == 0  # type: ignore[attr-defined]

    # The caller resumes from the last position it saw: no gap, no duplicate.
    resumed = dataclasses.replace(request, position=position[0])
    rest = [row async for batch in connector.read(resumed) for row in batch.rows]
    assert rows + rest == full


@pytest.mark.services
async def test_reads_open_the_breaker_and_one_shot_operations_fail_at_once(
        make_hub: MakeHub, pg_erp: str, admin: sa.Engine) -> None:
    """A live database whose every connection drops: reads open the breaker, and then
    ``check``, ``get`` and ``discover`` fail at once, without connecting."""
    app = f"pb-res-{uuid.uuid4().hex[:8]}"
    hub = make_hub(erp=erp_source(pg_erp, app, resilience=FAST))
    connector = await sql_connector(hub, "erp")
    expected = await read_all(hub, "company", sources=["erp"])
    killed = kill_on_checkout(connector.engine, admin, times=2)
    with pytest.raises(SourceUnavailable) as caught:
        await read_all(hub, "company", sources=["erp"])
    _names(caught.value, "erp", OWNER)
    assert len(killed) == 2 and counter(hub, "give_ups", "erp") == 1
    assert counter(hub, "breaker_opened", "erp") == 1

    connects = count_connects(connector.engine)
    checkouts = [0]
    sa.event.listen(connector.engine, "checkout",
                    lambda *_: checkouts.__setitem__(0, checkouts[0] + 1))
    [failure] = (await hub.check(["erp"])).values()
    assert failure is not None and failure.unavailable and "circuit breaker" in failure.error
    assert (failure.source, failure.owner) == ("erp", OWNER)
    for operation in (lambda: hub.get("company", expected[0].id),
                      lambda: hub.discover("erp"),
                      lambda: read_all(hub, "company", sources=["erp"])):
        with pytest.raises(SourceUnavailable, match="circuit breaker") as caught:
            await operation()
        _names(caught.value, "erp", OWNER)
    assert connects[0] == 0 and checkouts[0] == 0  # the database was never asked
    assert counter(hub, "breaker_rejections", "erp") == 4


# --- a database that is down ----------------------------------------------------------------


def down_source() -> dict[str, Any]:
    source = copy.deepcopy(ERP)
    source["owner"] = DOWN_OWNER
    source["settings"] = {"url": DOWN_URL}
    source["resilience"] = copy.deepcopy(FAST)
    return source


async def test_a_database_that_is_down_opens_the_breaker(make_hub: MakeHub) -> None:
    pytest.importorskip("psycopg")
    hub = make_hub(down=down_source())
    connector = await sql_connector(hub, "down")
    attempts = count_connects(connector.engine)

    with pytest.raises(SourceUnavailable) as caught:
        await read_all(hub, "company", sources=["down"])
    _names(caught.value, "down", DOWN_OWNER)
    assert "refused" in str(caught.value).lower()  # what the driver said
    assert "gave up after 2 attempts" in str(caught.value)
    assert attempts[0] == 2  # the policy's two attempts
    assert counter(hub, "retries", "down") == 1 and counter(hub, "give_ups", "down") == 1
    assert counter(hub, "breaker_opened", "down") == 1

    # Open: every operation fails fast, naming source and owner, without connecting.
    probe = ReadRequest(entity="company", origin={"table": "CUSTOMERS"}, id_paths=("CUST_NO",),
                        paths=("CUST_NO",))
    assert not connector.accepts(probe, SourceFilter("CUST_NO", Op.EQ, 10001))  # planning
    operations: list[Callable[[], Any]] = [
        lambda: read_all(hub, "company", sources=["down"]),
        lambda: read_all(hub, "company", sources=["down"], id="down:10001"),
        lambda: hub.fetch("invoice", sources=["down"], limit=3),
        lambda: hub.get("invoice", "down:500001"),
        lambda: hub.discover("down"),
        lambda: connector.describe({"table": "CUSTOMERS"}),
    ]
    for operation in operations:
        with pytest.raises(SourceUnavailable, match="circuit breaker open") as caught:
            await operation()
        _names(caught.value, "down", DOWN_OWNER)
    [failure] = (await hub.check(["down"])).values()
    assert failure is not None and failure.unavailable and "circuit breaker" in failure.error
    assert (failure.source, failure.owner) == ("down", DOWN_OWNER)
    assert attempts[0] == 2  # no connection attempt while the breaker is open
    assert counter(hub, "retries", "down") == 1
    assert counter(hub, "breaker_rejections", "down") >= len(operations) + 1


async def test_database_errors_are_not_retried(make_hub: MakeHub, demo_files: DemoFiles) -> None:
    """A database that answers (a missing table, a missing column) is up: no retry, the breaker
    stays closed, and the error names the source."""
    source = copy.deepcopy(ERP)
    source["settings"] = {"url": f"sqlite:///{demo_files.erp}"}
    source["resilience"] = copy.deepcopy(FAST)
    source["entities"]["company"]["from"] = {"table": "NO_SUCH_TABLE"}
    hub = make_hub(erp=source)
    for _ in range(3):
        with pytest.raises(SourceError, match="no table 'NO_SUCH_TABLE'") as caught:
            await read_all(hub, "company", sources=["erp"])
        assert not isinstance(caught.value, SourceUnavailable)
        _names(caught.value, "erp", OWNER)
    assert counter(hub, "retries", "erp") == 0
    assert counter(hub, "breaker_opened", "erp") == 0
    assert await read_all(hub, "product", sources=["erp"])  # the source still reads


async def test_a_missing_sqlite_file_opens_the_breaker(make_hub: MakeHub,
                                                       demo_files: DemoFiles) -> None:
    source = copy.deepcopy(ERP)
    source["owner"] = DOWN_OWNER
    source["settings"] = {"url": f"sqlite:///{demo_files.directory / 'missing' / 'erp.sqlite'}"}
    source["resilience"] = copy.deepcopy(FAST)
    hub = make_hub(down=source)
    attempts = count_connects((await sql_connector(hub, "down")).engine)
    with pytest.raises(SourceUnavailable, match="unable to open") as caught:
        await hub.get("company", "down:10001")
    _names(caught.value, "down", DOWN_OWNER)
    assert attempts[0] == 2
    with pytest.raises(SourceUnavailable, match="circuit breaker open"):
        await read_all(hub, "company", sources=["down"])
    assert attempts[0] == 2


# --- without a Hub: no policy, the same translation ------------------------------------------


async def test_without_a_guard_operations_run_plainly(demo_files: DemoFiles,
                                                      tmp_path: Path) -> None:
    def connector(url: str) -> SqlConnector:
        settings = SqlSettings(url=url)
        engine = build_sql_engine(settings, tmp_path)
        return SqlConnector(settings, Resources(source="erp", owner=OWNER, sql_engine=engine))

    up = connector(f"sqlite:///{demo_files.erp}")
    down = connector(f"sqlite:///{tmp_path / 'missing.sqlite'}")
    try:
        assert up.res.sql_guard is None
        await up.check()
        assert "CUSTOMERS" in {t.name for t in (await up.discover()).tables}
        request = ReadRequest(entity="company", origin={"table": "CUSTOMERS"},
                              id_paths=("CUST_NO",), paths=("CUST_NO",), batch_size=7)
        rows = [row async for batch in up.read(request) for row in batch.rows]
        with closing(sqlite3.connect(demo_files.erp)) as conn:
            [(customers,)] = conn.execute("SELECT count(*) FROM CUSTOMERS").fetchall()
        assert sorted(r["CUST_NO"] for r in rows) == [r["CUST_NO"] for r in rows]
        assert len(rows) == customers
        for operation in (down.check, down.discover,
                          lambda: down.describe({"table": "CUSTOMERS"})):
            with pytest.raises(SourceUnavailable) as caught:
                await operation()
            _names(caught.value, "erp", OWNER)
        with pytest.raises(SourceUnavailable):
            [batch async for batch in down.read(request)]
    finally:
        up.engine.dispose()
        down.engine.dispose()
