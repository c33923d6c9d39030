"""No secret ever shows: in logs, errors, reprs, CLI output or the state database.

Known, distinctive secrets are set (API key, basic password, bearer token, OAuth client secret,
SQL password, a credential-store secret, secret_key and its successor), then every flow and
failure path reachable through public surfaces is run: config loading and config errors,
``patchbay creds``, Hub queries against real HTTP servers with each cheap auth scheme (including
client credentials against the real OAuth2 test server), 401s, 5xx with retries, a token endpoint
answering HTML or 500, an open breaker, unreachable hosts, an SQL source on an unreachable
PostgreSQL port, and the CLI on top of them.

Everything is captured (log records of every logger at DEBUG, with their extras and tracebacks;
CLI stdout and stderr; ``str``/``repr``/traceback of every exception and of every cause and
context in its chain; reprs and serialisations of configs, specs, the Hub, clients, auth objects;
the bytes of the SQLite state database files) and searched for every secret, and for the forms a
secret travels in (the base64 of basic credentials). A failure says which capture holds which
secret, with a short excerpt in which every secret is masked.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI, Request, Response
from test_http_sources import ITEMS, PagesConnector, Server
from typer.testing import CliRunner

import patchbay.cli
import patchbay.cli_creds
from patchbay import Hub, SourceError, SourceUnavailable
from patchbay.auth import QueryRedactor
from patchbay.auth._redact import LOGGERS
from patchbay.cli import app
from patchbay.config import Config, StoreOpener, load_config, load_config_data
from patchbay.core.errors import ConfigError
from patchbay.core.registry import ConnectorRegistry

AUTH_TESTS = Path(__file__).resolve().parent / "auth"

# --- the secrets: distinctive, URL-safe (a leak shows verbatim, encoded or not) -----------------

API_KEY = "pbleak-apikey-Q7wX9rT2vL"
BASIC_PASSWORD = "pbleak-basicpw-M4nB8cZ1kD"
BEARER_TOKEN = "pbleak-bearer-H6jK2pW9sE"
CLIENT_SECRET = "pbleak-clientsecret-F3gR7tY5uA"
SQL_PASSWORD = "pbleak-sqlpw-N8mV4xC6bQ"
STORE_SECRET = "pbleak-stored-J2hG5fD8sZ"
SESSION_PASSWORD = "pbleak-sessionpw-T9rE3wQ7yU"
TRYTON_PASSWORD = "pbleak-trytonpw-V2cX8zL4hR"
SECRET_KEY = "pbleak-secretkey-K1lP0oI9uY-0123456789abcdef"
NEW_SECRET_KEY = "pbleak-newsecretkey-Z8xC7vB6nM-0123456789abcdef"

BASIC_USER = "bob"
CLIENT_ID = "svc"  # a client of the OAuth2 test server

SECRETS: dict[str, str] = {
    "api_key": API_KEY,
    "basic password": BASIC_PASSWORD,
    "bearer token": BEARER_TOKEN,
    "client secret": CLIENT_SECRET,
    "sql password": SQL_PASSWORD,
    "store credential": STORE_SECRET,
    "session password": SESSION_PASSWORD,
    "tryton password": TRYTON_PASSWORD,
    "secret_key": SECRET_KEY,
    "new secret_key": NEW_SECRET_KEY,
    # the forms secrets travel in on the wire
    "basic header (base64)": base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode(),
    "client basic header (base64)": base64.b64encode(
        f"{CLIENT_ID}:{CLIENT_SECRET}".encode()
    ).decode(),
}

ENV = {
    "PB_LEAK_API_KEY": API_KEY,
    "PB_LEAK_BASIC_PW": BASIC_PASSWORD,
    "PB_LEAK_BEARER": BEARER_TOKEN,
    "PB_LEAK_CLIENT_SECRET": CLIENT_SECRET,
    "PB_LEAK_SQL_PW": SQL_PASSWORD,
    "PB_LEAK_SESSION_PW": SESSION_PASSWORD,
    "PB_LEAK_TRYTON_PW": TRYTON_PASSWORD,
    "PB_LEAK_SECRET_KEY": SECRET_KEY,
}

UNREACHABLE = "http://127.0.0.1:1"
UNREACHABLE_PG = "postgresql+psycopg://erp@127.0.0.1:1/erp"
FAST_RETRY = {"retry": {"attempts": 3, "backoff": 0.001, "max_backoff": 0.005}}
ONE_TRY = {"retry": {"attempts": 1}}


# --- the leak detector ----------------------------------------------------------------------------


_STANDARD_RECORD_KEYS = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def exception_texts(exc: BaseException) -> list[tuple[str, str]]:
    """Everything an exception can show: its traceback as printed, and str/repr/args/public
    attributes of it and of every exception reachable through __cause__, __context__ and groups
    (even a context hidden by ``from None``: it is still one attribute away)."""
    texts = [("traceback", "".join(traceback.format_exception(exc)))]
    seen: set[int] = set()
    todo: list[tuple[str, BaseException]] = [("", exc)]
    while todo:
        path, current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        label = f"{type(current).__name__}{path}"  # the type, then how it was reached
        texts.append((f"str({label})", str(current)))
        texts.append((f"repr({label})", repr(current)))
        texts.append((f"{label}.args", repr(current.args)))
        # public attributes only: a driver's private state is not a surface (psycopg keeps the
        # connection options, password included, in OperationalError._pgconn)
        attrs = {k: v for k, v in vars(current).items() if not k.startswith("_")}
        texts.append((f"{label} attributes", repr(attrs)))
        if current.__cause__ is not None:
            todo.append((f"{path}.__cause__", current.__cause__))
        if current.__context__ is not None:
            todo.append((f"{path}.__context__", current.__context__))
        if isinstance(current, BaseExceptionGroup):
            todo.extend((f"{path}[{i}]", e) for i, e in enumerate(current.exceptions))
    return texts


def record_text(record: logging.LogRecord) -> str:
    try:
        message = record.getMessage()
    except Exception:  # a record whose args do not fit its message: show both raw
        message = f"{record.msg!r} % {record.args!r}"
    extras = {k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_KEYS}
    text = f"{record.name} {record.levelname} {message}"
    if extras:
        text += f" extra={extras!r}"
    if record.exc_info and record.exc_info[1] is not None:
        text += "\n" + "".join(traceback.format_exception(record.exc_info[1]))
    if record.stack_info:
        text += "\n" + record.stack_info
    return text


@dataclass
class Leaks:
    """Captures, and the secrets none of them may hold."""

    caplog: pytest.LogCaptureFixture
    captures: list[tuple[str, str]] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=lambda: dict(SECRETS))
    issued: list[Callable[[], list[str]]] = field(default_factory=list)  # tokens servers issue

    def secret(self, name: str, value: str) -> None:
        """One more secret (an access token a server issued, a session id)."""
        if value:
            self.secrets[name] = value

    def add(self, where: str, text: Any) -> None:
        self.captures.append((where, text if isinstance(text, str) else str(text)))

    def obj(self, where: str, value: Any) -> None:
        self.add(f"repr({where})", repr(value))
        self.add(f"str({where})", str(value))

    def exc(self, where: str, exc: BaseException) -> None:
        for what, text in exception_texts(exc):
            self.add(f"{where}: {what}", text)

    def cli(self, where: str, result: Any) -> None:
        self.add(f"{where}: stdout", result.stdout)
        self.add(f"{where}: stderr", result.stderr)
        self.add(f"{where}: output", result.output)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            self.exc(f"{where}: exception", result.exception)

    def files(self, where: str, directory: Path, pattern: str = "*.db*") -> int:
        """The bytes of the SQLite files (and their journals) under ``directory``."""
        found = 0
        for path in sorted(directory.rglob(pattern)):
            if path.is_file():
                found += 1
                self.add(f"{where}: bytes of {path.name}", path.read_bytes().decode("latin-1"))
        return found

    def logs(self) -> None:
        for when in ("setup", "call"):
            for i, record in enumerate(self.caplog.get_records(when)):  # type: ignore[arg-type]
                self.add(f"log record #{i} ({when}) {record.name}", record_text(record))

    def mask(self, text: str) -> str:
        for name, value in sorted(self.secrets.items(), key=lambda kv: -len(kv[1])):
            text = text.replace(value, f"<{name.upper().replace(' ', '_')}>")
        return text

    def found(self) -> list[str]:
        self.logs()
        for tokens in self.issued:
            for i, token in enumerate(tokens()):
                self.secret(f"issued token #{i}", token)
        report = []
        for where, text in self.captures:
            for name, value in self.secrets.items():
                at = text.find(value)
                if at < 0:
                    continue
                start, end = max(0, at - 70), at + len(value) + 70
                excerpt = self.mask(text[start:end]).replace("\n", "\\n")
                report.append(f"  [{name}] in {where}: ...{excerpt}...")
        return report

    def check(self) -> None:
        report = self.found()
        assert not report, "secrets leaked:\n" + "\n".join(report)


@pytest.fixture
def leaks(caplog: pytest.LogCaptureFixture) -> Leaks:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "patchbay", "sqlalchemy"):
        caplog.set_level(logging.DEBUG, logger=name)
    return Leaks(caplog)


@pytest.fixture(autouse=True)
def _secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def test_the_detector_finds_and_masks_a_leak(leaks: Leaks) -> None:
    logging.getLogger("patchbay.test").debug("calling with key=%s", API_KEY)
    leaks.exc("an error", RuntimeError("outer"))
    try:
        try:
            raise ValueError(f"password {SQL_PASSWORD}")
        except ValueError:
            raise RuntimeError("wrapped") from None
    except RuntimeError as exc:
        leaks.exc("hidden context", exc)
    report = "\n".join(leaks.found())
    assert "[api_key] in log record #0 (call) patchbay.test" in report
    assert "[sql password] in hidden context: str(ValueError.__context__)" in report
    assert API_KEY not in report and SQL_PASSWORD not in report
    assert "<API_KEY>" in report


# --- servers: a paged API checking each scheme's credential, and the real OAuth2 server --------


@dataclass
class Api:
    """What the paged API accepts and how it fails; tests switch it."""

    expect: str = "api_key_header"
    fail: int | None = None  # answer this status to every /items request
    valid_tokens: Any = None  # callable -> collection of accepted bearer tokens ("oauth")
    sessions: set[str] = field(default_factory=set)
    requests: int = 0
    logins: int = 0
    counter: Iterator[int] = field(default_factory=itertools.count)

    def accepts(self, request: Request) -> bool:
        h, q = request.headers, request.query_params
        basic = "Basic " + base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()
        bearer = h.get("authorization", "").removeprefix("Bearer ")
        return {
            "api_key_header": lambda: h.get("x-api-key") == API_KEY,
            "api_key_query": lambda: q.get("api_key") == API_KEY,
            "basic": lambda: h.get("authorization") == basic,
            "bearer": lambda: h.get("authorization") == f"Bearer {BEARER_TOKEN}",
            "oauth": lambda: bool(bearer) and bearer in self.valid_tokens(),
            "session": lambda: bool(bearer) and bearer in self.sessions,
            "tryton": lambda: (
                h.get("authorization", "").removeprefix("Session ")
                in {tryton_token(sid) for sid in self.sessions}
            ),
        }[self.expect]()


def tryton_token(session: str) -> str:
    """What ``tryton_session`` sends after ``Session ``: base64(login:user_id:session)."""
    return base64.b64encode(f"ann:7:{session}".encode()).decode()


def api_app(api: Api) -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    async def items(request: Request, page: int = 0, size: int = 10) -> Response:
        api.requests += 1
        if api.fail is not None:
            return Response(f"failing with {api.fail}", status_code=api.fail)
        if not api.accepts(request):
            return Response('{"error": "unauthorized"}', 401, media_type="application/json")
        rows = ITEMS[page * size : (page + 1) * size]
        return Response(json.dumps({"items": rows}), media_type="application/json")

    @app.post("/login")
    async def login(request: Request) -> Response:
        """A session login that also sets the session as a cookie, as many do."""
        api.logins += 1
        body = await request.json()
        if body.get("username") != "ann" or body.get("password") != SESSION_PASSWORD:
            return Response('{"error": "invalid_credentials"}', 401, media_type="application/json")
        sid = f"pbleak-session-{next(api.counter)}-W5qA"
        api.sessions.add(sid)
        response = Response(json.dumps({"token": sid}), media_type="application/json")
        response.set_cookie("sid", sid, httponly=True)
        return response

    @app.post("/items")
    async def tryton_login(request: Request) -> Response:
        """Tryton's JSON-RPC login at the endpoint the calls go to (``tryton_session``)."""
        api.logins += 1
        body = await request.json()
        user, params, _language = body["params"]
        if body["method"] != "common.db.login" or (user, params.get("password")) != (
            "ann",
            TRYTON_PASSWORD,
        ):
            return Response("<h1>Unauthorized</h1>", 401, media_type="text/html")
        sid = f"pbleak-trytonsession-{next(api.counter)}-Y3pD"
        api.sessions.add(sid)
        return Response(json.dumps({"id": body["id"], "result": [7, sid, None]}))

    @app.post("/token-html")
    async def token_html() -> Response:
        return Response("<html><body><h1>Sign in</h1></body></html>", 200, media_type="text/html")

    return app


