"""Calls to token and login endpoints, and the one place their answers are classified.

Every failure becomes an ``AuthError`` whose message says what answered, and what to check or
run; nothing from the request (secrets) is ever put into it, and text the server sends back is
scrubbed of the configured secrets before it is quoted.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ._errors import AuthError
from .tokens import DEFAULT_TTL, Clock, Token

__all__ = ["Endpoint", "Remedies"]

logger = logging.getLogger("patchbay.auth")


@dataclass(frozen=True)
class Remedies:
    """What to tell the user for each way the endpoint can refuse."""

    url_field: str = "token_url"
    invalid_client: str = "check client_id and client_secret"
    invalid_grant: str = "check the source's auth settings"
    invalid_scope: str = "check scope"
    rejected: str = "check the credentials"
    what: str = "the token endpoint"


class Endpoint:
    """Posts to one endpoint through the caller's client and turns the answer into a Token."""

    def __init__(
        self,
        *,
        source: str,
        owner: str | None,
        client: httpx.AsyncClient,
        clock: Clock,
        secrets: Iterable[str],
        remedies: Remedies,
        default_ttl: float = DEFAULT_TTL,
    ) -> None:
        self._source = source
        self._owner = owner
        self._client = client
        self._clock = clock
        self._secrets = tuple(s for s in secrets if s)
        self._remedies = remedies
        self._default_ttl = default_ttl

    async def post(
        self,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        token_path: str = "access_token",  # noqa: S107 - a JSON path, not a secret
        expires_in: float | None = None,
    ) -> Token:
        r = self._remedies
        try:
            response = await self._client.post(url, data=data, json=json_body, headers=headers)
        except httpx.HTTPError as exc:
            raise self._error(
                f"cannot reach {r.what} ({type(exc).__name__}): check {r.url_field} "
                "and that the server is up",
                retryable=True,
            ) from None
        body = self._json(response)
        status = response.status_code
        if status >= 500:
            code = f", {body['error']}" if isinstance(body.get("error"), str) else ""
            raise self._error(
                f"{r.what} failed (status {status}{code}): try again later; if it persists, "
                "tell the source's owner",
                status=status,
                retryable=True,
            )
        if status >= 400:
            raise self._refusal(status, body)
        token = _dig(body, token_path)
        if not isinstance(token, str) or not token:
            raise self._error(
                f"{r.what} answered without {token_path!r} in its JSON: check {r.url_field}",
                status=status,
            )
        lifetime = body.get("expires_in")
        try:
            seconds = float(lifetime) if lifetime is not None else None
        except (TypeError, ValueError):
            seconds = None
        if seconds is None:
            seconds = expires_in if expires_in is not None else self._default_ttl
        refresh = body.get("refresh_token")
        return Token(
            access_token=token,
            expires_at=self._clock() + seconds,
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
            token_type=str(body.get("token_type") or "Bearer"),
        )

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        r = self._remedies
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            body = response.json() if "json" in ctype else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            kind = "HTML" if "html" in ctype else (ctype or "a body without content type")
            raise self._error(
                f"{r.what} answered {kind} (status {response.status_code}), not JSON: "
                f"check {r.url_field}",
                status=response.status_code,
                retryable=response.status_code >= 500,
            )
        return body

    def _refusal(self, status: int, body: dict[str, Any]) -> AuthError:
        r = self._remedies
        error = body.get("error")
        described = self._scrub(str(body.get("error_description") or ""))[:200]
        detail = f"{error}: {described}" if error and described else str(error or described)
        advice = {
            "invalid_client": r.invalid_client,
            "unauthorized_client": r.invalid_client,
            "invalid_grant": r.invalid_grant,
            "invalid_scope": r.invalid_scope,
        }.get(error if isinstance(error, str) else "", r.rejected)
        shown = f" ({detail})" if detail else ""
        return self._error(
            f"{r.what} refused the request with status {status}{shown}: {advice}", status=status
        )

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _error(
        self, message: str, *, status: int | None = None, retryable: bool = False
    ) -> AuthError:
        logger.debug("source %s: %s", self._source, message)
        return AuthError(
            self._source, message, owner=self._owner, status_code=status, retryable=retryable
        )


def _dig(body: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body
