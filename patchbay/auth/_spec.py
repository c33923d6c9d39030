"""Config models of the auth schemes: one pydantic model per ``scheme``, joined as ``AuthSpec``.

Secrets are ``SecretStr`` so they never show in reprs, validation errors or logs; in YAML they are
given by reference (``env:``, ``file:``, ``store:``) and resolved before these models are built.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter, model_validator

__all__ = [
    "ApiKeySpec",
    "AuthSpec",
    "AuthorizationCodeSpec",
    "BasicSpec",
    "BearerSpec",
    "ClientCredentialsSpec",
    "JwtBearerSpec",
    "RefreshTokenSpec",
    "SessionLoginSpec",
    "TrytonSessionSpec",
    "parse_auth_spec",
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiKeySpec(_Spec):
    """A static key sent in a header or a query parameter (``in`` in YAML)."""

    scheme: Literal["api_key"] = "api_key"
    name: str = Field(min_length=1)
    value: SecretStr
    in_: Literal["header", "query"] = Field(default="header", alias="in")


class BasicSpec(_Spec):
    scheme: Literal["basic"] = "basic"
    username: str
    password: SecretStr


class BearerSpec(_Spec):
    """A static bearer token (one that never expires or is rotated by hand)."""

    scheme: Literal["bearer"] = "bearer"
    token: SecretStr


class ClientCredentialsSpec(_Spec):
    scheme: Literal["oauth2_client_credentials"] = "oauth2_client_credentials"
    token_url: str
    client_id: str
    client_secret: SecretStr
    scope: str | None = None
    auth_method: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    audience: str | None = None


class RefreshTokenSpec(_Spec):
    """A refresh token obtained elsewhere; rotated tokens are kept in the TokenStore.

    ``refresh_token`` is only the initial one: once the server rotates it, the stored one is
    used. Putting a different ``refresh_token`` here makes patchbay start over from it.
    """

    scheme: Literal["oauth2_refresh_token"] = "oauth2_refresh_token"
    token_url: str
    client_id: str
    client_secret: SecretStr | None = None
    refresh_token: SecretStr
    scope: str | None = None


class AuthorizationCodeSpec(_Spec):
    """Authorization code + PKCE (S256): one interactive ``login``, then like refresh_token."""

    scheme: Literal["oauth2_authorization_code"] = "oauth2_authorization_code"
    authorize_url: str
    token_url: str
    client_id: str
    client_secret: SecretStr | None = None
    scope: str | None = None
    redirect_port: int | None = Field(default=None, ge=1, le=65535)


class JwtBearerSpec(_Spec):
    """RFC 7523: a signed JWT assertion exchanged for an access token."""

    scheme: Literal["jwt_bearer"] = "jwt_bearer"
    token_url: str
    issuer: str
    subject: str
    audience: str
    private_key: SecretStr  # PEM
    key_id: str | None = None
    algorithm: Literal["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"] = "RS256"
    scope: str | None = None
    assertion_lifetime: int = Field(default=300, ge=10, le=3600)


class SessionLoginSpec(_Spec):
    """POST username and password (JSON) to ``login_url``; send the token found at ``token_path``.

    The token goes in ``header`` (default ``Authorization``) after ``prefix``, or in the cookie
    ``cookie`` when that is set. ``expires_in`` is used when the answer has no ``expires_in``.
    """

    scheme: Literal["session_login"] = "session_login"
    login_url: str
    username: str
    password: SecretStr
    token_path: str = "token"  # noqa: S105 - a JSON path, not a secret
    header: str | None = None
    prefix: str = "Bearer "
    cookie: str | None = None
    expires_in: int = Field(default=3600, gt=0)

    @model_validator(mode="after")
    def _one_place(self) -> SessionLoginSpec:
        if self.header is not None and self.cookie is not None:
            raise ValueError("give either header or cookie, not both")
        return self


class TrytonSessionSpec(_Spec):
    """Tryton's JSON-RPC login (``common.db.login``); calls then carry ``Authorization: Session
    base64(username:user_id:session)``. The login goes to the URL of the call it authenticates
    (the database's JSON-RPC endpoint), so the database is the one the source's URL names.
    ``expires_in``: seconds until a new login (Tryton does not say; a 401 logs in sooner). At
    least a minute: a session is renewed 30 s before it ends."""

    scheme: Literal["tryton_session"] = "tryton_session"
    username: str = Field(min_length=1)
    password: SecretStr
    expires_in: int = Field(default=3600, ge=60)


AuthSpec = Annotated[
    ApiKeySpec
    | BasicSpec
    | BearerSpec
    | ClientCredentialsSpec
    | RefreshTokenSpec
    | AuthorizationCodeSpec
    | JwtBearerSpec
    | SessionLoginSpec
    | TrytonSessionSpec,
    Field(discriminator="scheme"),
]

_ADAPTER: TypeAdapter[AuthSpec] = TypeAdapter(AuthSpec)


def parse_auth_spec(data: Any) -> AuthSpec:
    """Validate a mapping (e.g. a source's ``auth:`` block) into the matching spec model."""
    return _ADAPTER.validate_python(data)
