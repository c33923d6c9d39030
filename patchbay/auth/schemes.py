"""The auth schemes as ``httpx.Auth`` flows, and ``build_auth`` that makes one from a spec.

Static schemes (``api_key``, ``basic``, ``bearer``) implement the generator ``auth_flow``, so
one object serves ``httpx.Client`` and ``httpx.AsyncClient``. Token schemes share ``TokenAuth``:
its ``async_auth_flow`` takes the token from a ``TokenManager`` (one refresh for all concurrent
callers), and on a 401 refreshes once and retries once; a second 401 is returned as it is.
Their ``sync_auth_flow`` raises ``AuthError``: the refresh lock and the token endpoint client are
asyncio objects, and sharing them with a sync client would mean a second, blocking copy of the
lifecycle. Use an ``httpx.AsyncClient`` for token schemes.

Auth classes never retry anything else: timeouts, 5xx and rate limits belong to the resilience
layer, which sees ``AuthError.retryable``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Generator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from redis.asyncio import Redis

from ._endpoint import Endpoint, Remedies
from ._errors import AuthError
from ._jose import JoseError, jwt
from ._redact import install_redactor
from ._spec import (
    ApiKeySpec,
    AuthorizationCodeSpec,
    AuthSpec,
    BasicSpec,
    BearerSpec,
    ClientCredentialsSpec,
    JwtBearerSpec,
    RefreshTokenSpec,
    SessionLoginSpec,
    TrytonSessionSpec,
)
from .tokens import DEFAULT_SKEW, Clock, Fetch, Token, TokenManager, TokenStore

__all__ = [
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "TokenAuth",
    "TokenPlacement",
    "build_auth",
]

logger = logging.getLogger("patchbay.auth")

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class ApiKeyAuth(httpx.Auth):
    """A static key in a header or a query parameter.

    In the query, the key is part of the URL that httpx logs: ``build_auth`` installs
    ``QueryRedactor`` on httpx's loggers for that parameter (see ``patchbay.auth._redact``).
    """

    def __init__(self, name: str, value: str, *, in_: str = "header") -> None:
        self._name = name
        self._value = value
        self._in = in_

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._in == "query":
            request.url = request.url.copy_set_param(self._name, self._value)
        else:
            request.headers[self._name] = self._value
        yield request

    def __repr__(self) -> str:
        return f"ApiKeyAuth(name={self._name!r}, in={self._in!r}, value='***')"


class BasicAuth(httpx.Auth):
    def __init__(self, username: str, password: str) -> None:
        self._username = username
        self._header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return f"BasicAuth(username={self._username!r}, password='***')"


class BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(token='***')"


@dataclass(frozen=True)
class TokenPlacement:
    """Where a token goes: ``header: prefix + token``, or the cookie ``cookie`` when set."""

    header: str = "Authorization"
    prefix: str = "Bearer "
    cookie: str | None = None

    def apply(self, request: httpx.Request, token: Token, base_cookie: str | None) -> None:
        if self.cookie is None:
            request.headers[self.header] = f"{self.prefix}{token.access_token}"
            return
        ours = f"{self.cookie}={token.access_token}"
        request.headers["Cookie"] = f"{base_cookie}; {ours}" if base_cookie else ours


class TokenAuth(httpx.Auth):
    """A token from a ``TokenManager``; one refresh-and-retry on 401, never more."""

    requires_request_body = True  # the body is sent again after a 401

    def __init__(self, manager: TokenManager, placement: TokenPlacement | None = None) -> None:
        self.manager = manager
        self._placement = placement or TokenPlacement()

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise AuthError(
            self.manager.source,
            "token-based auth works with httpx.AsyncClient only: build the source's client "
            "as an AsyncClient",
            owner=self.manager.owner,
        )
        yield request  # pragma: no cover - makes this a generator

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        base_cookie = request.headers.get("Cookie")
        token = await self.manager.token()
        self._placement.apply(request, token, base_cookie)
        response = yield request
        if response.status_code != 401:
            return
        logger.info(
            "source %s: %s %s answered 401; refreshing the token and retrying once",
            self.manager.source,
            request.method,
            request.url.path,
        )
        token = await self.manager.refresh(token)
        self._placement.apply(request, token, base_cookie)
        yield request

    def __repr__(self) -> str:
        return f"TokenAuth({self.manager!r})"


def build_auth(
    spec: AuthSpec,
    *,
    source: str,
    owner: str | None,
    store: TokenStore,
    token_client: httpx.AsyncClient,
    redis: Redis | None = None,
    clock: Clock | None = None,
    redis_prefix: str = "patchbay:auth:",
    skew: float = DEFAULT_SKEW,
) -> httpx.Auth:
    """The ``httpx.Auth`` for ``spec``. Token endpoint calls go through ``token_client``.

    Tokens are kept in ``store`` under the key ``source``; with ``redis``, one refresh is shared
    by every process using the same Redis and ``redis_prefix``.
    """
    if isinstance(spec, ApiKeySpec):
        if spec.in_ == "query":
            install_redactor(spec.name)
        return ApiKeyAuth(spec.name, spec.value.get_secret_value(), in_=spec.in_)
    if isinstance(spec, BasicSpec):
        return BasicAuth(spec.username, spec.password.get_secret_value())
    if isinstance(spec, BearerSpec):
        return BearerAuth(spec.token.get_secret_value())
    now: Clock = clock or time.time
    if isinstance(spec, TrytonSessionSpec):
        from .tryton import TrytonSessionAuth  # it builds on TokenAuth, defined here

        return TrytonSessionAuth(
            spec,
            source=source,
            owner=owner,
            store=store,
            client=token_client,
            clock=now,
            redis=redis,
            redis_prefix=redis_prefix,
            skew=skew,
        )
    manager = TokenManager(
        source=source,
        key=source,
        fetch=_fetcher(spec, source=source, owner=owner, client=token_client, clock=now),
        store=store,
        fingerprint=fingerprint(spec),
        owner=owner,
        redis=redis,
        redis_prefix=redis_prefix,
        clock=now,
        skew=skew,
    )
    placement = TokenPlacement()
    if isinstance(spec, SessionLoginSpec):
        placement = TokenPlacement(
            header=spec.header or "Authorization", prefix=spec.prefix, cookie=spec.cookie
        )
    return TokenAuth(manager, placement)


def fingerprint(spec: AuthSpec) -> str:
    """Identifies whom stored tokens belong to; secrets enter only as a truncated hash."""
    identity: dict[str, Any] = {
        key: value
        for key, value in spec.model_dump(mode="json").items()
        if key
        in {
            "scheme",
            "token_url",
            "client_id",
            "scope",
            "audience",
            "issuer",
            "subject",
            "login_url",
            "username",
            "authorize_url",
        }
    }
    if isinstance(spec, RefreshTokenSpec):
        seed = spec.refresh_token.get_secret_value().encode()
        identity["seed"] = hashlib.sha256(seed).hexdigest()[:16]
    blob = json.dumps(identity, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def secret_values(spec: AuthSpec) -> list[str]:
    """The secret strings of ``spec`` (to scrub them from text a server echoes back)."""
    values: list[str] = []
    for name in ("client_secret", "refresh_token", "private_key", "password", "token", "value"):
        secret = getattr(spec, name, None)
        if secret is not None:
            values.append(secret.get_secret_value())
    return values


def _basic(client_id: str, secret: str) -> str:
    # RFC 6749 2.3.1: form-encode both parts before base64.
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def endpoint_for(
    spec: AuthSpec, *, source: str, owner: str | None, client: httpx.AsyncClient, clock: Clock
) -> Endpoint:
    remedies = Remedies()
    if isinstance(spec, RefreshTokenSpec):
        remedies = Remedies(
            invalid_grant="the refresh token was rejected: obtain a new one and put it in the "
            "source's auth settings (refresh_token)",
            invalid_client="check client_id and client_secret",
        )
    elif isinstance(spec, AuthorizationCodeSpec):
        remedies = Remedies(
            invalid_grant=f"refresh token rejected: run `patchbay auth login {source}`",
        )
    elif isinstance(spec, JwtBearerSpec):
        remedies = Remedies(
            invalid_client="check issuer, key_id and private_key",
            invalid_grant="the assertion was rejected: check issuer, subject, audience and "
            "private_key",
        )
    elif isinstance(spec, SessionLoginSpec):
        remedies = Remedies(
            url_field="login_url",
            what="the login endpoint",
            rejected="check username and password",
            invalid_client="check username and password",
            invalid_grant="check username and password",
        )
    elif isinstance(spec, ClientCredentialsSpec):
        remedies = Remedies(
            invalid_client="check client_id, client_secret and auth_method",
            invalid_grant="check client_id, scope and audience",
        )
    return Endpoint(
        source=source,
        owner=owner,
        client=client,
        clock=clock,
        secrets=secret_values(spec),
        remedies=remedies,
    )


def _client_auth(
    data: dict[str, str], client_id: str, secret: str | None, method: str
) -> dict[str, str]:
    """Adds client authentication to ``data``; returns the headers to send."""
    if secret is not None and method == "client_secret_basic":
        return {"Authorization": _basic(client_id, secret)}
    data["client_id"] = client_id
    if secret is not None:
        data["client_secret"] = secret
    return {}


def _fetcher(
    spec: AuthSpec, *, source: str, owner: str | None, client: httpx.AsyncClient, clock: Clock
) -> Fetch:
    endpoint = endpoint_for(spec, source=source, owner=owner, client=client, clock=clock)

    if isinstance(spec, ClientCredentialsSpec):
        cc = spec

        async def client_credentials(_stored: Token | None) -> Token:
            data = {"grant_type": "client_credentials"}
            if cc.scope:
                data["scope"] = cc.scope
            if cc.audience:
                data["audience"] = cc.audience
            headers = _client_auth(
                data, cc.client_id, cc.client_secret.get_secret_value(), cc.auth_method
            )
            return await endpoint.post(cc.token_url, data=data, headers=headers)

        return client_credentials

    if isinstance(spec, RefreshTokenSpec | AuthorizationCodeSpec):
        rt = spec

        async def refresh(stored: Token | None) -> Token:
            current = stored.refresh_token if stored is not None else None
            if current is None and isinstance(rt, RefreshTokenSpec):
                current = rt.refresh_token.get_secret_value()
            if current is None:
                raise AuthError(
                    source,
                    f"no stored tokens for this source: run `patchbay auth login {source}`",
                    owner=owner,
                )
            data = {"grant_type": "refresh_token", "refresh_token": current}
            if rt.scope:
                data["scope"] = rt.scope
            secret = rt.client_secret.get_secret_value() if rt.client_secret else None
            headers = _client_auth(data, rt.client_id, secret, "client_secret_post")
            return await endpoint.post(rt.token_url, data=data, headers=headers)

        return refresh

    if isinstance(spec, JwtBearerSpec):
        jb = spec

        async def jwt_bearer(_stored: Token | None) -> Token:
            data = {
                "grant_type": JWT_BEARER_GRANT,
                "assertion": _assertion(jb, source, owner, clock),
            }
            if jb.scope:
                data["scope"] = jb.scope
            return await endpoint.post(jb.token_url, data=data)

        return jwt_bearer

    if isinstance(spec, SessionLoginSpec):
        sl = spec

        async def session_login(_stored: Token | None) -> Token:
            body = {"username": sl.username, "password": sl.password.get_secret_value()}
            return await endpoint.post(
                sl.login_url, json_body=body, token_path=sl.token_path, expires_in=sl.expires_in
            )

        return session_login

    raise TypeError(f"not a token scheme: {type(spec).__name__}")


def _assertion(spec: JwtBearerSpec, source: str, owner: str | None, clock: Clock) -> str:
    issued = int(clock())
    header: dict[str, Any] = {"alg": spec.algorithm, "typ": "JWT"}
    if spec.key_id:
        header["kid"] = spec.key_id
    claims = {
        "iss": spec.issuer,
        "sub": spec.subject,
        "aud": spec.audience,
        "iat": issued,
        "exp": issued + spec.assertion_lifetime,
        "jti": uuid.uuid4().hex,
    }
    try:
        signed = jwt.encode(header, claims, spec.private_key.get_secret_value())
    except (JoseError, ValueError, TypeError):
        raise AuthError(
            source,
            f"cannot sign the JWT assertion with private_key ({spec.algorithm}): check that "
            "private_key is a PEM private key matching algorithm",
            owner=owner,
        ) from None
    return signed.decode() if isinstance(signed, bytes) else str(signed)