@pytest.fixture(scope="module")
def api_server() -> Iterator[tuple[Server, Api]]:
    api = Api()
    with Server(api_app(api)) as running:
        yield running, api


@pytest.fixture
def api(api_server: tuple[Server, Api]) -> tuple[str, Api]:
    server, state = api_server
    fresh = Api()
    for name in ("expect", "fail", "valid_tokens", "sessions", "requests", "logins", "counter"):
        setattr(state, name, getattr(fresh, name))
    return server.url, state


@pytest.fixture(scope="module")
def oauth_server() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as mp:
        if str(AUTH_TESTS) not in sys.path:
            mp.syspath_prepend(str(AUTH_TESTS))
        from oauth_test_server import AuthServer

    server = AuthServer()
    server.state.svc_secret = CLIENT_SECRET  # the server reads it on every request
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def oauth(oauth_server: Any, leaks: Leaks) -> Any:
    oauth_server.state.reset()
    # every token it issues is a secret too: read when the captures are searched
    leaks.issued.append(lambda: list(oauth_server.state.issued))
    return oauth_server


# --- building Hubs ----------------------------------------------------------------------------


def registry() -> ConnectorRegistry:
    connectors = ConnectorRegistry()
    connectors.register(PagesConnector)
    return connectors


def http_source(base_url: str, auth: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "connector": "pages",
        "owner": "crm-team@acme.example",
        "settings": {"base_url": base_url, "page_size": 25},
        "entities": {
            "contact": {
                "from": {},
                "id": "id",
                "fields": {"full_name": "name", "email": {"path": "email", "transform": "email"}},
            }
        },
        **extra,
    }
    if auth is not None:
        source["auth"] = auth
    return source


