# ruff: noqa: F811 - pytest fixtures imported from auth_fixtures and used as arguments
"""Every scheme against the real server; rotation and restart; login; errors; no leaks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest
from auth_fixtures import (  # noqa: F401 - fixtures
    TIMEOUT,
    FakeClock,
    auth_server,
    clock,
    make_auth,
    no_secret_in_logs,
    server,
    spec,
    state,
)
from oauth_test_server import AuthServer, State

from patchbay.auth import (
    AuthError,
    JsonFileTokenStore,
    MemoryTokenStore,
    TokenStore,
    login,
    parse_auth_spec,
)
from patchbay.core.errors import SourceError


async def get(server: AuthServer, auth: httpx.Auth, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, auth=auth, timeout=TIMEOUT) as client:
        return await client.get(path)


# -- client credentials, jwt bearer -------------------------------------------------------------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_client_credentials(server: AuthServer, state: State, method: str) -> None:
    s = spec(
        scheme="oauth2_client_credentials",
        token_url=state.token_url,
        client_id="svc",
        client_secret=state.svc_secret,
        auth_method=method,
        audience="resource",
    )
    async with httpx.AsyncClient() as tc:
        assert (
            await get(server, make_auth(s, tc, MemoryTokenStore()), "/resource")
        ).status_code == 200
    assert state.client_auth == {method: 1}
    assert state.grants == {"client_credentials": 1}


async def test_jwt_bearer(server: AuthServer, state: State) -> None:
    s = spec(
        scheme="jwt_bearer",
        token_url=state.token_url,
        issuer="jwt-client",
        subject="svc-account@acme.example",
        audience=state.token_url,
        private_key=state.jwt_client_private,
        key_id="k1",
    )
    async with httpx.AsyncClient() as tc:
        assert (
            await get(server, make_auth(s, tc, MemoryTokenStore()), "/resource")
        ).status_code == 200
    assert state.grants == {"urn:ietf:params:oauth:grant-type:jwt-bearer": 1}


async def test_jwt_bearer_with_a_wrong_audience_is_an_auth_error(
    server: AuthServer, state: State
) -> None:
    s = spec(
        scheme="jwt_bearer",
        token_url=state.token_url,
        issuer="jwt-client",
        subject="svc",
        audience="https://elsewhere.example/token",
        private_key=state.jwt_client_private,
    )
    async with httpx.AsyncClient() as tc:
        with pytest.raises(AuthError, match="assertion was rejected: check issuer, subject, aud"):
            await get(server, make_auth(s, tc, MemoryTokenStore()), "/resource")


async def test_jwt_bearer_with_a_key_that_is_not_pem_says_so(server: AuthServer) -> None:
    s = spec(
        scheme="jwt_bearer",
        token_url=f"{server.url}/token",
        issuer="jwt-client",
        subject="svc",
        audience="x",
        private_key="not-a-pem-key-0123456789",
    )
    async with httpx.AsyncClient() as tc:
        with pytest.raises(AuthError, match="cannot sign the JWT assertion") as err:
            await get(server, make_auth(s, tc, MemoryTokenStore()), "/resource")
    assert "not-a-pem-key" not in str(err.value)


# -- static schemes --------------------------------------------------------------------------


async def test_api_key_in_header(server: AuthServer, state: State) -> None:
    s = spec(scheme="api_key", name="X-API-Key", value=state.api_key)
    async with httpx.AsyncClient() as tc:
        assert (
            await get(server, make_auth(s, tc, MemoryTokenStore()), "/static/apikey-header")
        ).json() == {"ok": True}


async def test_api_key_in_query_is_sent_but_not_logged(
    server: AuthServer, state: State, caplog: pytest.LogCaptureFixture
) -> None:
    s = spec(scheme="api_key", name="api_key", value=state.api_key, **{"in": "query"})
    async with httpx.AsyncClient() as tc:
        response = await get(
            server, make_auth(s, tc, MemoryTokenStore()), "/static/apikey-query?page=2"
        )
    assert response.json() == {"ok": True}
    logged = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("/static/apikey-query?page=2&api_key=***" in m for m in logged), logged
    assert not any(state.api_key in m for m in logged)


async def test_basic(server: AuthServer, state: State) -> None:
    s = spec(scheme="basic", username="bob", password=state.basic_password)
    async with httpx.AsyncClient() as tc:
        assert (
            await get(server, make_auth(s, tc, MemoryTokenStore()), "/static/basic")
        ).json() == {"ok": True}


def test_static_schemes_also_serve_a_sync_client(server: AuthServer, state: State) -> None:
    s = spec(scheme="bearer", token=state.static_bearer)
    auth = make_auth(s, httpx.AsyncClient(), MemoryTokenStore())
    with httpx.Client(base_url=server.url, auth=auth) as client:
        assert client.get("/static/bearer").json() == {"ok": True}


async def test_bearer(server: AuthServer, state: State) -> None:
    s = spec(scheme="bearer", token=state.static_bearer)
    async with httpx.AsyncClient() as tc:
        assert (
            await get(server, make_auth(s, tc, MemoryTokenStore()), "/static/bearer")
        ).json() == {"ok": True}


# -- session login ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("placement", "via"),
    [({"header": "X-Session", "prefix": "Token "}, "header"), ({"cookie": "sid"}, "cookie")],
)
async def test_session_login(
    server: AuthServer, state: State, clock: FakeClock, placement: dict[str, str], via: str
) -> None:
    s = spec(
        scheme="session_login",
        login_url=f"{server.url}/session/login",
        username="ann",
        password=state.session_password,
        token_path="data.session",
        expires_in=600,
        **placement,
    )
    async with httpx.AsyncClient() as tc:
        auth = make_auth(s, tc, MemoryTokenStore(), clock=clock)
        async with httpx.AsyncClient(base_url=server.url, auth=auth) as client:
            assert (await client.get("/session/resource")).json() == {"ok": True, "via": via}
            await client.get("/session/resource")
            assert state.token_requests == 1
            clock.advance(600 - 29)  # the configured expiry (the server gave none), minus skew
            assert (await client.get("/session/resource")).status_code == 200
    assert state.token_requests == 2


async def test_session_login_with_a_wrong_password_says_what_to_check(
    server: AuthServer, state: State
) -> None:
    s = spec(
        scheme="session_login",
        login_url=f"{server.url}/session/login",
        username="ann",
        password="wrong-password-123",
        token_path="data.session",
    )
    async with httpx.AsyncClient() as tc:
        with pytest.raises(AuthError) as err:
            await get(server, make_auth(s, tc, MemoryTokenStore()), "/session/resource")
    assert str(err.value) == (
        "source 'crm' (owner: crm-team@acme.example): the login endpoint refused the request "
        "with status 401 (invalid_credentials): check username and password"
    )


# -- refresh token rotation and restart ------------------------------------------------------


async def test_rotation_is_persisted_and_a_restarted_process_still_authenticates(
    server: AuthServer, state: State, clock: FakeClock, tmp_path: Path
) -> None:
    initial = state.seed_refresh_token("app")
    s = spec(
        scheme="oauth2_refresh_token",
        token_url=state.token_url,
        client_id="app",
        client_secret=state.app_secret,
        refresh_token=initial,
    )
    path = tmp_path / "tokens.json"
    async with httpx.AsyncClient() as tc:
        assert (
            await get(server, make_auth(s, tc, JsonFileTokenStore(path), clock=clock), "/resource")
        ).status_code == 200
        first = json.loads(path.read_text())["crm"]["refresh_token"]
        assert first != initial

        # "restart": new store and auth objects over the same file, after the token expired
        clock.advance(3600)
        restarted = make_auth(s, tc, JsonFileTokenStore(path), clock=clock)
        assert (await get(server, restarted, "/resource")).status_code == 200
        second = json.loads(path.read_text())["crm"]["refresh_token"]
        assert second not in (first, initial)
        assert state.grants == {"refresh_token": 2}

        # the server no longer accepts the rotated-away refresh tokens
        for old in (initial, first):
            answer = await tc.post(
                state.token_url,
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": old,
                    "client_id": "app",
                    "client_secret": state.app_secret,
                },
            )
            assert answer.json() == {"error": "invalid_grant"}


async def test_a_process_restarted_with_a_fresh_stored_token_does_not_refresh(
    server: AuthServer, state: State, clock: FakeClock, tmp_path: Path
) -> None:
    s = spec(
        scheme="oauth2_refresh_token",
        token_url=state.token_url,
        client_id="app",
        client_secret=state.app_secret,
        refresh_token=state.seed_refresh_token("app"),
    )
    path = tmp_path / "tokens.json"
    async with httpx.AsyncClient() as tc:
        await get(server, make_auth(s, tc, JsonFileTokenStore(path), clock=clock), "/resource")
        await get(server, make_auth(s, tc, JsonFileTokenStore(path), clock=clock), "/resource")
    assert state.token_requests == 1


async def test_a_rejected_refresh_token_says_to_put_a_new_one_in_the_config(
    server: AuthServer, state: State
) -> None:
    s = spec(
        scheme="oauth2_refresh_token",
        token_url=state.token_url,
        client_id="app",
        client_secret=state.app_secret,
        refresh_token="rt-that-the-server-never-issued",
    )
    async with httpx.AsyncClient() as tc:
        with pytest.raises(AuthError, match=r"refresh token was rejected: obtain a new one") as err:
            await get(server, make_auth(s, tc, MemoryTokenStore()), "/resource")
    assert "rt-that-the-server-never-issued" not in str(err.value)


# -- authorization code + PKCE ---------------------------------------------------------------


def browser_following_redirects(url: str) -> None:
    """Stands in for the user's browser: open the authorize URL, follow to the loopback server."""
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        assert browser.get(url).status_code == 200


