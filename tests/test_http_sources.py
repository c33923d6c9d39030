"""HTTP sources end to end: the client the Hub injects carries auth, resilience and TLS.

A small connector (defined here, registered in Python) pages through a real uvicorn server on
127.0.0.1 whose faults each test switches on: 503 bursts, 429 with Retry-After, a token
endpoint, a private CA and client certificates (mTLS).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import random
import ssl
import time
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel
from servers import Server

from patchbay import Hub, SourceUnavailable
from patchbay.config import load_config_data
from patchbay.core.connector import Batch, Capability, Connector, ReadRequest
from patchbay.core.registry import ConnectorRegistry

API_KEY = "k3y-sh0uld-n3ver-app3ar"
CLIENT_SECRET = "cl13nt-s3cret-n3ver-app3ar"
ITEMS = [{"id": i, "name": f"Customer {i}", "email": f"c{i}@acme.example"} for i in range(1, 61)]


# --- the connector under test: pages of JSON through the injected client ----------------------


class PagesSettings(BaseModel):
    base_url: str
    page_size: int = 10


class PagesConnector(Connector):
    kind = "pages"
    Settings = PagesSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.READ})
    resources = frozenset({"http_client"})

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        settings = self.settings
        assert isinstance(settings, PagesSettings)
        page = int(request.position or 0)
        while True:
            response = await self.res.http_client.get(
                f"{settings.base_url}/items", params={"page": page, "size": settings.page_size}
            )
            response.raise_for_status()
            rows = response.json()["items"]
            if not rows:
                return
            yield Batch(rows, lambda index, page=page: page + 1)
            page += 1


# --- the server ---------------------------------------------------------------------------------


@dataclass
class Faults:
    fail_503: float = 0.0
    fail_429: float = 0.0
    down: bool = False
    auth: str = "api_key"  # api_key | bearer
    requests: int = 0
    token_requests: int = 0
    tokens: set[str] = field(default_factory=set)
    after_429: dict[str, float] = field(default_factory=dict)  # client -> earliest next arrival
    early: int = 0  # requests that came sooner than a Retry-After allowed
    rng: random.Random = field(default_factory=lambda: random.Random(7))


def make_app(faults: Faults) -> FastAPI:
    app = FastAPI()
    counter = itertools.count()

    @app.post("/token")
    async def token(request: Request) -> Response:
        faults.token_requests += 1
        # Parsed by hand: FastAPI's form parsing needs python-multipart, not a dependency.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        auth = request.headers.get("authorization", "")
        import base64

        expected = "Basic " + base64.b64encode(f"patchbay:{CLIENT_SECRET}".encode()).decode()
        if form.get("grant_type") != "client_credentials" or auth != expected:
            return Response('{"error": "invalid_client"}', 401, media_type="application/json")
        value = f"tok-{next(counter)}"
        faults.tokens.add(value)
        body = f'{{"access_token": "{value}", "token_type": "Bearer", "expires_in": 3600}}'
        return Response(body, media_type="application/json")

    @app.get("/items")
    async def items(request: Request, page: int = 0, size: int = 10) -> Response:
        faults.requests += 1
        client = request.headers.get("x-client", "")
        now = time.monotonic()
        if client and now < faults.after_429.get(client, 0.0):
            faults.early += 1
        if faults.auth == "api_key" and request.headers.get("x-api-key") != API_KEY:
            return Response(status_code=401)
        if faults.auth == "bearer":
            got = request.headers.get("authorization", "").removeprefix("Bearer ")
            if got not in faults.tokens:
                return Response(status_code=401)
        if faults.down:
            return Response(status_code=503)
        roll = faults.rng.random()
        if roll < faults.fail_503:
            return Response(status_code=503)
        if roll < faults.fail_503 + faults.fail_429:
            if client:
                faults.after_429[client] = now + 1.0
            return Response(status_code=429, headers={"Retry-After": "1"})
        rows = ITEMS[page * size : (page + 1) * size]
        import json

        return Response(json.dumps({"items": rows}), media_type="application/json")

    return app


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def server(faults: Faults) -> Iterator[Server]:
    with Server(make_app(faults)) as running:
        yield running


def hub_for(base_url: str, tmp_path: Path, *, auth: dict[str, Any], resilience: dict[str, Any]
            | None = None, http: dict[str, Any] | None = None) -> Hub:
    registry = ConnectorRegistry()
    registry.register(PagesConnector)
    source: dict[str, Any] = {
        "connector": "pages", "owner": "crm-team@acme.example",
        "settings": {"base_url": base_url},
        "auth": auth,
        "entities": {"contact": {"from": {}, "id": "id", "fields": {
            "full_name": "name", "email": {"path": "email", "transform": "email"}}}},
    }
    if resilience is not None:
        source["resilience"] = resilience
    if http is not None:
        source["http"] = http
    data = {"version": 1, "state": f"sqlite:///{tmp_path / 'state.db'}",
            "secret_key": "http-tests-secret-key-0123456789", "sources": {"crm": source}}
    return Hub(load_config_data(data, base_dir=tmp_path, connectors=registry))


API_KEY_AUTH = {"scheme": "api_key", "name": "X-API-Key", "value": "env:CRM_API_KEY"}


@pytest.fixture(autouse=True)
def _api_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_API_KEY", API_KEY)
    monkeypatch.setenv("CRM_CLIENT_SECRET", CLIENT_SECRET)


async def read_all(hub: Hub, **kwargs: Any) -> list[Any]:
    return [r async for r in hub.query("contact", **kwargs)]


# --- tests ----------------------------------------------------------------------------------------


async def test_api_key_and_retries_through_the_injected_client(
    server: Server, faults: Faults, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    faults.fail_503, faults.fail_429 = 0.3, 0.1
    caplog.set_level(logging.DEBUG)
    async with hub_for(server.url, tmp_path, auth=API_KEY_AUTH,
                       resilience={"retry": {"attempts": 8, "backoff": 0.01}}) as hub:
        records = await read_all(hub)
        counters = dict(hub.events.counters)
    assert [r.id for r in records] == [f"crm:{i}" for i in range(1, 61)]
    assert counters.get(("retries", "crm"), 0) >= 1
    assert faults.early == 0
    assert API_KEY not in caplog.text


async def test_an_api_key_in_the_query_never_reaches_a_log(
    server: Server, faults: Faults, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    faults.auth = "none"
    caplog.set_level(logging.DEBUG)
    auth = {"scheme": "api_key", "name": "api_key", "value": "env:CRM_API_KEY", "in": "query"}
    async with hub_for(server.url, tmp_path, auth=auth) as hub:
        assert len(await read_all(hub)) == 60
    assert API_KEY not in caplog.text


async def test_client_credentials_fetch_one_token_for_concurrent_queries(
    server: Server, faults: Faults, tmp_path: Path
) -> None:
    faults.auth = "bearer"
    auth = {"scheme": "oauth2_client_credentials", "token_url": f"{server.url}/token",
            "client_id": "patchbay", "client_secret": "env:CRM_CLIENT_SECRET"}
    async with hub_for(server.url, tmp_path, auth=auth) as hub:
        results = await asyncio.gather(*(read_all(hub) for _ in range(20)))
    assert all(len(r) == 60 for r in results)
    assert faults.token_requests == 1


async def test_a_source_down_opens_the_breaker_and_then_fails_fast(
    server: Server, faults: Faults, tmp_path: Path
) -> None:
    faults.down = True
    resilience = {"retry": {"attempts": 2, "backoff": 0.01}, "breaker": {"failures": 2,
                                                                         "cooldown": 60}}
    async with hub_for(server.url, tmp_path, auth=API_KEY_AUTH, resilience=resilience) as hub:
        with pytest.raises(Exception):  # the connector sees the final 503 (raise_for_status)
            await read_all(hub)
        seen = faults.requests
        with pytest.raises(SourceUnavailable) as info:
            await read_all(hub)
        assert faults.requests == seen  # not a single request reached the server
        assert "crm-team@acme.example" in str(info.value)
        assert ("breaker_opened", "crm") in hub.events.counters


# --- TLS: a private CA, and client certificates ----------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key: Any, issuer: x509.Name | None, issuer_key: Any, *, ca: bool,
          san: bool = False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, *items: Any) -> Path:
    data = b""
    for item in items:
        if isinstance(item, x509.Certificate):
            data += item.public_bytes(serialization.Encoding.PEM)
        else:
            data += item.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    path.write_bytes(data)
    return path


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca_key = _key()
    ca = _cert("patchbay test CA", ca_key, None, ca_key, ca=True)
    server_key, client_key = _key(), _key()
    server_cert = _cert("127.0.0.1", server_key, ca.subject, ca_key, ca=False, san=True)
    client_cert = _cert("patchbay client", client_key, ca.subject, ca_key, ca=False)
    return {
        "ca": _write(tmp_path / "ca.pem", ca),
        "server_cert": _write(tmp_path / "server.pem", server_cert),
        "server_key": _write(tmp_path / "server.key", server_key),
        "client": _write(tmp_path / "client.pem", client_cert, client_key),
    }


async def test_private_ca_and_client_certificate(
    faults: Faults, pki: dict[str, Path], tmp_path: Path
) -> None:
    with Server(make_app(faults), ssl_certfile=str(pki["server_cert"]),
                ssl_keyfile=str(pki["server_key"]), ssl_ca_certs=str(pki["ca"]),
                ssl_cert_reqs=ssl.CERT_REQUIRED) as tls:
        http = {"ca_bundle": "ca.pem", "client_cert": "client.pem"}
        async with hub_for(tls.url, tmp_path, auth=API_KEY_AUTH, http=http) as hub:
            assert len(await read_all(hub)) == 60
        # Without the client certificate the server refuses the handshake.
        no_cert = {"retry": {"attempts": 1}}
        async with hub_for(tls.url, tmp_path, auth=API_KEY_AUTH, http={"ca_bundle": "ca.pem"},
                           resilience=no_cert) as hub:
            with pytest.raises(SourceUnavailable, match="crm"):
                await read_all(hub)
        # Without the private CA the server is not trusted.
        async with hub_for(tls.url, tmp_path, auth=API_KEY_AUTH, resilience=no_cert) as hub:
            with pytest.raises(SourceUnavailable, match="crm"):
                await read_all(hub)


def test_auth_config_errors_name_the_path(tmp_path: Path) -> None:
    from patchbay.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"sources\.crm\.auth"):
        hub_for("http://127.0.0.1:1", tmp_path, auth={"scheme": "kerberos"})
    with pytest.raises(ConfigError, match="environment variable NOPE_NOT_SET is not set"):
        hub_for("http://127.0.0.1:1", tmp_path,
                auth={"scheme": "bearer", "token": "env:NOPE_NOT_SET"})


# --- tenants: one source definition, each tenant's own credentials -----------------------------


def tenant_app(seen: list[str]) -> FastAPI:
    app = FastAPI()
    keys = {"key-acme": "acme", "key-globex": "globex", "key-default": "default"}

    @app.get("/items")
    async def items(request: Request, page: int = 0, size: int = 10) -> Response:
        tenant = keys.get(request.headers.get("x-api-key", ""))
        if tenant is None:
            return Response(status_code=401)
        seen.append(tenant)
        import json

        rows = [{"id": f"{tenant}-{i}", "name": f"{tenant} customer {i}",
                 "email": f"c{i}@{tenant}.example"} for i in range(3)]
        return Response(json.dumps({"items": rows if page == 0 else []}),
                        media_type="application/json")

    return app


async def test_each_query_uses_its_tenants_credentials(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from patchbay.cli import app as cli
    from patchbay.core.errors import ConfigError

    seen: list[str] = []
    with Server(tenant_app(seen)) as running:
        auth = {"scheme": "api_key", "name": "X-API-Key", "value": "store:crm_key"}
        # The credentials go into the store first (the config refers to them).
        config = {"version": 1, "state": "sqlite:///state.db",
                  "secret_key": "http-tests-secret-key-0123456789", "sources": {}}
        (tmp_path / "patchbay.yaml").write_text(yaml.safe_dump(config))
        runner = CliRunner()
        for tenant, key in (("", "key-default"), ("acme", "key-acme"), ("globex", "key-globex")):
            args = ["--config", str(tmp_path / "patchbay.yaml"), "creds", "set", "crm_key"]
            result = runner.invoke(cli, args + (["--tenant", tenant] if tenant else []),
                                   input=key + "\n")
            assert result.exit_code == 0, result.output
        async with hub_for(running.url, tmp_path, auth=auth) as hub:
            default = await read_all(hub)
            acme = await read_all(hub, tenant="acme")
            globex = await read_all(hub, tenant="globex")
            page = await hub.fetch("contact", tenant="acme", limit=2)
            with pytest.raises(ConfigError, match="no such credential"):
                await read_all(hub, tenant="initech")
    assert [r.remote_id for r in default] == ["default-0", "default-1", "default-2"]
    assert [r.remote_id for r in acme] == ["acme-0", "acme-1", "acme-2"]
    assert [r.remote_id for r in globex] == ["globex-0", "globex-1", "globex-2"]
    assert page.next_cursor is not None
    assert set(seen) == {"default", "acme", "globex"}