def sql_source(**settings: Any) -> dict[str, Any]:
    return {
        "connector": "sql",
        "owner": "finance-systems@acme.example",
        "settings": {"url": UNREACHABLE_PG, "password": "env:PB_LEAK_SQL_PW", **settings},
        "resilience": ONE_TRY,
        "entities": {
            "company": {
                "from": {"table": "customers"},
                "id": "cust_no",
                "fields": {"name": "cust_name"},
            }
        },
    }


def config_data(tmp_path: Path, sources: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "state": f"sqlite:///{tmp_path / 'state' / 'state.db'}",
        "secret_key": "env:PB_LEAK_SECRET_KEY",
        "sources": sources,
        **top,
    }


def hub_for(tmp_path: Path, base_url: str, auth: dict[str, Any] | None, **extra: Any) -> Hub:
    data = config_data(tmp_path, {"crm": http_source(base_url, auth, **extra)})
    return Hub(load_config_data(data, base_dir=tmp_path, connectors=registry()))


def write_config(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "patchbay.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


async def read_all(hub: Hub, **kwargs: Any) -> list[Any]:
    return [record async for record in hub.query("contact", **kwargs)]


async def observe_hub(leaks: Leaks, hub: Hub, source: str = "crm") -> None:
    """Reprs of the Hub and everything it built for ``source``."""
    leaks.obj("Hub", hub)
    leaks.obj("Hub.config", hub.config)
    leaks.obj("SourceConfig", hub.config.sources[source])
    leaks.obj("settings", hub.config.sources[source].settings)
    leaks.obj("auth spec", hub.config.sources[source].auth)
    leaks.obj("token store", hub.token_store)
    leaks.add("events counters", repr(hub.events.counters))
    connector = await hub.connector(source)
    leaks.obj("connector", connector)
    leaks.obj("connector resources", connector.res)
    client = connector.res.http_client
    if client is not None:
        leaks.obj("http client", client)
        leaks.obj("http client auth", client.auth)
        leaks.add("http client headers", repr(client.headers))
        manager = getattr(client.auth, "manager", None)
        if manager is not None:
            leaks.obj("token manager", manager)
    engine = connector.res.sql_engine
    if engine is not None:
        leaks.obj("sql engine", engine)
        leaks.obj("sql engine url", engine.url)
        leaks.obj("sql engine pool", engine.pool)


runner = CliRunner()


def cli(config: Path, *args: str, input: str | None = None) -> Any:
    return runner.invoke(app, ["--config", str(config), *args], input=input)


async def acli(config: Path, *args: str, input: str | None = None) -> Any:
    """``cli`` from a test that runs in an event loop (the CLI runs its own)."""
    return await asyncio.to_thread(cli, config, *args, input=input)


@pytest.fixture
def cli_knows_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI loads configs with the default registry: add the test connector to it."""

    def load(path: Any, **kwargs: Any) -> Config:
        return load_config(path, connectors=registry(), **kwargs)

    monkeypatch.setattr(patchbay.cli, "load_config", load)
    monkeypatch.setattr(patchbay.cli_creds, "load_config", load)


# --- config ---------------------------------------------------------------------------------------


async def test_a_loaded_config_shows_no_secret(tmp_path: Path, leaks: Leaks) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "bearer.txt").write_text(BEARER_TOKEN + "\n", encoding="utf-8")
    sources = {
        "key": http_source(
            UNREACHABLE,
            {"scheme": "api_key", "name": "api_key", "value": "env:PB_LEAK_API_KEY", "in": "query"},
        ),
        "basic": http_source(
            UNREACHABLE,
            {"scheme": "basic", "username": BASIC_USER, "password": "env:PB_LEAK_BASIC_PW"},
        ),
        "bearer": http_source(
            UNREACHABLE, {"scheme": "bearer", "token": "file:secrets/bearer.txt"}
        ),
        "cc": http_source(
            UNREACHABLE,
            {
                "scheme": "oauth2_client_credentials",
                "token_url": f"{UNREACHABLE}/token",
                "client_id": CLIENT_ID,
                "client_secret": "env:PB_LEAK_CLIENT_SECRET",
            },
        ),
        "session": http_source(
            UNREACHABLE,
            {
                "scheme": "session_login",
                "login_url": f"{UNREACHABLE}/login",
                "username": "ann",
                "password": "env:PB_LEAK_SESSION_PW",
            },
        ),
        "tryton": http_source(
            UNREACHABLE,
            {"scheme": "tryton_session", "username": "ann", "password": "env:PB_LEAK_TRYTON_PW"},
        ),
        "erp": sql_source(),
    }
    data = config_data(tmp_path, sources, previous_secret_keys=["env:PB_LEAK_SECRET_KEY"])
    config = load_config_data(data, base_dir=tmp_path, connectors=registry())
    # the secrets were resolved (otherwise this test would prove nothing)
    assert config.secret_key == SECRET_KEY
    assert config.sources["bearer"].auth.token.get_secret_value() == BEARER_TOKEN
    assert config.sources["erp"].settings.password.get_secret_value() == SQL_PASSWORD

    leaks.obj("Config", config)
    leaks.obj("ConfigSpec", config.spec)
    leaks.add("ConfigSpec.model_dump_json()", config.spec.model_dump_json())
    leaks.obj("StoreOpener", StoreOpener(config.spec, base_dir=tmp_path, file=config.file))
    for name, source in config.sources.items():
        leaks.obj(f"SourceConfig {name}", source)
        leaks.obj(f"settings of {name}", source.settings)
        leaks.add(f"settings of {name} .model_dump_json()", source.settings.model_dump_json())
        leaks.add(f"settings of {name} .model_dump()", repr(source.settings.model_dump()))
        if source.auth is not None:
            leaks.obj(f"auth spec of {name}", source.auth)
            leaks.add(f"auth spec of {name} .model_dump_json()", source.auth.model_dump_json())
            leaks.add(f"auth spec of {name} .model_dump()", repr(source.auth.model_dump()))
    async with Hub(config) as hub:
        for name in ("key", "basic", "bearer", "cc", "session", "tryton", "erp"):
            await observe_hub(leaks, hub, name)
    leaks.files("state database", tmp_path)
    leaks.check()


async def test_a_secret_in_connect_args_stays_out_of_reprs(tmp_path: Path, leaks: Leaks) -> None:
    erp = sql_source(connect_args={"password": "env:PB_LEAK_SQL_PW"})
    data = config_data(tmp_path, {"erp": erp})
    config = load_config_data(data, base_dir=tmp_path)
    leaks.obj("Config", config)
    leaks.obj("SourceConfig", config.sources["erp"])
    leaks.obj("settings", config.sources["erp"].settings)
    leaks.check()


def config_error(leaks: Leaks, where: str, data: dict[str, Any], tmp_path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config_data(data, base_dir=tmp_path, connectors=registry(), file="patchbay.yaml")
    leaks.exc(where, info.value)
    return info.value


def test_config_errors_next_to_secrets_show_none(
    tmp_path: Path, leaks: Leaks, monkeypatch: pytest.MonkeyPatch
) -> None:
    api_key = {"scheme": "api_key", "name": "X-API-Key", "value": "env:PB_LEAK_API_KEY"}
    basic = {"scheme": "basic", "username": BASIC_USER, "password": "env:PB_LEAK_BASIC_PW"}

    # one missing variable among resolved secrets
    data = config_data(
        tmp_path,
        {
            "a": http_source(UNREACHABLE, api_key),
            "b": http_source(UNREACHABLE, {"scheme": "bearer", "token": "env:PB_LEAK_NOT_SET"}),
            "erp": sql_source(),
        },
    )
    error = config_error(leaks, "missing env var", data, tmp_path)
    assert "environment variable PB_LEAK_NOT_SET is not set" in str(error)

    # bad settings and auth next to resolved secrets; a secret fed into a typed field
    data = config_data(
        tmp_path,
        {
            "a": http_source(UNREACHABLE, {**api_key, "in": "cookie"}),
            "b": http_source(UNREACHABLE, {**basic, "realm": "x"}),
            "c": http_source(
                UNREACHABLE,
                {"scheme": "bearer", "token": "env:PB_LEAK_BEARER", "extra": "env:PB_LEAK_API_KEY"},
            ),
            "d": {
                **http_source(UNREACHABLE, api_key),
                "settings": {"base_url": UNREACHABLE, "page_size": "env:PB_LEAK_API_KEY"},
            },
            "e": {
                **sql_source(),
                "settings": {
                    "url": UNREACHABLE_PG,
                    "password": "env:PB_LEAK_SQL_PW",
                    "pasword": "env:PB_LEAK_SQL_PW",
                },
            },
            "f": {
                **sql_source(),
                "settings": {"url": UNREACHABLE_PG, "password": ["env:PB_LEAK_SQL_PW"]},
            },
            "g": http_source(
                UNREACHABLE,
                {
                    "scheme": "oauth2_client_credentials",
                    "client_id": CLIENT_ID,
                    "client_secret": "env:PB_LEAK_CLIENT_SECRET",
                },
            ),
            "h": http_source(
                UNREACHABLE, {"scheme": "kerberos", "password": "env:PB_LEAK_BASIC_PW"}
            ),
        },
        secret_key="env:PB_LEAK_SECRET_KEY",
    )
    error = config_error(leaks, "bad settings", data, tmp_path)
    assert "problems" in str(error)

    # secret_key problems, a missing secret file, store references that cannot resolve
    data = config_data(
        tmp_path,
        {"a": http_source(UNREACHABLE, {"scheme": "bearer", "token": "file:nope/token.txt"})},
        previous_secret_keys=["store:old", "env:PB_LEAK_NOT_SET"],
    )
    config_error(leaks, "key problems", data, tmp_path)
    data = config_data(
        tmp_path, {"a": http_source(UNREACHABLE, {"scheme": "bearer", "token": "store:crm-token"})}
    )
    error = config_error(leaks, "store credential missing", data, tmp_path)
    assert "patchbay creds set crm-token" in str(error)
    monkeypatch.delenv("PB_LEAK_SECRET_KEY")
    config_error(leaks, "store without its key", data, tmp_path)
    monkeypatch.setenv("PB_LEAK_SECRET_KEY", SECRET_KEY)
    spec = load_config_data(data, connectors=registry(), resolve_secrets=False).spec
    with StoreOpener(spec, base_dir=tmp_path, file="patchbay.yaml") as opener:
        opener("secret_key").set("crm-token", STORE_SECRET)
    assert load_config_data(data, base_dir=tmp_path, connectors=registry())
    monkeypatch.setenv("PB_LEAK_SECRET_KEY", NEW_SECRET_KEY)
    error = config_error(leaks, "store opened with another key", data, tmp_path)
    assert "cannot be decrypted" in str(error)
    config_error(leaks, "top-level schema error", {**data, "version": 2, "redis": 5}, tmp_path)
    leaks.files("state database", tmp_path)
    leaks.check()


def test_config_validate_and_config_errors_in_the_cli(
    tmp_path: Path, leaks: Leaks, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = write_config(
        tmp_path,
        config_data(
            tmp_path,
            {
                "erp": sql_source(),
                "crm": {
                    **sql_source(),
                    "auth": {
                        "scheme": "basic",
                        "username": BASIC_USER,
                        "password": "env:PB_LEAK_BASIC_PW",
                    },
                },
            },
        ),
    )
    result = cli(good, "config", "validate")
    assert result.exit_code == 0, result.output
    leaks.cli("config validate (ok)", result)
    result = cli(good, "sources")
    assert result.exit_code == 0, result.output
    leaks.cli("sources", result)

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            config_data(
                tmp_path,
                {
                    "erp": {
                        **sql_source(),
                        "settings": {
                            "url": UNREACHABLE_PG,
                            "password": "env:PB_LEAK_SQL_PW",
                            "bogus": "env:PB_LEAK_API_KEY",
                        },
                    },
                    "crm": {
                        **sql_source(),
                        "auth": {
                            "scheme": "basic",
                            "username": BASIC_USER,
                            "password": "env:PB_LEAK_BASIC_PW",
                            "in": "query",
                        },
                    },
                },
            )
        ),
        encoding="utf-8",
    )
    result = cli(good, "config", "validate", str(bad))
    assert result.exit_code == 2
    leaks.cli("config validate (bad)", result)
    result = cli(bad, "sources")
    assert result.exit_code == 2
    leaks.cli("sources (bad config)", result)

    monkeypatch.delenv("PB_LEAK_SQL_PW")
    result = cli(good, "sources")
    assert result.exit_code == 2
    assert "PB_LEAK_SQL_PW is not set" in result.stderr
    leaks.cli("sources (missing env var)", result)
    leaks.files("state database", tmp_path)
    leaks.check()


# --- the credential store and `patchbay creds` --------------------------------------------------


def test_creds_commands_and_the_stored_bytes(
    tmp_path: Path, leaks: Leaks, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(
        tmp_path,
        config_data(
            tmp_path,
            {"erp": sql_source(password="store:erp-db")},
            previous_secret_keys=["env:PB_LEAK_OLD_KEY"],
        ),
    )
    monkeypatch.setenv("PB_LEAK_OLD_KEY", SECRET_KEY)

    steps = [
        ("set", ["creds", "set", "erp-db"], STORE_SECRET + "\n", 0),
        ("set --tenant", ["creds", "set", "erp-db", "--tenant", "acme"], STORE_SECRET, 0),
        ("set bad name", ["creds", "set", "../etc"], STORE_SECRET, 2),
        ("set empty", ["creds", "set", "empty"], "", 2),
        ("list", ["creds", "list"], None, 0),
        ("delete missing", ["creds", "delete", "nope", "--yes"], None, 4),
        ("delete --tenant", ["creds", "delete", "erp-db", "--tenant", "acme", "--yes"], None, 0),
    ]
    for label, args, given, code in steps:
        result = cli(path, *args, input=given)
        assert result.exit_code == code, (label, result.output)
        leaks.cli(f"creds {label}", result)
    assert load_config(path).sources["erp"].settings.password.get_secret_value() == STORE_SECRET
    assert leaks.files("state database", tmp_path) >= 1
    leaks.check()  # before the rotation too: the plaintext never reached the database

    monkeypatch.setenv("PB_LEAK_SECRET_KEY", NEW_SECRET_KEY)  # old key in previous_secret_keys
    result = cli(path, "creds", "rotate-key")
    assert result.exit_code == 0, result.output
    assert "rotated 1 credentials" in result.stderr
    leaks.cli("creds rotate-key", result)
    monkeypatch.delenv("PB_LEAK_OLD_KEY")  # step 3 of the rotation: drop the old key
    path = write_config(
        tmp_path, config_data(tmp_path, {"erp": sql_source(password="store:erp-db")})
    )
    result = cli(path, "creds", "list")  # opens with the new key only
    leaks.cli("creds list after rotation", result)
    config = load_config(path)
    assert config.sources["erp"].settings.password.get_secret_value() == STORE_SECRET
    leaks.obj("Config with a store: reference", config)

    monkeypatch.setenv("PB_LEAK_SECRET_KEY", SECRET_KEY)  # the old key alone no longer decrypts
    with pytest.raises(ConfigError) as info:
        load_config(path)
    leaks.exc("wrong key", info.value)
    result = cli(path, "sources")
    assert result.exit_code == 2
    leaks.cli("sources with the wrong key", result)
    monkeypatch.delenv("PB_LEAK_SECRET_KEY")
    result = cli(path, "creds", "set", "other", input=STORE_SECRET)
    assert result.exit_code == 2
    leaks.cli("creds set without secret_key", result)
    leaks.files("state database after rotation", tmp_path)
    leaks.check()


# --- HTTP sources: each scheme, working ---------------------------------------------------------

SCHEMES: dict[str, dict[str, Any]] = {
    "api_key_header": {"scheme": "api_key", "name": "X-API-Key", "value": "env:PB_LEAK_API_KEY"},
    "api_key_query": {
        "scheme": "api_key",
        "name": "api_key",
        "value": "env:PB_LEAK_API_KEY",
        "in": "query",
    },
    "basic": {"scheme": "basic", "username": BASIC_USER, "password": "env:PB_LEAK_BASIC_PW"},
    "bearer": {"scheme": "bearer", "token": "env:PB_LEAK_BEARER"},
}


@pytest.mark.parametrize("scheme", list(SCHEMES))
async def test_static_schemes_query_without_leaking(
    scheme: str, api: tuple[str, Api], tmp_path: Path, leaks: Leaks
) -> None:
    url, state = api
    state.expect = scheme
    async with hub_for(tmp_path, url, SCHEMES[scheme]) as hub:
        assert len(await read_all(hub)) == 60
        page = await hub.fetch("contact", limit=30)
        leaks.obj("page cursor", page.next_cursor)
        await observe_hub(leaks, hub)
    leaks.files("state database", tmp_path)
    leaks.check()


@pytest.mark.usefixtures("cli_knows_pages")
async def test_a_bearer_token_from_the_credential_store(
    api: tuple[str, Api], tmp_path: Path, leaks: Leaks
) -> None:
    url, state = api
    state.expect = "bearer"
    data = config_data(
        tmp_path, {"crm": http_source(url, {"scheme": "bearer", "token": "store:crm-token"})}
    )
    path = write_config(tmp_path, data)
    result = await acli(path, "creds", "set", "crm-token", input=BEARER_TOKEN + "\n")
    assert result.exit_code == 0, result.output
    leaks.cli("creds set", result)
    async with Hub(load_config(path, connectors=registry())) as hub:
        assert len(await read_all(hub)) == 60
        await observe_hub(leaks, hub)
    leaks.files("state database", tmp_path)
    leaks.check()


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_client_credentials_against_the_oauth_server(
    method: str, api: tuple[str, Api], oauth: Any, tmp_path: Path, leaks: Leaks
) -> None:
    url, state = api
    state.expect, state.valid_tokens = "oauth", lambda: oauth.state.issued
    auth = {
        "scheme": "oauth2_client_credentials",
        "token_url": oauth.state.token_url,
        "client_id": CLIENT_ID,
        "client_secret": "env:PB_LEAK_CLIENT_SECRET",
        "auth_method": method,
    }
    async with hub_for(tmp_path, url, auth) as hub:
        assert len(await read_all(hub)) == 60
        oauth.state.revoke_all()
        state.valid_tokens = lambda: oauth.state.issued[1:]  # the first one is now refused
        assert len(await read_all(hub)) == 60  # 401, refresh once, retry
        await observe_hub(leaks, hub)
    assert oauth.state.client_auth[method] == 2
    assert len(oauth.state.issued) == 2
    assert leaks.files("state database (tokens kept encrypted)", tmp_path) >= 1
    leaks.check()


async def test_session_login_never_logs_the_session(
    api: tuple[str, Api], tmp_path: Path, leaks: Leaks, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in LOGGERS:  # a process that never built an api_key-in-query source
        log = logging.getLogger(name)
        monkeypatch.setattr(
            log, "filters", [f for f in log.filters if not isinstance(f, QueryRedactor)]
        )
    url, state = api
    state.expect = "session"
    auth = {
        "scheme": "session_login",
        "login_url": f"{url}/login",
        "username": "ann",
        "password": "env:PB_LEAK_SESSION_PW",
    }
    async with hub_for(tmp_path, url, auth) as hub:
        assert len(await read_all(hub)) == 60
        await observe_hub(leaks, hub)
    assert state.logins == 1
    for i, sid in enumerate(sorted(state.sessions)):
        leaks.secret(f"session token #{i}", sid)
    leaks.files("state database", tmp_path)
    leaks.check()


TRYTON = {"scheme": "tryton_session", "username": "ann", "password": "env:PB_LEAK_TRYTON_PW"}


async def test_tryton_session_never_shows_password_or_session(
    api: tuple[str, Api], tmp_path: Path, leaks: Leaks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login, a session killed mid-way (one new login), then a refused password (one login,
    then the same error without a request), through the Hub and the CLI-free surfaces."""
    url, state = api
    state.expect = "tryton"
    async with hub_for(tmp_path, url, TRYTON) as hub:
        assert len(await read_all(hub)) == 60
        state.sessions.clear()  # the server ended every session
        assert len(await read_all(hub)) == 60
        await observe_hub(leaks, hub)
    assert state.logins == 2
    monkeypatch.setenv("PB_LEAK_TRYTON_PW", TRYTON_PASSWORD[::-1])
    leaks.secret("wrong tryton password", TRYTON_PASSWORD[::-1])
    state.sessions.clear()  # the stored session ends too: the new Hub must log in again
    async with hub_for(tmp_path, url, TRYTON) as hub:
        error = await expect_failure(leaks, hub, "tryton refused")
        await observe_hub(leaks, hub)
    assert "check username and password" in str(error)
    assert state.logins == 3  # the refused password was sent once
    leaks.secret("tryton session", "pbleak-trytonsession-")  # every session id issued
    for i in range(state.logins + 1):
        leaks.secret(f"tryton session header #{i}", tryton_token(f"pbleak-trytonsession-{i}-Y3pD"))
    leaks.files("state database", tmp_path)
    leaks.check()


# --- HTTP sources: failures -----------------------------------------------------------------------


async def expect_failure(
    leaks: Leaks, hub: Hub, where: str, kind: type[BaseException] = SourceError
) -> BaseException:
    with pytest.raises(kind) as info:
        await read_all(hub)
    leaks.exc(f"{where}: query", info.value)
    page = await hub.fetch("contact", limit=10, partial=True)
    assert page.errors, where
    for failure in page.errors:
        leaks.obj(f"{where}: partial failure", failure)
        leaks.add(f"{where}: partial failure .to_dict()", json.dumps(failure.to_dict()))
    health = await hub.check()
    leaks.add(f"{where}: check()", repr(health))
    return info.value


@pytest.mark.parametrize("scheme", ["api_key_header", "basic", "bearer"])
async def test_a_refused_credential(
    scheme: str, api: tuple[str, Api], tmp_path: Path, leaks: Leaks
) -> None:
    url, state = api
    state.expect = "api_key_query"  # the server wants something else: 401
    async with hub_for(tmp_path, url, SCHEMES[scheme]) as hub:
        error = await expect_failure(leaks, hub, "401")
        await observe_hub(leaks, hub)
    assert "401" in str(error)
    leaks.files("state database", tmp_path)
    leaks.check()


@pytest.mark.usefixtures("cli_knows_pages")
async def test_a_refused_api_key_in_the_query(
    api: tuple[str, Api], tmp_path: Path, leaks: Leaks
) -> None:
    url, state = api
    state.expect = "basic"  # refuse the key
    async with hub_for(tmp_path, url, SCHEMES["api_key_query"]) as hub:
        await expect_failure(leaks, hub, "401")
    # the same through the CLI (the connector registered in Python)
    data = config_data(tmp_path, {"crm": http_source(url, SCHEMES["api_key_query"])})
    path = write_config(tmp_path, data)
    for args in (["query", "contact"], ["query", "contact", "--partial"]):
        result = await acli(path, *args)
        leaks.cli(f"patchbay {' '.join(args)} (401)", result)
    leaks.files("state database", tmp_path)
    leaks.check()


@pytest.mark.parametrize("scheme", list(SCHEMES))
async def test_5xx_with_retries_then_the_breaker(
    scheme: str, api: tuple[str, Api], tmp_path: Path, leaks: Leaks
) -> None:
    url, state = api
    state.expect, state.fail = scheme, 503
    resilience = {**FAST_RETRY, "breaker": {"failures": 2, "cooldown": 60}}
    async with hub_for(tmp_path, url, SCHEMES[scheme], resilience=resilience) as hub:
        with pytest.raises(Exception) as first:
            await read_all(hub)
        leaks.exc("503 after retries", first.value)
        seen = state.requests
        with pytest.raises(SourceUnavailable) as info:
            await read_all(hub)
        assert state.requests == seen  # the breaker is open
        leaks.exc("breaker open", info.value)
        assert hub.events.counters.get(("retries", "crm"), 0) >= 2
        await observe_hub(leaks, hub)
    leaks.files("state database", tmp_path)
    leaks.check()


@pytest.mark.parametrize("scheme", list(SCHEMES))
async def test_an_unreachable_host(scheme: str, tmp_path: Path, leaks: Leaks) -> None:
    async with hub_for(tmp_path, UNREACHABLE, SCHEMES[scheme], resilience=FAST_RETRY) as hub:
        error = await expect_failure(leaks, hub, "unreachable", SourceUnavailable)
        await observe_hub(leaks, hub)
    assert "127.0.0.1" in str(error)
    leaks.check()


def client_credentials(
    token_url: str, secret: str = "env:PB_LEAK_CLIENT_SECRET", method: str = "client_secret_post"
) -> dict[str, Any]:
    return {
        "scheme": "oauth2_client_credentials",
        "token_url": token_url,
        "client_id": CLIENT_ID,
        "client_secret": secret,
        "auth_method": method,
    }


@pytest.mark.parametrize(
    "case",
    ["html", "500", "wrong secret", "unreachable", "html 200", "resource 401", "resource 503"],
)
async def test_token_endpoint_failures(
    case: str,
    api: tuple[str, Api],
    oauth: Any,
    tmp_path: Path,
    leaks: Leaks,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, state = api
    state.expect, state.valid_tokens = "oauth", lambda: oauth.state.issued
    token_url = oauth.state.token_url
    auth = client_credentials(token_url)
    if case in ("html", "500"):
        oauth.state.mode = case
    elif case == "wrong secret":
        monkeypatch.setenv("PB_LEAK_CLIENT_SECRET", CLIENT_SECRET[::-1])
        leaks.secret("wrong client secret", CLIENT_SECRET[::-1])
    elif case == "unreachable":
        auth = client_credentials(f"{UNREACHABLE}/token")
    elif case == "html 200":
        auth = client_credentials(f"{url}/token-html", method="client_secret_basic")
    elif case == "resource 401":
        state.valid_tokens = list  # every token refused: one refresh, then the 401
    else:
        state.fail = 503
    async with hub_for(tmp_path, url, auth, resilience=FAST_RETRY) as hub:
        error = await expect_failure(leaks, hub, case)
        await observe_hub(leaks, hub)
    assert "crm" in str(error)
    leaks.files("state database", tmp_path)
    leaks.check()


# --- the CLI on HTTP sources ---------------------------------------------------------------------


@pytest.mark.usefixtures("cli_knows_pages")
@pytest.mark.parametrize("fail", [None, 401, 503])
async def test_the_cli_on_an_http_source(
    fail: int | None, api: tuple[str, Api], tmp_path: Path, leaks: Leaks
) -> None:
    url, state = api
    state.expect = "basic"
    if fail == 401:
        state.expect = "bearer"
    state.fail = 503 if fail == 503 else None
    data = config_data(tmp_path, {"crm": http_source(url, SCHEMES["basic"], resilience=FAST_RETRY)})
    path = write_config(tmp_path, data)
    for args in (
        ["query", "contact", "-f", "jsonl"],
        ["query", "contact", "--partial"],
        ["get", "contact", "crm:1"],
        ["sources"],
        ["config", "validate"],
    ):
        result = await acli(path, *args)
        leaks.cli(f"patchbay {' '.join(args)}", result)
        if fail is None or args[0] in ("sources", "config"):
            assert result.exit_code == 0, result.output
        elif "--partial" not in args:
            assert result.exit_code == 3, result.output
    leaks.files("state database", tmp_path)
    leaks.check()


# --- SQL: a password on an unreachable PostgreSQL port ------------------------------------------


async def test_sql_password_on_an_unreachable_postgres(tmp_path: Path, leaks: Leaks) -> None:
    pytest.importorskip("psycopg")
    data = config_data(tmp_path, {"erp": sql_source()})
    config = load_config_data(data, base_dir=tmp_path)
    assert config.sources["erp"].settings.password.get_secret_value() == SQL_PASSWORD
    async with Hub(config) as hub:
        with pytest.raises(SourceUnavailable) as info:
            async for _ in hub.query("company"):
                pass
        assert "'erp'" in str(info.value)  # the connection error, naming the source
        leaks.exc("query", info.value)
        page = await hub.fetch("company", limit=5, partial=True)
        for failure in page.errors:
            leaks.obj("partial failure", failure)
        leaks.add("check()", repr(await hub.check()))
        with pytest.raises(SourceError) as info:
            await hub.discover("erp")
        leaks.exc("discover", info.value)
        await observe_hub(leaks, hub, "erp")
    path = write_config(tmp_path, data)
    for args in (["query", "company"], ["check"], ["discover", "erp"], ["get", "company", "erp:1"]):
        result = await acli(path, *args)
        assert result.exit_code == 3, result.output
        leaks.cli(f"patchbay {' '.join(args)}", result)
    leaks.files("state database", tmp_path)
    leaks.check()


async def test_sql_password_in_a_bad_url(tmp_path: Path, leaks: Leaks) -> None:
    """An unparseable URL or a missing driver: the error names the URL, never the password."""
    for url in ("postgresql+psycopg://erp@127.0.0.1:notaport/erp", "nosuchdb://erp@host/erp"):
        data = config_data(
            tmp_path,
            {"erp": {**sql_source(), "settings": {"url": url, "password": "env:PB_LEAK_SQL_PW"}}},
        )
        async with Hub(load_config_data(data, base_dir=tmp_path)) as hub:
            with pytest.raises(Exception) as info:  # a bad port escapes as a bare ValueError
                async for _ in hub.query("company"):
                    pass
            leaks.exc(f"url {url}", info.value)
    leaks.check()


def test_the_config_object_is_what_the_cli_loads(tmp_path: Path) -> None:
    """The CLI tests above patch patchbay.cli.load_config: make sure that is what it calls."""
    assert patchbay.cli.load_config is load_config
    assert isinstance(load_config(write_config(tmp_path, config_data(tmp_path, {}))), Config)