async def test_authorization_code_with_pkce_round_trip(
    server: AuthServer, state: State, clock: FakeClock
) -> None:
    s = parse_auth_spec(
        {
            "scheme": "oauth2_authorization_code",
            "authorize_url": f"{server.url}/authorize",
            "token_url": state.token_url,
            "client_id": "app",
            "scope": "read",
        }
    )
    store: TokenStore = MemoryTokenStore()
    async with httpx.AsyncClient() as tc:
        auth = make_auth(s, tc, store, clock=clock)
        with pytest.raises(AuthError, match=r"run `patchbay auth login crm`"):
            await get(server, auth, "/resource")

        await login(
            s,
            source="crm",
            store=store,
            token_client=tc,  # type: ignore[arg-type]
            open_browser=browser_following_redirects,
            clock=clock,
        )
        assert state.grants == {"authorization_code": 1}
        auth = make_auth(s, tc, store, clock=clock)
        assert (await get(server, auth, "/resource")).status_code == 200
        assert state.token_requests == 1  # the login's tokens were used

        clock.advance(3600)  # then it behaves like refresh_token, with rotation
        assert (await get(server, auth, "/resource")).status_code == 200
        assert state.grants == {"authorization_code": 1, "refresh_token": 1}

        # the refresh token is revoked server-side: the error says to log in again
        state.refresh_tokens.clear()
        clock.advance(3600)
        with pytest.raises(AuthError) as err:
            await get(server, auth, "/resource")
    assert str(err.value) == (
        "source 'crm' (owner: crm-team@acme.example): the token endpoint refused the request "
        "with status 400 (invalid_grant): refresh token rejected: run `patchbay auth login crm`"
    )


