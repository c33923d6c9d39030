"""The gateway's security list: credentials, scopes, cursors, denied fields, hostile input, and a
masked e-mail address that never leaves in clear (responses, errors, audit, logs)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from gateway_support import (
    CLEAR_EMAIL,
    CONTACT_ID,
    MASKED_EMAIL,
    Served,
    serve,
    write_config,
)
from servers import Server

from patchbay.auth._jose import JsonWebKey, jwt
from patchbay.gateway import GatewaySettings, JwtSettings

ISSUER = "https://issuer.test"
AUDIENCE = "patchbay-gateway"


@pytest.fixture
def served(demo_dir: Path) -> Iterator[Served]:
    write_config(demo_dir)
    yield from serve(demo_dir)


def _no_data(response: httpx.Response) -> None:
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert "records" not in body and "entities" not in body
    assert "dupont" not in response.text


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "no credentials"),
        ({"Authorization": "Bearer pb_0123456789abcdef_" + "x" * 43}, "unknown key"),
        ({"Authorization": "Bearer not-a-key"}, "garbage"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "wrong scheme"),
        ({"X-API-Key": "pb_nope"}, "malformed"),
    ],
)
def test_bad_credentials_get_401_and_no_data(
    served: Served, headers: dict[str, str], reason: str
) -> None:
    for path in ("/v1/entities", "/v1/entities/contact/records", "/v1/sources",
                 f"/v1/entities/contact/records/{CONTACT_ID}"):
        response = httpx.get(served.url + path, headers=headers)
        assert response.status_code == 401, (reason, path)
        assert response.json()["type"] == "urn:patchbay:problem:unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"
        _no_data(response)


def test_a_wrong_secret_for_a_real_key_id_is_refused(served: Served) -> None:
    real = served.tokens["support_bot"]
    prefix, key_id, secret = real.split("_", 2)
    forged = f"{prefix}_{key_id}_{'A' * len(secret)}"
    response = httpx.get(f"{served.url}/v1/entities/contact/records",
                         headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    _no_data(response)


def test_a_revoked_key_stops_working(served: Served) -> None:
    key, token = served.keys.create("support_bot", "to revoke")
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/v1/entities/contact/records", params={"limit": 1}).status_code == 200
        assert served.keys.revoke(key.id)
        response = c.get("/v1/entities/contact/records", params={"limit": 1})
    assert response.status_code == 401
    _no_data(response)


def test_another_consumers_key_reads_only_what_that_consumer_may(served: Served) -> None:
    with served.client("finance") as client:
        for path in ("/v1/entities/contact/records", f"/v1/entities/contact/records/{CONTACT_ID}"):
            response = client.get(path)
            assert response.status_code == 403
            _no_data(response)
    with served.client("ops") as client:  # a consumer without a policy sees nothing
        response = client.get("/v1/entities/product/records")
        assert response.status_code == 403
        _no_data(response)


def test_key_scopes_only_narrow(served: Served) -> None:
    _, token = served.keys.create("support_bot", "contacts only", ["read:contact"])
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/v1/entities/contact/records", params={"limit": 1}).status_code == 200
        company = c.get("/v1/entities/company/records")
        assert company.status_code == 403
        _no_data(company)
        names = [v["name"] for v in c.get("/v1/entities").json()["entities"]]
        assert names == ["contact"]
    # A scope cannot widen: read:invoice on a support_bot key still reads no invoices.
    _, wide = served.keys.create("support_bot", "wider", ["read:invoice", "read:*"])
    response = httpx.get(f"{served.url}/v1/entities/invoice/records",
                         headers={"Authorization": f"Bearer {wide}"})
    assert response.status_code == 403


def test_a_tampered_cursor_is_a_400(served: Served) -> None:
    with served.client("finance") as client:
        page = client.get("/v1/entities/invoice/records", params={"limit": 5}).json()
        cursor = page["next_cursor"]
        flipped = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
        for bad in (flipped, "garbage!!", cursor + "x"):
            response = client.get("/v1/entities/invoice/records",
                                  params={"limit": 5, "cursor": bad})
            assert response.status_code == 400
            assert response.json()["type"] == "urn:patchbay:problem:invalid-cursor"
        other_query = client.get("/v1/entities/invoice/records",
                                 params={"limit": 5, "cursor": cursor, "status": "paid"})
        assert other_query.status_code == 400


def test_a_filter_on_a_denied_or_masked_field_is_a_403(served: Served) -> None:
    with served.client("support_bot") as client:
        for params in ({"phone": "+441234"}, {"mobile__isnull": "false"},
                       {"email": CLEAR_EMAIL}, {"email__contains": "gunter"}):
            response = client.get("/v1/entities/contact/records", params=params)
            assert response.status_code == 403, params
            _no_data(response)
            assert "gunter" not in response.text
        ordered = client.get("/v1/entities/contact/records", params={"order_by": "phone"})
        assert ordered.status_code == 403
        query = client.post("/v1/entities/contact/query",
                            json={"where": {"field": "email", "op": "eq", "value": CLEAR_EMAIL}})
        assert query.status_code == 403
        assert "gunter" not in query.text


HOSTILE = [
    "' OR '1'='1",
    "1; DROP TABLE CUSTOMERS; --",
    '" OR ""="',
    "../../../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "erp:1' UNION SELECT * FROM sqlite_master --",
    "\\x00\\\\..\\\\",
    "<script>alert(1)</script>",
    "${jndi:ldap://127.0.0.1/x}",
]


def test_hostile_strings_in_every_parameter_are_data(served: Served, demo_dir: Path) -> None:
    statuses: list[int] = []

    def check(response: httpx.Response) -> None:
        statuses.append(response.status_code)
        assert response.status_code < 500, (response.request.url, response.text)
        assert response.headers["x-request-id"]

    with served.client("local") as client:
        for text in HOSTILE:
            # as a filter value: matches nothing
            for params in ({"name": text}, {"email": text}, {"status__in": text},
                           {"address__country": text}, {"name__contains": text}):
                response = client.get("/v1/entities/company/records", params=params)
                check(response)
                if response.status_code == 200:
                    assert response.json()["records"] == []
            # as a field name, operator, projection, since, order, limit, cursor
            for params in ({text: "x"}, {f"name__{text}": "x"}, {"fields": text},
                           {"since": text}, {"order_by": text}, {"limit": text},
                           {"cursor": text}, {"partial": text}):
                check(client.get("/v1/entities/company/records", params=params))
            # in paths
            check(client.get(f"/v1/entities/company/records/{text}"))
            check(client.get(f"/v1/entities/{text}/records"))
            check(client.get(f"/v1/sources/{text}/health"))
            # in the JSON body
            for body in ({"where": {"field": "name", "op": "eq", "value": text}},
                         {"where": {"field": text, "op": "eq", "value": "x"}},
                         {"fields": [text]}, {"since": text}, {"cursor": text},
                         {"order_by": text}):
                response = client.post("/v1/entities/company/query", json=body)
                check(response)
                if response.status_code == 200:
                    assert response.json()["records"] == []
            check(client.get("/healthz", headers={"X-Request-ID": text}))
    assert 400 in statuses and 404 in statuses
    with sqlite3.connect(demo_dir / "erp.sqlite") as db:  # the source is untouched
        assert db.execute("SELECT COUNT(*) FROM CUSTOMERS").fetchone()[0] > 0


def test_the_masked_email_never_leaves_in_clear(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with served.client("support_bot", **{"X-Request-ID": "scan-1"}) as client:
        responses = [
            client.get("/v1/entities/contact/records", params={"limit": 1000}),
            client.get("/v1/entities/contact/records", params={"fields": "email,full_name"}),
            client.get("/v1/entities/contact/records", params={"email__isnull": "false"}),
            client.get(f"/v1/entities/contact/records/{CONTACT_ID}"),
            client.post("/v1/entities/contact/query", json={"limit": 1000}),
            client.post("/v1/entities/contact/query",
                        json={"where": {"field": "id", "op": "eq", "value": CONTACT_ID}}),
            # attempts with the clear value: refused, and the refusal does not echo it
            client.get("/v1/entities/contact/records", params={"email": CLEAR_EMAIL}),
            client.get("/v1/entities/contact/records",
                       params={"email__in": f"{CLEAR_EMAIL},x@y.example"}),
            client.post("/v1/entities/contact/query",
                        json={"where": {"field": "email", "op": "eq", "value": CLEAR_EMAIL}}),
            client.get("/v1/entities"),
        ]
    for response in responses:
        assert response.status_code in (200, 403), response.text
        texts.append(response.text)
        texts.append(json.dumps(dict(response.headers)))
    listed = responses[0].json()["records"]
    assert any(r.get("email") == MASKED_EMAIL for r in listed)
    assert responses[3].json()["email"] == MASKED_EMAIL

    audit = served.audit_rows()
    assert [r for r in audit if r["request_id"] == "scan-1"]
    texts.append(json.dumps(audit, default=str))
    # Every log record of the server side (this test's own HTTP client logs its URLs, which
    # hold the clear value the test sent: those are not the gateway's).
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    assert any(r.name == "patchbay.gateway" for r in server_side)
    for record in server_side:
        texts.append(record.getMessage())
        texts.append(json.dumps(record.__dict__, default=str))

    leaks = [text for text in texts if CLEAR_EMAIL in text or "gunter.fernandez" in text]
    assert leaks == []


# --- JWTs ------------------------------------------------------------------------------------


def _rsa_jwk(kid: str) -> tuple[Any, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key = JsonWebKey.import_key(pem, {"kty": "RSA", "kid": kid})
    public = key.as_dict(is_private=False)
    public.update(kid=kid, use="sig", alg="RS256")
    return key, public


@pytest.fixture(scope="module")
def issuer() -> Iterator[tuple[Any, Any, str]]:
    """A JWKS endpoint on 127.0.0.1 with one key (and a second key it does not publish)."""
    good, public = _rsa_jwk("k1")
    rogue, _ = _rsa_jwk("k1")  # same kid, different key: a forged signature
    app = FastAPI()

    @app.get("/jwks.json")
    def jwks() -> dict[str, Any]:
        return {"keys": [public]}

    with Server(app) as server:
        yield good, rogue, f"{server.url}/jwks.json"


def _token(key: Any, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "bot-client", "iat": now, "exp": now + 300}
    body.update(claims)
    signed = jwt.encode({"alg": "RS256", "kid": "k1"}, body, key)
    return signed.decode() if isinstance(signed, bytes) else str(signed)


@pytest.fixture
def jwt_served(demo_dir: Path, issuer: tuple[Any, Any, str]) -> Iterator[Served]:
    write_config(demo_dir)
    settings = GatewaySettings(
        jwt=JwtSettings(
            jwks=issuer[2],
            issuer=ISSUER,
            audience=AUDIENCE,
            consumers={"bot-client": "support_bot", "books-client": "finance"},
        )
    )
    yield from serve(demo_dir, settings)


def test_jwts_are_verified_against_the_jwks(
    jwt_served: Served, issuer: tuple[Any, Any, str]
) -> None:
    good, rogue, _ = issuer
    url = f"{jwt_served.url}/v1/entities/contact/records"

    def call(token: str) -> httpx.Response:
        return httpx.get(url, headers={"Authorization": f"Bearer {token}"}, params={"limit": 2})

    ok = call(_token(good))
    assert ok.status_code == 200
    assert ok.json()["records"][0]["email"] == MASKED_EMAIL

    refused = {
        "expired": _token(good, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "wrongly signed": _token(rogue),
        "other audience": _token(good, aud="someone-else"),
        "other issuer": _token(good, iss="https://evil.test"),
        "no expiry": _token(good, exp=None),
        "unmapped subject": _token(good, sub="stranger"),
        "alg none": _token(good).rsplit(".", 1)[0] + ".",
    }
    for reason, token in refused.items():
        response = call(token)
        assert response.status_code == 401, reason
        _no_data(response)

    finance = call(_token(good, sub="books-client"))  # another consumer's token
    assert finance.status_code == 403
    _no_data(finance)


def test_jwt_scopes_only_narrow(jwt_served: Served, issuer: tuple[Any, Any, str]) -> None:
    good = issuer[0]
    token = _token(good, scope="read:company")
    with httpx.Client(base_url=jwt_served.url,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        assert client.get("/v1/entities/company/records").status_code == 200
        assert client.get("/v1/entities/contact/records").status_code == 403
        names = [v["name"] for v in client.get("/v1/entities").json()["entities"]]
        assert names == ["company"]
    wider = _token(good, scope="read:invoice")
    response = httpx.get(f"{jwt_served.url}/v1/entities/invoice/records",
                         headers={"Authorization": f"Bearer {wider}"})
    assert response.status_code == 403
