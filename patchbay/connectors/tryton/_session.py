"""The Tryton session: ``common.db.login`` once, then ``Authorization: Session …`` on every call.

The login answers ``[user_id, session_key, …]``; calls then send
``Session base64(login:user_id:session_key)``. A session that expired or was killed
server-side answers 401: the flow logs in again once (one login shared by every caller that
saw the same stale session) and sends the request once more; a second 401 is returned as is.

A refused password is never tried again by this object: Tryton slows every failed login down
and locks the login name out after six failures, so a loop would lock the real user out too.
The failure is kept and raised again, without a request, until the connector is rebuilt (a
config change or restart). A rate-limited (429) or failing login is not kept: a later query
may try once more.

This is not ``patchbay.auth``'s ``session_login`` scheme: that one POSTs
``{"username", "password"}`` and sends the token it finds; Tryton wants a JSON-RPC call and a
header made of three parts.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncGenerator, Generator
from typing import Any

import httpx

from patchbay.auth import AuthError
from patchbay.core.errors import SourceError

from ._rpc import Rpc

__all__ = ["TrytonSession"]

log = logging.getLogger("patchbay.source")


class _Session(httpx.Auth):
    """One given session header, and nothing else (no new login on a 401)."""

    def __init__(self, header: str) -> None:
        self._header = header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "_Session('***')"


class TrytonSession(httpx.Auth):
    requires_request_body = True  # sent again after a 401

    def __init__(self, username: str, password: str, *, source: str,
                 owner: str | None) -> None:
        self.username = username
        self._password = password
        self.source = source
        self.owner = owner
        self.rpc: Rpc | None = None  # set by the connector (the RPC uses this auth in turn)
        self._header: str | None = None
        self._failed: AuthError | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TrytonSession(username={self.username!r}, password='***')"

    async def header(self) -> str:
        return self._header if self._header is not None else await self.renew(None)

    async def renew(self, stale: str | None) -> str:
        """A session other than ``stale``: the one another caller just opened, or a new one."""
        async with self._lock:
            if self._failed is not None:
                raise self._failed.again()
            if self._header is not None and self._header != stale:
                return self._header
            self._header = None
            try:
                self._header = await self._login()
            except AuthError as exc:
                if not exc.retryable:
                    self._failed = exc
                raise
            return self._header

    async def logout(self) -> None:
        """End the session on the server, if there is one; never logs in to do so."""
        header, self._header = self._header, None
        if header is not None and self.rpc is not None:
            await self.rpc.post("common.db.logout", [], auth=_Session(header))

    async def _login(self) -> str:
        assert self.rpc is not None
        params = [self.username, {"password": self._password}, None]
        response = await self.rpc.post("common.db.login", params, auth=httpx.Auth())
        status = response.status_code
        if status == 401:
            raise self._error(
                f"Tryton refused the login of user {self.username!r}: check username and "
                "password. Not retried: Tryton locks a login out after six failures within "
                "its session timeout (300 s by default)", status)
        if status == 429:
            raise self._error(
                f"Tryton answered 429 to the login of user {self.username!r}: too many failed "
                "logins for this name; it accepts logins again once they age out (300 s by "
                "default)", status, retryable=True)
        if status != 200:
            raise self._error(
                f"the login answered {status} {response.reason_phrase}: check settings.url, "
                "database and rpc_path", status, retryable=status >= 500)
        try:
            found: Any = self.rpc.result("common.db.login", response)
        except SourceError as exc:  # an error body (LoginException, ...): say what it said
            raise self._error(f"the login failed: {exc.detail}", status) from None
        if not (isinstance(found, list) and len(found) >= 2 and isinstance(found[0], int)
                and isinstance(found[1], str)):
            what = "no answer" if found is None else f"a JSON {type(found).__name__}"
            raise self._error(
                f"the login of user {self.username!r} was refused ({what} instead of "
                "[user id, session]): check username and password", status)
        log.info("source %s: logged in to Tryton as %s", self.source, self.username)
        token = f"{self.username}:{found[0]}:{found[1]}".encode()
        return "Session " + base64.b64encode(token).decode()

    def _error(self, message: str, status: int, *, retryable: bool = False) -> AuthError:
        return AuthError(self.source, message, owner=self.owner, status_code=status,
                         retryable=retryable)

    def sync_auth_flow(self, request: httpx.Request
                       ) -> Generator[httpx.Request, httpx.Response, None]:
        raise AuthError(self.source, "the Tryton session works with httpx.AsyncClient only",
                        owner=self.owner)
        yield request  # pragma: no cover - makes this a generator

    async def async_auth_flow(self, request: httpx.Request
                              ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        header = await self.header()
        request.headers["Authorization"] = header
        response = yield request
        if response.status_code != 401:
            return
        log.info("source %s: Tryton answered 401 (the session expired or was ended); "
                 "logging in again once", self.source)
        request.headers["Authorization"] = await self.renew(header)
        yield request

