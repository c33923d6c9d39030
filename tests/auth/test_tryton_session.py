"""The ``tryton_session`` scheme on its own, against a handler app that answers as Tryton 8.0
does (``notes/tryton/NOTES.md``): the cases a real server cannot be made to produce on demand
(429 lock-out, 5xx, a LoginException body, HTML, an expiry by the clock). The real server is
exercised in tests/connectors/tryton."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from pydantic import ValidationError
from servers import Server

from patchbay.auth import (
    AuthError,
    MemoryTokenStore,
    TokenStore,
    TrytonSessionSpec,
    build_auth,
    parse_auth_spec,
)

PASSWORD = "tryton-secret-pw-9Xq"  # the test server's password


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Tryton:
    """What the handler app answers to a login (``login``) and which sessions it accepts."""

    login: str = "ok"  # ok | 429 | 500 | login_exception | html | null
    refuse_sessions: bool = False  # every session is refused (a user without access)
    sessions: set[str] = field(default_factory=set)
    methods: Counter[str] = field(default_factory=Counter)
    paths: list[str] = field(default_factory=list)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def header(self, session: str) -> str:
        return "Session " + base64.b64encode(f"ann:7:{session}".encode()).decode()


def tryton_app(tryton: Tryton) -> FastAPI:
    app = FastAPI()

    @app.post("/{database}/rpc/")
    async def rpc(database: str, request: Request) -> Response:
        body = json.loads(await request.body())
        method = body["method"]
        tryton.methods[method] += 1
        tryton.paths.append(request.url.path)
        if database not in ("tryton", "other"):
            return Response("<h1>Not Found</h1>", 404, media_type="text/html")
        if method == "common.db.login":
            return login(body)
        accepted = {tryton.header(s) for s in tryton.sessions}
        if tryton.refuse_sessions or request.headers.get("authorization") not in accepted:
            return Response(b"", 401, headers={"WWW-Authenticate": 'Basic realm="Tryton"'})
        return Response(json.dumps({"id": body["id"], "result": {"company": 1}}),
                        media_type="application/json")

    def login(body: dict[str, Any]) -> Response:
        user, params, _language = body["params"]
        if tryton.login == "429":
            return Response("<h1>Too Many Requests</h1>", 429, media_type="text/html")
        if tryton.login == "500":
            return Response("<h1>Internal Server Error</h1>", 500, media_type="text/html")
        if tryton.login == "html":
            return Response("<html>a proxy's page</html>", 200, media_type="text/html")
        if tryton.login == "login_exception":
            error = ["LoginException", ["password", "Password for ann", "password"]]
            return Response(json.dumps({"id": body["id"], "error": error}),
                            media_type="application/json")
        if tryton.login == "null":
            return Response(json.dumps({"id": body["id"], "result": None}),
                            media_type="application/json")
        if (user, params.get("password")) != ("ann", PASSWORD):
            return Response("<h1>Unauthorized</h1>", 401, media_type="text/html")
        session = f"session-{next(tryton.counter)}"
        tryton.sessions.add(session)
        return Response(json.dumps({"id": body["id"], "result": [7, session, None]}),
                        media_type="application/json")

    return app


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[str, Tryton]]:
    tryton = Tryton()
    with Server(tryton_app(tryton)) as server:
        yield server.url, tryton


@pytest.fixture
def tryton(running: tuple[str, Tryton]) -> Tryton:
    _, state = running
    fresh = Tryton()
    for name in ("login", "refuse_sessions", "sessions", "methods", "paths", "counter"):
        setattr(state, name, getattr(fresh, name))
    return state


@pytest.fixture
def url(running: tuple[str, Tryton]) -> str:
    return running[0]


@pytest.fixture(autouse=True)
def no_password_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    assert PASSWORD not in caplog.text


def spec(password: str = PASSWORD, **more: Any) -> TrytonSessionSpec:
    made = parse_auth_spec({"scheme": "tryton_session", "username": "ann", "password": password,
                            **more})
    assert isinstance(made, TrytonSessionSpec)
    return made


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    opened: list[httpx.AsyncClient] = []

    def make(auth_spec: TrytonSessionSpec, store: TokenStore | None = None,
             clock: FakeClock | None = None) -> httpx.AsyncClient:
        token_client = httpx.AsyncClient()
        auth = build_auth(auth_spec, source="erp", owner="erp-team@acme.example",
                          store=store or MemoryTokenStore(), token_client=token_client,
                          clock=clock)
        client = httpx.AsyncClient(auth=auth)
        opened.extend([token_client, client])
        return client

    yield make
    for client in opened:
        await client.aclose()


async def call(client: httpx.AsyncClient, url: str, method: str = "model.res.user.get_preferences"
               ) -> httpx.Response:
    body = {"id": 1, "method": method, "params": [True, {}]}
    return await client.post(url, json=body)


def test_the_spec_keeps_the_password_secret() -> None:
    made = spec()
    assert PASSWORD not in repr(made) + str(made)
    assert made.expires_in == 3600
    with pytest.raises(ValidationError):
        parse_auth_spec({"scheme": "tryton_session", "username": "ann", "password": "x",
                         "database": "tryton"})  # the database is the URL's: not a key here
    with pytest.raises(ValidationError):
        parse_auth_spec({"scheme": "tryton_session", "username": "", "password": "x"})
    with pytest.raises(ValidationError):  # renewed 30 s before the end: a login per call
        parse_auth_spec({"scheme": "tryton_session", "username": "ann", "password": "x",
                         "expires_in": 20})


async def test_logs_in_at_the_calls_endpoint_and_sends_the_session_header(
        url: str, tryton: Tryton, client_for: Any) -> None:
    client = client_for(spec())
    first = await call(client, f"{url}/tryton/rpc/?ignored=1")
    second = await call(client, f"{url}/tryton/rpc/")
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.request.headers["Authorization"] == tryton.header("session-1")
    assert tryton.methods == {"common.db.login": 1, "model.res.user.get_preferences": 2}
    assert set(tryton.paths) == {"/tryton/rpc/"}
    assert PASSWORD not in repr(client.auth)


async def test_a_401_logs_in_again_once_and_resends_once(
        url: str, tryton: Tryton, client_for: Any) -> None:
    client = client_for(spec())
    assert (await call(client, f"{url}/tryton/rpc/")).status_code == 200
    tryton.sessions.clear()  # expired server-side
    assert (await call(client, f"{url}/tryton/rpc/")).status_code == 200
    assert tryton.methods["common.db.login"] == 2
    tryton.refuse_sessions = True
    refused = await call(client, f"{url}/tryton/rpc/")
    assert refused.status_code == 401  # the second 401 is returned as it is, for the connector
    assert tryton.methods["common.db.login"] == 3  # one new login, not a loop


async def test_a_refused_password_is_sent_once(url: str, tryton: Tryton, client_for: Any) -> None:
    client = client_for(spec(password="wrong-password-1"))
    for _ in range(3):
        with pytest.raises(AuthError) as caught:
            await call(client, f"{url}/tryton/rpc/")
        error = caught.value
        assert (error.source, error.status_code, error.retryable) == ("erp", 401, False)
        assert "Tryton refused the login of user 'ann': check username and password" in str(error)
        assert "erp-team@acme.example" in str(error)
        assert "wrong-password-1" not in repr(error) + str(error)
    assert tryton.methods == {"common.db.login": 1}


@pytest.mark.parametrize(("answer", "kept", "says"), [
    ("login_exception", True, "refused (Tryton answered LoginException): check username"),
    ("null", True, "refused (no session instead of [user id, session])"),
    ("429", False, "answered 429 to the login of user 'ann': too many failed logins"),
    ("500", False, "the Tryton login answered 500 Internal Server Error"),
    ("html", False, "answered text/html, not a JSON-RPC answer: check the source's url"),
])
async def test_login_answers(answer: str, kept: bool, says: str, url: str, tryton: Tryton,
                             client_for: Any) -> None:
    tryton.login = answer
    client = client_for(spec())
    with pytest.raises(AuthError, match=re.escape(says)) as caught:
        await call(client, f"{url}/tryton/rpc/")
    assert caught.value.retryable is (answer in ("429", "500"))
    tryton.login = "ok"
    if kept:  # credentials refused: never sent again by this client
        with pytest.raises(AuthError):
            await call(client, f"{url}/tryton/rpc/")
        assert tryton.methods["common.db.login"] == 1
    else:  # the server's state: a later call may log in
        assert (await call(client, f"{url}/tryton/rpc/")).status_code == 200
        assert tryton.methods["common.db.login"] == 2


async def test_an_unknown_database(url: str, tryton: Tryton, client_for: Any) -> None:
    client = client_for(spec())
    with pytest.raises(AuthError, match="404 Not Found: no such database at that URL"):
        await call(client, f"{url}/nosuchdb/rpc/")


async def test_a_session_expires_by_the_clock(url: str, tryton: Tryton, client_for: Any) -> None:
    clock = FakeClock()
    client = client_for(spec(expires_in=600), clock=clock)
    await call(client, f"{url}/tryton/rpc/")
    clock.now += 500
    await call(client, f"{url}/tryton/rpc/")
    assert tryton.methods["common.db.login"] == 1
    clock.now += 100  # within the 30 s skew of the end
    await call(client, f"{url}/tryton/rpc/")
    assert tryton.methods["common.db.login"] == 2


async def test_a_stored_session_is_never_sent_to_another_endpoint(
        url: str, tryton: Tryton, client_for: Any) -> None:
    store = MemoryTokenStore()
    await call(client_for(spec(), store), f"{url}/tryton/rpc/")
    assert tryton.methods["common.db.login"] == 1
    await call(client_for(spec(), store), f"{url}/tryton/rpc/")  # a restart: the stored one
    assert tryton.methods["common.db.login"] == 1
    answer = await call(client_for(spec(), store), f"{url}/other/rpc/")
    assert answer.status_code == 200
    assert answer.request.headers["Authorization"] == tryton.header("session-2")
    assert tryton.methods["common.db.login"] == 2  # its own login, not the stored session
    assert tryton.paths[-2:] == ["/other/rpc/", "/other/rpc/"]


async def test_a_sync_client_is_refused(url: str) -> None:
    async with httpx.AsyncClient() as token_client:
        auth = build_auth(spec(), source="erp", owner=None, store=MemoryTokenStore(),
                          token_client=token_client)
        with httpx.Client(auth=auth) as client, pytest.raises(AuthError, match="AsyncClient"):
            client.post(f"{url}/tryton/rpc/", json={})
