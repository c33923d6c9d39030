"""Config models of the Tryton connector: the source's ``settings:`` and an entity's ``from:``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Origin", "TrytonSettings"]

_MODEL_NAME = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$"


def _domain(value: list[Any], what: str) -> list[Any]:
    """A Tryton domain is a list of clauses ``[field, operator, value]``, nested lists, or the
    words ``AND`` / ``OR`` first; a bare clause is refused (Tryton would read it loosely)."""
    if value and isinstance(value[0], str) and value[0] not in ("AND", "OR"):
        raise ValueError(
            f"{what} must be a list of clauses, e.g. [[\"type\", \"=\", \"out\"]], not one clause"
        )
    for item in value:
        if not isinstance(item, list | str):
            raise ValueError(f"{what}: {item!r} is not a clause (a [field, operator, value] list)")
    return value


class TrytonSettings(BaseModel):
    """How to reach one Tryton database over JSON-RPC. As whom is the source's ``auth:`` block
    (``scheme: tryton_session``), applied by the Hub's client.

    The user's preferences (company, language) become the context of every call; ``context``
    adds to it.
    """

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://[^/?#]+/?$")  # the server root, no path
    database: str = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    # Tryton 8.0+: POST /<db>/rpc/; before 8.0: "/{database}/".
    rpc_path: str = "/{database}/rpc/"
    # The preset's parties: which are companies and which contacts (Tryton has no such flag;
    # categories usually carry it). Empty: every party is both.
    company_domain: list[Any] = Field(default_factory=list)
    contact_domain: list[Any] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _credentials_moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and {"username", "password"} & data.keys():
            raise ValueError(
                "username and password are no longer settings: move them to the source's auth "
                "block, auth: {scheme: tryton_session, username: …, password: \"env:…\"}"
            )
        return data

    @field_validator("company_domain", "contact_domain")
    @classmethod
    def _domains(cls, value: list[Any]) -> list[Any]:
        return _domain(value, "the domain")

    @property
    def rpc_url(self) -> str:
        return self.url.rstrip("/") + self.rpc_path.format(database=self.database)


class Origin(BaseModel):
    """An entity's ``from:`` block: a model, a fixed domain, whether inactive records count."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(pattern=_MODEL_NAME)
    domain: list[Any] = Field(default_factory=list)
    active_test: bool = True  # false: inactive records (active = false) are read too
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: list[Any]) -> list[Any]:
        return _domain(value, "domain")
