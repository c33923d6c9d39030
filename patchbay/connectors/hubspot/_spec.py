"""The ``settings:`` block of a HubSpot source and the ``from:`` block of each of its entities."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from patchbay.connectors._http import BaseUrl

__all__ = ["STANDARD_OBJECTS", "HubSpotSettings", "Origin", "modified_property"]

# The CRM v3 objects this connector is documented and tested with; custom objects are named
# ``p_<name>`` or by their object type id ``2-1234567``.
STANDARD_OBJECTS = ("contacts", "companies", "deals", "tickets", "products", "line_items",
                    "orders", "order")  # commerce orders: HubSpot documents both spellings
_CUSTOM = re.compile(r"^(p_[a-z0-9_]+|2-\d+)$")


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _object_name(value: str, what: str) -> str:
    if value in STANDARD_OBJECTS or _CUSTOM.match(value):
        return value
    raise ValueError(
        f"unknown HubSpot {what} {value!r}; objects: {', '.join(STANDARD_OBJECTS)}, or a custom "
        "object as p_<name> or 2-<type id>"
    )


def modified_property(object_name: str) -> str:
    """The property holding an object's last change (contacts keep the pre-v3 name)."""
    return "lastmodifieddate" if object_name == "contacts" else "hs_lastmodifieddate"


class HubSpotSettings(_Block):
    """Where the API is and how it is paged.

    ``page_size``: records per request (HubSpot's list endpoint allows 100 at most).
    ``search_window``: the results one search can page through before HubSpot refuses (10,000);
    a longer read is split into several searches by ``hs_lastmodifieddate``.
    ``check_object``: what ``patchbay check`` lists one record of (the token needs its scope).
    ``discover``: objects ``patchbay discover`` describes besides those read so far.
    """

    base_url: BaseUrl = "https://api.hubapi.com"
    page_size: int = Field(default=100, ge=1, le=100)
    search_window: int = Field(default=10_000, ge=1)
    check_object: str = "contacts"
    discover: list[str] = Field(default_factory=list)

    @field_validator("check_object")
    @classmethod
    def _check_object(cls, value: str) -> str:
        return _object_name(value, "object")

    @field_validator("discover")
    @classmethod
    def _discover(cls, value: list[str]) -> list[str]:
        return [_object_name(v, "object") for v in value]


class Origin(_Block):
    """An entity's ``from:`` block: ``{object: contacts, associations: [companies]}``.

    ``associations``: object types whose associated record ids the connector reads (one batch
    request per page and type) and puts into the row as ``associated.<type>``: the record's
    primary association, else its only one, else the lowest id.
    ``properties``: properties to request besides those the mapping reads (for ``raw``).
    """

    object: str
    associations: list[str] = Field(default_factory=list, max_length=3)
    properties: list[str] = Field(default_factory=list)

    @field_validator("object")
    @classmethod
    def _object(cls, value: str) -> str:
        return _object_name(value, "object")

    @field_validator("associations")
    @classmethod
    def _associations(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an association type is listed twice")
        return [_object_name(v, "association type") for v in value]

    @property
    def modified(self) -> str:
        return modified_property(self.object)