async def test_login_times_out_with_what_to_do(server: AuthServer, state: State) -> None:
    s = parse_auth_spec(
        {
            "scheme": "oauth2_authorization_code",
            "authorize_url": f"{server.url}/authorize",
            "token_url": state.token_url,
            "client_id": "app",
        }
    )
    seen: list[str] = []
    async with httpx.AsyncClient() as tc:
        with pytest.raises(AuthError, match=r"no authorization code arrived within 0.3 s: run"):
            await login(
                s,
                source="crm",
                store=MemoryTokenStore(),
                token_client=tc,  # type: ignore[arg-type]
                open_browser=seen.append,
                timeout=0.3,
            )
    query = httpx.URL(seen[0]).params
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"].startswith("http://127.0.0.1:")
    assert len(query["state"]) >= 32
    assert state.token_requests == 0


# -- bad answers from the token endpoint -----------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "secret_ok", "message", "retryable"),
    [
        (
            "html",
            True,
            "the token endpoint answered HTML (status 502), not JSON: check token_url",
            True,
        ),
        (
            "500",
            True,
            "the token endpoint failed (status 500, server_error): try again later; "
            "if it persists, tell the source's owner",
            True,
        ),
        (
            "ok",
            False,
            "the token endpoint refused the request with status 401 (invalid_client): "
            "check client_id, client_secret and auth_method",
            False,
        ),
    ],
)
async def test_bad_token_endpoint_answers_are_one_clear_auth_error(
    server: AuthServer, state: State, mode: str, secret_ok: bool, message: str, retryable: bool
) -> None:
    state.mode = mode
    secret = state.svc_secret if secret_ok else "wrong-secret-xyz"
    s = spec(
        scheme="oauth2_client_credentials",
        token_url=state.token_url,
        client_id="svc",
        client_secret=secret,
    )
    async with httpx.AsyncClient() as tc:
        with pytest.raises(AuthError) as err:
            await get(server, make_auth(s, tc, MemoryTokenStore()), "/resource")
    assert isinstance(err.value, SourceError)
    assert str(err.value) == f"source 'crm' (owner: crm-team@acme.example): {message}"
    assert err.value.source == "crm"
    assert err.value.retryable is retryable
    assert err.value.__cause__ is None
    assert err.value.__context__ is None or err.value.__suppress_context__
    assert "wrong-secret-xyz" not in str(err.value)
    assert state.token_requests == 1


