"""Token lifecycle: cache with expiry, one shared refresh, persistence in a ``TokenStore``.

``TokenManager`` holds the current token of one source. A token is used until ``skew`` seconds
before it expires; then exactly one caller refreshes it:

- in a process, callers queue on an ``asyncio.Lock`` and re-check after acquiring it; everyone
  who waited for an attempt shares its outcome (the fresh token, or the same ``AuthError``), so a
  failing token endpoint is asked once per burst, not once per queued request;
- across processes, when a Redis client is given, the refresh runs under a Redis lock (a random
  token, a timeout so a crashed holder cannot block forever) and the fresh token is published in
  Redis, where the other processes read it instead of refreshing.

Every new token is written to the ``TokenStore`` (a rotated refresh token is part of the same
record, so it is persisted in one ``put``) before it is used: a restarted process continues from
there. Records carry a fingerprint of the identity they belong to (scheme, token URL, client,
initial refresh token), so changing the config makes stale records invisible.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError

from ._errors import AuthError

__all__ = [
    "DEFAULT_SKEW",
    "DEFAULT_TTL",
    "Clock",
    "JsonFileTokenStore",
    "MemoryTokenStore",
    "Token",
    "TokenManager",
    "TokenStore",
]

logger = logging.getLogger("patchbay.auth")

Clock = Callable[[], float]
"""Wall-clock seconds (like ``time.time``): expiry instants are shared across processes."""

DEFAULT_SKEW = 30.0
DEFAULT_TTL = 300.0
"""Lifetime assumed when the server does not say (``expires_in`` missing)."""


@dataclass(frozen=True)
class Token:
    """An access token and when it expires (clock seconds); secrets stay out of the repr."""

    access_token: str = field(repr=False)
    expires_at: float
    refresh_token: str | None = field(default=None, repr=False)
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret

    def record(self, fingerprint: str, *, with_refresh: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "access_token": self.access_token,
            "expires_at": self.expires_at,
            "token_type": self.token_type,
            "fingerprint": fingerprint,
        }
        if with_refresh and self.refresh_token is not None:
            data["refresh_token"] = self.refresh_token
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any]) -> Token:
        return cls(
            access_token=str(data.get("access_token") or ""),
            expires_at=float(data.get("expires_at") or 0.0),
            refresh_token=data.get("refresh_token"),
            token_type=str(data.get("token_type") or "Bearer"),
        )


@runtime_checkable
class TokenStore(Protocol):
    """Where tokens outlive the process. The encrypted credential store implements this too."""

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, value: dict[str, Any]) -> None: ...


class MemoryTokenStore:
    """A process-local store (the embedded default: nothing survives a restart)."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}

    async def get(self, key: str) -> dict[str, Any] | None:
        value = self._data.get(key)
        return dict(value) if value is not None else None

    async def put(self, key: str, value: dict[str, Any]) -> None:
        self._data[key] = dict(value)

    def __repr__(self) -> str:
        return f"MemoryTokenStore(keys={sorted(self._data)})"


