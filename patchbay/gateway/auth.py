"""Who is calling: an API key or a JWT, mapped to exactly one consumer.

``Authorization: Bearer <credential>`` carries either an API key (``pb_<id>_<secret>``, see
:mod:`patchbay.gateway.keys`) or a JWT signed by a configured issuer. A JWT is checked against the
issuer's JWKS (signature with an asymmetric algorithm only, ``iss``, ``aud``, ``exp``); one claim
(``sub`` by default) maps to a consumer through an explicit table, so no token can name a consumer
it was not given. Scopes only narrow: a key or token with scopes ``read:contact read:ticket``
reads those entities of its consumer's policy and nothing else (``read:*`` every entity the policy
allows, ``metrics:read`` the metrics endpoint); one without scopes has the whole policy.

:func:`authenticate` is what every front door mounted on the gateway reuses (the REST routes, and
the MCP endpoint) to turn a request into a :class:`Principal`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from authlib.jose import JsonWebKey, JsonWebToken  # type: ignore[import-untyped]
from authlib.jose.errors import JoseError  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import HTTPConnection

import patchbay.auth._jose  # noqa: F401  (imports authlib.jose once, its warning silenced)
from patchbay.gateway.problems import Unauthenticated

if TYPE_CHECKING:
    from patchbay.gateway.keys import ApiKeys

__all__ = ["JwtSettings", "JwtVerifier", "Principal", "authenticate"]

# Asymmetric only: a JWKS holds public keys, and an HMAC "signed" with a public key proves nothing.
_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
_INVALID = "the credential is not valid (unknown, revoked, expired or wrongly signed)"


@dataclass(frozen=True)
class Principal:
    """The caller: its consumer, the scopes it narrowed itself to (None: no narrowing), and the
    API key id it used (None for a JWT; ``subject`` is then the token's mapped claim)."""

    consumer: str
    scopes: frozenset[str] | None = None
    key_id: str | None = None
    subject: str | None = None

    def may_read(self, entity: str) -> bool:
        if self.scopes is None:
            return True
        return f"read:{entity}" in self.scopes or "read:*" in self.scopes

    @property
    def may_read_metrics(self) -> bool:
        return self.scopes is None or "metrics:read" in self.scopes


class JwtSettings(BaseModel):
    """How JWTs are verified. ``jwks`` is an https/http URL or a file path of a JWKS."""

    model_config = ConfigDict(extra="forbid")

    jwks: str
    issuer: str
    audience: str
    claim: str = "sub"
    # claim value -> consumer. Only listed values are accepted.
    consumers: dict[str, str] = Field(default_factory=dict)
    leeway: int = Field(default=30, ge=0, le=300)
    jwks_ttl: int = Field(default=300, ge=10)


class JwtVerifier:
    """Verifies JWTs against a JWKS fetched on first use and again after ``jwks_ttl`` or when a
    token names a key id the cached set does not hold (at most every 30 s, so junk tokens cannot
    make the gateway hammer the issuer)."""

    def __init__(self, settings: JwtSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._jwt = JsonWebToken(_ALGORITHMS)
        self._keys: Any = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _key_set(self, *, refresh: bool = False) -> Any:
        now = self._clock()
        stale = now - self._fetched_at > self.settings.jwks_ttl
        if self._keys is not None and not stale and not (refresh and now - self._fetched_at > 30):
            return self._keys
        async with self._lock:
            source = self.settings.jwks
            if source.startswith(("https://", "http://")):
                async with httpx.AsyncClient(timeout=10) as client:
                    response = await client.get(source)
                    response.raise_for_status()
                    data = response.json()
            else:
                data = json.loads(await asyncio.to_thread(Path(source).read_text))
            self._keys = JsonWebKey.import_key_set(data)
            self._fetched_at = self._clock()
            return self._keys

    async def verify(self, token: str) -> Principal:
        settings = self.settings
        try:
            keys = await self._key_set()
            try:
                claims = self._jwt.decode(token, keys, claims_options=self._options())
            except ValueError:  # authlib: no key in the set for the token's kid
                claims = self._jwt.decode(
                    token, await self._key_set(refresh=True), claims_options=self._options()
                )
            claims.validate(now=int(self._clock()), leeway=settings.leeway)
        except (JoseError, ValueError, KeyError, httpx.HTTPError):
            raise Unauthenticated(_INVALID) from None
        subject = claims.get(settings.claim)
        consumer = settings.consumers.get(subject) if isinstance(subject, str) else None
        if consumer is None:
            raise Unauthenticated(f"the token's {settings.claim} is not mapped to a consumer")
        return Principal(consumer, _scopes(claims), subject=subject)

    def _options(self) -> dict[str, Any]:
        s = self.settings
        return {
            "iss": {"essential": True, "value": s.issuer},
            "aud": {"essential": True, "value": s.audience},
            "exp": {"essential": True},
        }


def _scopes(claims: Mapping[str, Any]) -> frozenset[str] | None:
    scope = claims.get("scope", claims.get("scp"))
    if scope is None:
        return None
    if isinstance(scope, str):
        return frozenset(scope.split())
    if isinstance(scope, list):
        return frozenset(str(s) for s in scope)
    return frozenset()


def credential(connection: HTTPConnection) -> str:
    """The bearer credential of a request (or ``X-API-Key``); Unauthenticated when absent."""
    header = connection.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        raise Unauthenticated("use 'Authorization: Bearer <API key or JWT>'")
    key = connection.headers.get("x-api-key")
    if key:
        return key.strip()
    raise Unauthenticated("no credentials: send 'Authorization: Bearer <API key or JWT>'")


async def authenticate(connection: HTTPConnection) -> Principal:
    """The caller of a request to a gateway app (made by ``create_app``).

    Raises Unauthenticated (401) for missing, malformed, unknown, revoked, expired or wrongly
    signed credentials; the consumer's policy is not checked here (the Hub does that).
    """
    # Set by the gateway's middleware for every request, also those of a mounted sub-app.
    gateway = connection.scope.get("state", {}).get("patchbay_gateway")
    if gateway is None:
        gateway = connection.app.state.gateway
    token = credential(connection)
    if token.startswith("pb_"):
        keys: ApiKeys = gateway.keys
        # A key confirmed live within the last second needs no database read (see keys.py).
        found = keys.recently_verified(token) or await asyncio.to_thread(keys.verify, token)
        if found is None:
            raise Unauthenticated(_INVALID)
        return Principal(found.consumer, found.scopes, key_id=found.id)
    verifier: JwtVerifier | None = gateway.jwt
    if verifier is None:
        raise Unauthenticated(_INVALID)
    return await verifier.verify(token)
