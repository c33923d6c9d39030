"""Config of the ``salesforce`` connector: its ``settings:`` block and its ``from:`` blocks."""

from __future__ import annotations

import re
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from patchbay.connectors._http import BaseUrl

from ._soql import is_name

__all__ = ["LinesOrigin", "Origin", "SalesforceSettings"]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class SalesforceSettings(BaseModel):
    """``instance_url`` is the org's My Domain URL (``https://acme.my.salesforce.com``): the
    token response names it too, but the auth layer keeps only the token, so it is configured.
    """

    model_config = ConfigDict(extra="forbid")

    instance_url: BaseUrl
    api_version: str = "62.0"
    # Amounts carry CurrencyIsoCode only in orgs with multiple currencies enabled; single-
    # currency orgs take the source's ``defaults.currency``.
    multi_currency: bool = False
    page_cap: int = Field(default=10_000, ge=1)  # query pages per read; reaching it is an error

    @field_validator("instance_url")
    @classmethod
    def _instance_url(cls, value: str) -> str:
        url = httpx.URL(value)  # a base URL already: http(s), a host, no query
        if url.scheme == "http" and url.host not in _LOOPBACK:
            raise ValueError("instance_url must use https (plain http only on 127.0.0.1)")
        if url.path not in ("", "/"):
            raise ValueError("give the org's URL only, without a path: "
                             "https://acme.my.salesforce.com")
        return str(url.copy_with(path="")).rstrip("/")

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        value = value.removeprefix("v")
        if not re.fullmatch(r"\d{2,3}\.\d", value):
            raise ValueError("an API version such as 62.0")
        return value


def _api_name(value: str) -> str:
    if not is_name(value) or "." in value:
        raise ValueError(f"{value!r} is not an object's API name (Account, Invoice__c)")
    return value


class LinesOrigin(BaseModel):
    """``lines: {from: {object: OrderItem, relationship: OrderItems}, key: OrderId}``: lines come
    in the header query as a subquery on the child relationship."""

    model_config = ConfigDict(extra="forbid")

    object: str
    relationship: str

    @field_validator("object", "relationship")
    @classmethod
    def _names(cls, value: str) -> str:
        return _api_name(value)


class Origin(BaseModel):
    """``from: {object: Account}``, optionally with ``where``: a fixed SOQL condition written by
    the config's author (``"IsDeleted = false"``), ANDed to what patchbay pushes down."""

    model_config = ConfigDict(extra="forbid")

    object: str
    where: str | None = None

    @field_validator("object")
    @classmethod
    def _name(cls, value: str) -> str:
        return _api_name(value)

    @field_validator("where")
    @classmethod
    def _where(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("where must not be blank")
        return value


def problems(model: type[BaseModel], data: Any) -> str | None:
    """The validation problems of ``data`` as one line, or None when it is valid."""
    from pydantic import ValidationError

    from patchbay.core.connector import invalid_block

    try:
        model.model_validate(dict(data) if isinstance(data, dict) else data)
    except ValidationError as exc:
        return invalid_block(exc)
    return None
