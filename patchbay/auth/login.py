"""The one-time interactive login of ``oauth2_authorization_code`` sources (PKCE, S256).

``login`` listens on 127.0.0.1 for the redirect, hands the authorize URL (with ``state`` and
``code_challenge``) to ``open_browser``, waits for the code, exchanges it together with the
``code_verifier`` and stores the tokens where ``build_auth`` finds them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx

from ._endpoint import Endpoint, Remedies
from ._errors import AuthError
from ._spec import AuthorizationCodeSpec
from .schemes import fingerprint, secret_values
from .tokens import Clock, TokenStore

__all__ = ["login", "pkce_pair"]

logger = logging.getLogger("patchbay.auth")

CALLBACK_PATH = "/callback"

_PAGE = (
    "<!doctype html><title>patchbay</title><p>{message}</p>"
    "<p>You can close this window and return to the terminal.</p>"
)


def pkce_pair() -> tuple[str, str]:
    """A fresh ``(code_verifier, code_challenge)`` for S256 (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def login(
    spec: AuthorizationCodeSpec,
    *,
    source: str,
    store: TokenStore,
    token_client: httpx.AsyncClient,
    open_browser: Callable[[str], None],
    owner: str | None = None,
    timeout: float = 300.0,
    clock: Clock | None = None,
) -> None:
    """Run the authorization code flow once and store the tokens for ``source``.

    ``open_browser`` runs in a worker thread, so it may block (``webbrowser.open`` does not;
    a test driving the redirect with a blocking HTTP client does).
    """
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(32)
    loop = asyncio.get_running_loop()
    arrived: asyncio.Future[str] = loop.create_future()

    def error(message: str) -> AuthError:
        return AuthError(source, message, owner=owner)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            target = head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")
            parts = urlsplit(target)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            status, message = "200 OK", "Signed in."
            if parts.path != CALLBACK_PATH:
                status, message = "404 Not Found", "Not the login callback."
            elif not secrets.compare_digest(query.get("state", ""), state):
                status, message = "400 Bad Request", "The state does not match this login."
            elif "error" in query:
                status, message = "400 Bad Request", "The sign-in was refused."
                if not arrived.done():
                    arrived.set_exception(
                        error(
                            f"the authorization server refused the sign-in ({query['error']}): "
                            f"check client_id and scope, then run `patchbay auth login {source}`"
                        )
                    )
            elif "code" not in query:
                status, message = "400 Bad Request", "No authorization code."
            elif not arrived.done():
                arrived.set_result(query["code"])
            body = _PAGE.format(message=message).encode()
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (
            OSError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            TimeoutError,
            IndexError,
        ):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", spec.redirect_port or 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        redirect_uri = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
        params = {
            "response_type": "code",
            "client_id": spec.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if spec.scope:
            params["scope"] = spec.scope
        url = str(httpx.URL(spec.authorize_url).copy_merge_params(params))
        logger.info("source %s: waiting for the sign-in on %s", source, redirect_uri)
        browser = asyncio.ensure_future(asyncio.to_thread(open_browser, url))

        def browser_done(task: asyncio.Future[None]) -> None:
            if not task.cancelled() and task.exception() is not None and not arrived.done():
                failure = task.exception()
                arrived.set_exception(
                    error(
                        f"open_browser failed ({type(failure).__name__}): open the authorize "
                        f"URL by hand, or run `patchbay auth login {source}` again"
                    )
                )

        browser.add_done_callback(browser_done)
        try:
            code = await asyncio.wait_for(arrived, timeout)
        except TimeoutError:
            raise error(
                f"no authorization code arrived within {timeout:g} s: run "
                f"`patchbay auth login {source}` again and finish the sign-in in the browser"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(browser, 5)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
        "client_id": spec.client_id,
    }
    if spec.client_secret is not None:
        data["client_secret"] = spec.client_secret.get_secret_value()
    endpoint = Endpoint(
        source=source,
        owner=owner,
        client=token_client,
        clock=clock or time.time,
        secrets=secret_values(spec),
        remedies=Remedies(
            invalid_grant=f"the authorization code was rejected: run `patchbay auth login "
            f"{source}` again",
        ),
    )
    token = await endpoint.post(spec.token_url, data=data)
    if token.refresh_token is None:
        logger.warning(
            "source %s: the server gave no refresh token; the login lasts until the access "
            "token expires",
            source,
        )
    await store.put(source, token.record(fingerprint(spec)))
    logger.info("source %s: signed in; tokens stored", source)
