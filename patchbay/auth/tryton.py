"""The ``tryton_session`` scheme: Tryton's JSON-RPC login as a token of the token lifecycle.

Tryton logs in with a JSON-RPC call, ``common.db.login(username, {"password": …}, language)``,
posted to the database's endpoint (``/<db>/rpc/`` since 8.0, ``/<db>/`` before); it answers
``[user_id, session, …]`` and every later call sends ``Authorization: Session
base64(username:user_id:session)``. That header value is the token: ``TokenManager`` caches it
(in the token store, shared through Redis), one login serves every concurrent caller, and
``TokenAuth`` logs in again once and resends once when a call answers 401 (the session expired
or was ended server-side).

The login goes to the URL of the call being authenticated, so it opens a session on exactly the
database (and RPC path) the connector calls; one session per such endpoint, fingerprinted with
it, so a stored session is never sent to another server.

A refused password is tried once per process and never again: Tryton slows every failed login
down and locks the login name out after six failures within its session timeout (300 s by
default), which would lock the real user out too. The refusal is kept and raised again, without a
request, until the source's client is rebuilt (a config change or restart). A 429 (locked out
already), a failing server or an unreachable one is not kept: a later query may try once more.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import logging
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx
from redis.asyncio import Redis

from ._errors import AuthError
from ._spec import TrytonSessionSpec
from .schemes import TokenAuth, TokenPlacement
from .tokens import DEFAULT_SKEW, Clock, Fetch, Token, TokenManager, TokenStore

__all__ = ["TrytonSessionAuth"]

logger = logging.getLogger("patchbay.auth")

_LOGIN = "common.db.login"


class TrytonSessionAuth(httpx.Auth):
    """One Tryton session per JSON-RPC endpoint, each a ``TokenAuth`` over a ``TokenManager``."""

    requires_request_body = True  # the body is sent again after a 401

    def __init__(
        self,
        spec: TrytonSessionSpec,
        *,
        source: str,
        owner: str | None,
        store: TokenStore,
        client: httpx.AsyncClient,
        clock: Clock,
        redis: Redis | None = None,
        redis_prefix: str = "patchbay:auth:",
        skew: float = DEFAULT_SKEW,
    ) -> None:
        self._spec = spec
        self.source = source
        self.owner = owner
        self._store = store
        self._client = client
        self._clock = clock
        self._redis = redis
        self._redis_prefix = redis_prefix
        self._skew = skew
        self._sessions: dict[str, TokenAuth] = {}
        self._refused: AuthError | None = None  # the password was refused: never sent again
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return (
            f"TrytonSessionAuth(source={self.source!r}, username={self._spec.username!r}, "
            "password='***')"
        )

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise AuthError(
            self.source,
            "tryton_session works with httpx.AsyncClient only: build the source's client as an "
            "AsyncClient",
            owner=self.owner,
        )
        yield request  # pragma: no cover - makes this a generator

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        flow = self._session(_endpoint(request.url)).async_auth_flow(request)
        try:
            sent = await anext(flow)
            while True:
                response = yield sent
                try:
                    sent = await flow.asend(response)
                except StopAsyncIteration:
                    return
        finally:
            await flow.aclose()

    def _session(self, endpoint: str) -> TokenAuth:
        found = self._sessions.get(endpoint)
        if found is None:
            manager = TokenManager(
                source=self.source,
                key=self.source,
                fetch=self._login(endpoint),
                store=self._store,
                fingerprint=_fingerprint(self._spec, endpoint),
                owner=self.owner,
                redis=self._redis,
                redis_prefix=self._redis_prefix,
                clock=self._clock,
                skew=self._skew,
            )
            found = self._sessions[endpoint] = TokenAuth(manager, TokenPlacement(prefix="Session "))
        return found

    def _login(self, endpoint: str) -> Fetch:
        async def login(_stored: Token | None) -> Token:
            if self._refused is not None:
                raise self._refused.again()
            return await self._post_login(endpoint)

        return login

    async def _post_login(self, endpoint: str) -> Token:
        username = self._spec.username
        password = self._spec.password.get_secret_value()
        params = [username, {"password": password}, None]  # no language: the user's own
        body = json.dumps({"id": next(self._ids), "method": _LOGIN, "params": params})
        try:
            # The token client carries no auth; the login is a POST without an Idempotency-Key,
            # so the resilience layer never sends it twice.
            response = await self._client.post(
                endpoint, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise self._error(
                f"cannot reach Tryton to log in ({type(exc).__name__}): check the source's URL "
                "and that the server is up",
                retryable=True,
            ) from None
        status = response.status_code
        if status == 401:
            raise self._refusal(
                f"Tryton refused the login of user {username!r}: check username and password in "
                "the source's auth block. Not retried: Tryton locks a login name out after six "
                "failures within its session timeout (300 s by default)",
                status=status,
            )
        if status == 429:
            raise self._error(
                f"Tryton answered 429 to the login of user {username!r}: too many failed logins "
                "for this name; it accepts logins again once they age out (300 s by default)",
                status=status,
                retryable=True,
            )
        if status != 200:
            hint = {
                404: "no such database at that URL: check the source's url and database",
                405: "not Tryton's JSON-RPC endpoint: check the source's url, database and "
                "rpc_path",
            }.get(status, "check the source's url, database and rpc_path")
            reason = f"{status} {response.reason_phrase}".strip()
            raise self._error(
                f"the Tryton login answered {reason}: {hint}",
                status=status,
                retryable=status >= 500,
            )
        body = _json(response)
        if not isinstance(body, dict) or ("result" not in body and "error" not in body):
            kind = response.headers.get("content-type", "no content type").split(";")[0]
            raise self._error(
                f"the Tryton login answered {kind}, not a JSON-RPC answer: check the source's "
                "url, database and rpc_path",
                status=status,
            )
        session = _session_of(body)
        if isinstance(session, str):
            raise self._refusal(
                f"the login of user {username!r} was refused ({self._scrub(session)}): check "
                "username and password in the source's auth block",
                status=status,
            )
        user_id, key = session
        logger.info("source %s: logged in to Tryton as %s", self.source, username)
        header = base64.b64encode(f"{username}:{user_id}:{key}".encode()).decode()
        return Token(
            access_token=header,
            expires_at=self._clock() + self._spec.expires_in,
            token_type="Session",  # noqa: S106 - a token type, not a secret
        )

    def _refusal(self, message: str, *, status: int) -> AuthError:
        """The credentials were refused: kept, and raised again instead of another login."""
        self._refused = self._error(message, status=status)
        return self._refused

    def _scrub(self, text: str) -> str:
        return text.replace(self._spec.password.get_secret_value(), "***")[:300]

    def _error(
        self, message: str, *, status: int | None = None, retryable: bool = False
    ) -> AuthError:
        return AuthError(
            self.source, message, owner=self.owner, status_code=status, retryable=retryable
        )


def _endpoint(url: httpx.URL) -> str:
    """Where a call goes, without its query: the JSON-RPC endpoint the session is opened on."""
    return str(url.copy_with(query=None, fragment=None))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _session_of(body: dict[str, Any]) -> tuple[int, str] | str:
    """``(user_id, session)`` from a login answer, or what the answer was instead."""
    error = body.get("error")
    if error is not None:
        # ["LoginException", ["password", "Password for admin", "password"]]: more is asked for
        if isinstance(error, list) and error:
            return f"Tryton answered {error[0]}"[:200]
        return "Tryton answered an error"
    found = body.get("result")
    if (
        isinstance(found, list)
        and len(found) >= 2
        and type(found[0]) is int
        and isinstance(found[1], str)
        and found[1]
    ):
        return found[0], found[1]
    what = "no session" if found in (None, False) else f"a JSON {type(found).__name__}"
    return f"{what} instead of [user id, session]"


def _fingerprint(spec: TrytonSessionSpec, endpoint: str) -> str:
    """Whom a stored session belongs to: the user on that endpoint (no secret enters it)."""
    identity = {"scheme": spec.scheme, "username": spec.username, "endpoint": endpoint}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