class JsonFileTokenStore:
    """A plain JSON file (mode 0600), replaced atomically on every ``put``. Unencrypted: for
    tests and local tools, not for production secrets; last writer wins across processes."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        data = json.loads(text) if text.strip() else {}
        return data if isinstance(data, dict) else {}

    async def get(self, key: str) -> dict[str, Any] | None:
        value = self._read().get(key)
        return dict(value) if isinstance(value, dict) else None

    async def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock:
            data = self._read()
            data[key] = dict(value)
            fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self._path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    def __repr__(self) -> str:
        return f"JsonFileTokenStore({str(self._path)!r})"


Fetch = Callable[[Token | None], Awaitable[Token]]
"""Get a new token; receives the stored token (whose refresh token a refresh grant uses)."""


class TokenManager:
    """The current token of one source (``key``), refreshed once for all concurrent callers."""

    def __init__(
        self,
        *,
        source: str,
        key: str,
        fetch: Fetch,
        store: TokenStore,
        fingerprint: str,
        owner: str | None = None,
        redis: Redis | None = None,
        redis_prefix: str = "patchbay:auth:",
        clock: Clock | None = None,
        skew: float = DEFAULT_SKEW,
        lock_timeout: float = 30.0,
    ) -> None:
        self.source = source
        self.owner = owner
        self._key = key
        self._fetch = fetch
        self._store = store
        self._fingerprint = fingerprint
        self._redis = redis
        self._redis_key = f"{redis_prefix}{key}:{fingerprint}"
        self._clock: Clock = clock or time.time
        self._skew = skew
        self._lock_timeout = lock_timeout
        self._lock = asyncio.Lock()
        self._token: Token | None = None
        self._attempts = 0
        self._failure: AuthError | None = None

    def __repr__(self) -> str:
        return f"TokenManager(source={self.source!r}, key={self._key!r})"

    def fresh(self, token: Token | None) -> bool:
        return token is not None and self._clock() < token.expires_at - self._skew

    def _usable(self, token: Token | None, stale: Token | None) -> bool:
        if not self.fresh(token):
            return False
        assert token is not None
        return stale is None or token.access_token != stale.access_token

    async def token(self) -> Token:
        """The current token, refreshed first when it expires within ``skew`` seconds."""
        token = self._token
        if token is not None and self.fresh(token):
            return token
        return await self._renew(stale=None)

    async def refresh(self, stale: Token) -> Token:
        """Replace ``stale`` (the server rejected it), unless another caller already did."""
        return await self._renew(stale=stale)

    async def _renew(self, stale: Token | None) -> Token:
        attempts = self._attempts
        async with self._lock:
            if self._attempts != attempts:
                # An attempt ended while this caller waited for the lock: share its outcome.
                if self._failure is not None:
                    raise self._failure.again()
                if self._token is not None and (
                    stale is None or self._token.access_token != stale.access_token
                ):
                    return self._token
            if self._usable(self._token, stale):
                assert self._token is not None
                return self._token
            # Counted when it ends: whoever queued while it ran sees the count change.
            try:
                token = await self._renew_shared(stale)
            except AuthError as exc:
                self._failure = exc
                raise
            else:
                self._failure = None
                self._token = token
                return token
            finally:
                self._attempts += 1

    async def _renew_shared(self, stale: Token | None) -> Token:
        shared = await self._load_shared()
        if self._usable(shared, stale):
            assert shared is not None
            return shared
        if self._redis is None:
            return await self._fetch_and_save()
        lock = self._redis.lock(
            f"{self._redis_key}:lock",
            timeout=self._lock_timeout,
            sleep=0.01,
            blocking_timeout=self._lock_timeout,
        )
        try:
            acquired = await lock.acquire()
        except RedisError as exc:
            raise self._error(
                f"cannot take the token refresh lock in Redis ({type(exc).__name__}): "
                "check that Redis is up",
                retryable=True,
            ) from None
        if not acquired:
            raise self._error(
                f"another process held the token refresh lock for {self._lock_timeout:g} s: "
                "check the token endpoint, then try again",
                retryable=True,
            )
        try:
            shared = await self._load_shared()
            if self._usable(shared, stale):
                assert shared is not None
                return shared
            return await self._fetch_and_save()
        finally:
            try:
                await lock.release()
            except (LockError, RedisError):
                logger.warning(
                    "source %s: the token refresh lock expired before it was released", self.source
                )

    async def _load_shared(self) -> Token | None:
        if self._redis is not None:
            try:
                raw = await self._redis.get(f"{self._redis_key}:token")
            except RedisError as exc:
                raise self._error(
                    f"cannot read the shared token from Redis ({type(exc).__name__}): "
                    "check that Redis is up",
                    retryable=True,
                ) from None
            if raw:
                token = Token.from_record(json.loads(raw))
                if self.fresh(token):
                    return token
        return await self._stored()

    async def _stored(self) -> Token | None:
        record = await self._store.get(self._key)
        if record is None or record.get("fingerprint") != self._fingerprint:
            return None
        return Token.from_record(record)

    async def _fetch_and_save(self) -> Token:
        previous = await self._stored()
        logger.debug("source %s: requesting a new access token", self.source)
        token = await self._fetch(previous)
        if token.refresh_token is None and previous is not None:
            # The server did not rotate the refresh token: keep using the one we have.
            token = replace(token, refresh_token=previous.refresh_token)
        try:
            await self._store.put(self._key, token.record(self._fingerprint))
        except Exception as exc:
            raise self._error(
                f"could not save the new token in the token store ({type(exc).__name__}): "
                "check the store; a rotated refresh token may be lost and need a new login",
            ) from None
        if self._redis is not None:
            ttl_ms = int((token.expires_at - self._clock()) * 1000)
            if ttl_ms > 0:
                try:
                    await self._redis.set(
                        f"{self._redis_key}:token",
                        json.dumps(token.record(self._fingerprint, with_refresh=False)),
                        px=ttl_ms,
                    )
                except RedisError:
                    logger.warning(
                        "source %s: could not publish the new token in Redis", self.source
                    )
        logger.debug(
            "source %s: new access token valid for %.0f s",
            self.source,
            token.expires_at - self._clock(),
        )
        return token

    def _error(self, message: str, *, retryable: bool = False) -> AuthError:
        return AuthError(self.source, message, owner=self.owner, retryable=retryable)