async def test_an_unreachable_token_endpoint_is_an_auth_error(server: AuthServer) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    s = spec(
        scheme="oauth2_client_credentials",
        token_url=f"http://127.0.0.1:{closed_port}/t",
        client_id="svc",
        client_secret="x-secret-value",
    )
    async with httpx.AsyncClient() as tc:
        with pytest.raises(AuthError, match=r"cannot reach the token endpoint \(ConnectError\)"):
            await get(server, make_auth(s, tc, MemoryTokenStore()), "/resource")


# -- secrets in reprs and config -------------------------------------------------------------


def test_secrets_never_appear_in_reprs(server: AuthServer, state: State) -> None:
    specs = [
        spec(scheme="api_key", name="k", value=state.api_key),
        spec(scheme="basic", username="bob", password=state.basic_password),
        spec(scheme="bearer", token=state.static_bearer),
        spec(
            scheme="oauth2_client_credentials",
            token_url="u",
            client_id="c",
            client_secret=state.svc_secret,
        ),
        spec(
            scheme="oauth2_refresh_token",
            token_url="u",
            client_id="c",
            client_secret=state.app_secret,
            refresh_token="rt-initial-secret",
        ),
        spec(
            scheme="jwt_bearer",
            token_url="u",
            issuer="i",
            subject="s",
            audience="a",
            private_key=state.jwt_client_private,
        ),
        spec(
            scheme="session_login", login_url="u", username="ann", password=state.session_password
        ),
    ]
    tc = httpx.AsyncClient()
    texts = [repr(s) for s in specs] + [str(s) for s in specs]
    texts += [repr(make_auth(s, tc, MemoryTokenStore())) for s in specs]
    blob = "\n".join(texts)
    for secret in [*state.secrets(), "rt-initial-secret"]:
        assert secret not in blob


def test_config_is_validated_with_the_discriminator() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        parse_auth_spec({"scheme": "basic", "username": "u", "password": "p-secret", "extra": 1})
    assert "p-secret" not in str(err.value)
    with pytest.raises(ValidationError, match="union_tag_invalid"):
        parse_auth_spec({"scheme": "kerberos"})
    with pytest.raises(ValidationError, match="either header or cookie"):
        parse_auth_spec(
            {
                "scheme": "session_login",
                "login_url": "u",
                "username": "a",
                "password": "p",
                "header": "X",
                "cookie": "c",
            }
        )


def test_the_query_redactor_only_touches_its_parameter(caplog: pytest.LogCaptureFixture) -> None:
    from patchbay.auth import install_redactor

    install_redactor("api_key")
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s %d %s"',
        "GET",
        httpx.URL("http://127.0.0.1/x?page=2&api_key=abc%2Fdef&q=1"),
        "HTTP/1.1",
        200,
        "OK",
    )
    assert caplog.records[-1].getMessage() == (
        'HTTP Request: GET http://127.0.0.1/x?page=2&api_key=***&q=1 "HTTP/1.1 200 OK"'
    )
