"""The ``settings:`` block of an OData source and the ``from:`` blocks of its entities."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from patchbay.connectors._http import BaseUrl

__all__ = ["EDM_TYPES", "LinesOrigin", "ODataSettings", "Origin"]

Scalar = str | int | float | bool

# The primitive types whose literals differ (anything else is written like a string or number).
EDM_TYPES = frozenset({
    "Edm.String", "Edm.Guid", "Edm.Boolean", "Edm.Byte", "Edm.SByte", "Edm.Int16", "Edm.Int32",
    "Edm.Int64", "Edm.Decimal", "Edm.Double", "Edm.Single", "Edm.Date", "Edm.DateTime",
    "Edm.DateTimeOffset", "Edm.TimeOfDay", "Edm.Time",
})


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _relative(value: str) -> str:
    if "://" in value or value.startswith("//"):
        raise ValueError("give a path relative to service_root, not a URL (credentials stay there)")
    return value.strip("/")


class ODataSettings(_Block):
    """Where the service is and how to page through it.

    ``service_root``: the service's root URL (every request goes to its origin). ``version``:
    ``"4"`` (JSON ``value`` / ``@odata.nextLink``) or ``"2"`` (``d.results`` / ``__next``).
    ``paging``: ``client`` asks ``$top=page_size`` and ``$skip`` (and still follows next links
    the server sends); ``server`` sends neither and follows next links only. ``page_cap``: a
    read that needs more pages is an error, not a silent stop. ``services``: paths under the
    root whose ``$metadata`` ``discover`` lists (SAP has one service per API).
    """

    service_root: BaseUrl
    version: Literal["4", "2"] = "4"
    paging: Literal["client", "server"] = "client"
    page_size: int = Field(default=1000, ge=1, le=100_000)
    page_cap: int = Field(default=10_000, ge=1)
    params: dict[str, str] = Field(default_factory=dict, repr=False)  # sap-client=100, …
    headers: dict[str, str] = Field(default_factory=dict, repr=False)  # may hold secrets
    services: list[str] = Field(default_factory=lambda: [""])
    # How ``contains`` is made case-insensitive at the source (canonical contains ignores
    # case); null: case-insensitive contains is evaluated in memory only.
    fold_function: Literal["tolower"] | None = "tolower"

    @field_validator("services")
    @classmethod
    def _services(cls, value: list[str]) -> list[str]:
        return [_relative(v) if v else "" for v in value]


class Origin(_Block):
    """An entity's ``from:`` block.

    ``entity_set``: path below ``service_root`` (``customers``, ``companies(…)/customers``,
    ``API_BUSINESS_PARTNER/A_BusinessPartner``). ``where``: fixed equality conditions added to
    every read (``{BusinessPartnerCategory: "2"}``). ``types``: Edm types of properties, so
    filter and key literals are written the way the service parses them (``Edm.Guid``,
    ``Edm.DateTimeOffset``, ``Edm.Decimal``…); untyped values are written by their Python type.
    ``select``: send ``$select`` with the mapped properties.
    """

    entity_set: str
    where: dict[str, Scalar] = Field(default_factory=dict)
    types: dict[str, str] = Field(default_factory=dict)
    select: bool = True

    @field_validator("entity_set")
    @classmethod
    def _entity_set(cls, value: str) -> str:
        value = _relative(value)
        if not value or "?" in value or "$" in value:
            raise ValueError("an entity set path such as customers (no query string)")
        return value

    @field_validator("types")
    @classmethod
    def _types(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(t for t in value.values() if t not in EDM_TYPES)
        if unknown:
            raise ValueError(
                f"unknown Edm types {', '.join(unknown)}; known: {', '.join(sorted(EDM_TYPES))}"
            )
        return value


class LinesOrigin(_Block):
    """A ``lines.from:`` block: the navigation property expanded into each header's lines."""

    expand: str = Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
