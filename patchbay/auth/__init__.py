"""Auth for HTTP sources: schemes as ``httpx.Auth`` flows, the token lifecycle, the login.

``build_auth(spec, ...)`` turns a source's ``AuthSpec`` into the ``httpx.Auth`` the Hub wires
into that source's ``httpx.AsyncClient``. Tokens live in a ``TokenStore`` (the encrypted
credential store in production; ``MemoryTokenStore`` / ``JsonFileTokenStore`` here), one
refresh is shared by all callers (and processes, with Redis), and every failure is an
``AuthError`` that names the source and what to do.
"""

from __future__ import annotations

from ._errors import AuthError
from ._redact import QueryRedactor, install_redactor
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
    parse_auth_spec,
)
from .login import login, pkce_pair
from .schemes import ApiKeyAuth, BasicAuth, BearerAuth, TokenAuth, TokenPlacement, build_auth
from .tokens import (
    DEFAULT_SKEW,
    DEFAULT_TTL,
    JsonFileTokenStore,
    MemoryTokenStore,
    Token,
    TokenManager,
    TokenStore,
)

__all__ = [
    "DEFAULT_SKEW",
    "DEFAULT_TTL",
    "ApiKeyAuth",
    "ApiKeySpec",
    "AuthError",
    "AuthSpec",
    "AuthorizationCodeSpec",
    "BasicAuth",
    "BasicSpec",
    "BearerAuth",
    "BearerSpec",
    "ClientCredentialsSpec",
    "JsonFileTokenStore",
    "JwtBearerSpec",
    "MemoryTokenStore",
    "QueryRedactor",
    "RefreshTokenSpec",
    "SessionLoginSpec",
    "Token",
    "TokenAuth",
    "TokenManager",
    "TokenPlacement",
    "TokenStore",
    "TrytonSessionSpec",
    "build_auth",
    "install_redactor",
    "login",
    "parse_auth_spec",
    "pkce_pair",
]
