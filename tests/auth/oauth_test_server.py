"""A small, real OAuth2 authorization server + protected resources for the auth tests.

FastAPI app served by uvicorn on 127.0.0.1 (random port) in a thread. Access tokens are RS256
JWTs signed with a key generated per test session; the resource verifies signature, expiry and
revocation. Grants: client_credentials (basic and post), refresh_token with rotation,
jwt-bearer (RFC 7523, assertion verified with the client's public key), authorization_code
with PKCE S256. Also a session login, static api-key/basic/bearer resources, a resource that
always answers 401, and ``mode`` switches that make the token endpoint answer HTML or 500.
Counts every token request.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import socket
import threading
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from patchbay.auth._jose import JoseError, jwt

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def rsa_pem_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def _s(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(18)}"


class State:
    """Everything the server knows; tests read counts and flip switches here."""

    def __init__(self) -> None:
        self.signing_private, self.signing_public = rsa_pem_pair()
        self.jwt_client_private, self.jwt_client_public = rsa_pem_pair()
        self.base_url = ""
        self.svc_secret = _s("svc-secret")
        self.app_secret = _s("app-secret")
        self.api_key = _s("api-key")
        self.basic_password = _s("basic-pw")
        self.static_bearer = _s("static-bearer")
        self.session_password = _s("session-pw")
        self.reset()

    def reset(self) -> None:
        self.lock = threading.Lock()
        self.token_requests = 0
        self.grants: Counter[str] = Counter()
        self.client_auth: Counter[str] = Counter()
        self.hits: Counter[str] = Counter()
        self.mode = "ok"  # ok | html | 500
        self.token_delay = 0.0
        self.expires_in: int | None = 3600
        self.refresh_tokens: dict[str, str] = {}  # valid refresh token -> client_id
        self.codes: dict[str, dict[str, str]] = {}
        self.revoked: set[str] = set()
        self.issued: list[str] = []  # every access/refresh/session token handed out
        self.sessions: set[str] = set()
        self.jtis: list[str] = []

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def secrets(self) -> list[str]:
        """Every secret a test may handle: none may appear in logs, reprs or errors."""
        pem_body = self.jwt_client_private.splitlines()[5]
        fixed = [
            self.svc_secret,
            self.app_secret,
            self.api_key,
            self.basic_password,
            self.static_bearer,
            self.session_password,
            pem_body,
        ]
        return fixed + list(self.issued)

    def new_refresh_token(self, client_id: str) -> str:
        rt = _s("rt")
        with self.lock:
            self.refresh_tokens[rt] = client_id
            self.issued.append(rt)
        return rt

    def seed_refresh_token(self, client_id: str) -> str:
        """A refresh token obtained 'elsewhere' (the initial one of a refresh_token spec)."""
        return self.new_refresh_token(client_id)

    def access_token(self, sub: str) -> str:
        now = int(time.time())
        jti = uuid.uuid4().hex
        claims = {
            "iss": self.base_url,
            "sub": sub,
            "aud": "resource",
            "iat": now,
            "exp": now + (self.expires_in or 3600),
            "jti": jti,
        }
        token = jwt.encode({"alg": "RS256", "kid": "server"}, claims, self.signing_private)
        text = token.decode()
        with self.lock:
            self.issued.append(text)
            self.jtis.append(jti)
        return text

    def revoke_all(self) -> None:
        with self.lock:
            self.revoked.update(self.jtis)


def _token_answer(state: State, sub: str, *, refresh_for: str | None = None) -> JSONResponse:
    body: dict[str, Any] = {"access_token": state.access_token(sub), "token_type": "Bearer"}
    if state.expires_in is not None:
        body["expires_in"] = state.expires_in
    if refresh_for is not None:
        body["refresh_token"] = state.new_refresh_token(refresh_for)
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


def _oauth_error(error: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status)


def _bearer_ok(state: State, request: Request) -> bool:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        return False
    try:
        claims = jwt.decode(header[7:], state.signing_public)
        claims.validate(now=int(time.time()))
    except (JoseError, ValueError):
        return False
    return claims.get("aud") == "resource" and claims.get("jti") not in state.revoked


def create_app(state: State) -> FastAPI:
    app = FastAPI()
    clients = {"svc": lambda: state.svc_secret, "app": lambda: state.app_secret}

    @app.post("/token")
    async def token(request: Request) -> Response:
        with state.lock:
            state.token_requests += 1
        if state.token_delay:
            await asyncio.sleep(state.token_delay)
        if state.mode == "html":
            return HTMLResponse("<html><body><h1>502 Bad Gateway</h1></body></html>", 502)
        if state.mode == "500":
            return JSONResponse({"error": "server_error"}, status_code=500)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = form.get("grant_type", "")
        state.grants[grant] += 1
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("authorization", "")
        if header.startswith("Basic "):
            raw = base64.b64decode(header[6:]).decode()
            user, _, password = raw.partition(":")
            client_id, secret = unquote(user), unquote(password)
            state.client_auth["client_secret_basic"] += 1
        elif secret is not None:
            state.client_auth["client_secret_post"] += 1
        if secret is not None and (client_id not in clients or clients[client_id]() != secret):
            return _oauth_error("invalid_client", 401)

        if grant == "client_credentials":
            if secret is None:
                return _oauth_error("invalid_client", 401)
            return _token_answer(state, f"client:{client_id}")
        if grant == "refresh_token":
            rt = form.get("refresh_token", "")
            with state.lock:
                owner = state.refresh_tokens.pop(rt, None)  # rotation: the old one dies
            if owner is None or owner != client_id:
                return _oauth_error("invalid_grant")
            return _token_answer(state, f"user-of:{client_id}", refresh_for=client_id)
        if grant == JWT_GRANT:
            try:
                claims = jwt.decode(form.get("assertion", ""), state.jwt_client_public)
                claims.validate(now=int(time.time()))
            except (JoseError, ValueError):
                return _oauth_error("invalid_grant")
            if claims.get("iss") != "jwt-client" or claims.get("aud") != state.token_url:
                return _oauth_error("invalid_grant")
            return _token_answer(state, str(claims["sub"]))
        if grant == "authorization_code":
            with state.lock:
                code = state.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if (
                code is None
                or code["client_id"] != client_id
                or code["redirect_uri"] != form.get("redirect_uri")
                or code["challenge"] != challenge
            ):
                return _oauth_error("invalid_grant")
            return _token_answer(state, "user", refresh_for=str(client_id))
        return _oauth_error("unsupported_grant_type")

    @app.get("/authorize")
    async def authorize(request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") not in clients or q.get("response_type") != "code":
            return _oauth_error("unauthorized_client")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return _oauth_error("invalid_request")
        redirect_uri = q["redirect_uri"]
        if not redirect_uri.startswith("http://127.0.0.1:"):
            return _oauth_error("invalid_request")
        code = secrets.token_urlsafe(16)
        with state.lock:
            state.codes[code] = {
                "client_id": q["client_id"],
                "redirect_uri": redirect_uri,
                "challenge": q["code_challenge"],
            }
        target = f"{redirect_uri}?{urlencode({'code': code, 'state': q.get('state', '')})}"
        return RedirectResponse(target, status_code=302)

    @app.get("/resource")
    async def resource(request: Request) -> Response:
        state.hits["resource"] += 1
        if not _bearer_ok(state, request):
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({"ok": True})

    @app.get("/always401")
    async def always401(request: Request) -> Response:
        state.hits["always401"] += 1
        return JSONResponse({"error": "invalid_token"}, status_code=401)

    @app.post("/session/login")
    async def session_login(request: Request) -> Response:
        body = await request.json()
        with state.lock:
            state.token_requests += 1
        if body.get("username") != "ann" or body.get("password") != state.session_password:
            return JSONResponse({"error": "invalid_credentials"}, status_code=401)
        sid = _s("sid")
        with state.lock:
            state.sessions.add(sid)
            state.issued.append(sid)
        return JSONResponse({"data": {"session": sid}})

    @app.get("/session/resource")
    async def session_resource(request: Request) -> Response:
        state.hits["session"] += 1
        header = request.headers.get("x-session", "")
        sid = header.removeprefix("Token ") if header else request.cookies.get("sid", "")
        if sid not in state.sessions:
            return JSONResponse({"error": "no session"}, status_code=401)
        return JSONResponse({"ok": True, "via": "header" if header else "cookie"})

    @app.get("/static/{kind}")
    async def static(kind: str, request: Request) -> Response:
        state.hits[kind] += 1
        h = request.headers
        expected_basic = (
            "Basic " + base64.b64encode(f"bob:{state.basic_password}".encode()).decode()
        )
        ok = {
            "apikey-header": h.get("x-api-key") == state.api_key,
            "apikey-query": request.query_params.get("api_key") == state.api_key,
            "basic": h.get("authorization") == expected_basic,
            "bearer": h.get("authorization") == f"Bearer {state.static_bearer}",
        }.get(kind, False)
        return JSONResponse({"ok": ok}, status_code=200 if ok else 401)

    return app


class AuthServer:
    def __init__(self) -> None:
        self.state = State()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.state.base_url = self.url
        config = uvicorn.Config(
            create_app(self.state),
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            http="h11",
            limit_concurrency=2000,
            backlog=2048,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test authorization server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()
