"""The ``settings:`` block of a REST source and the ``from:`` block of each of its entities."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from patchbay.connectors._http import BaseUrl

__all__ = [
    "CursorPages",
    "LinkHeaderPages",
    "NextUrlPages",
    "NoPages",
    "OffsetPages",
    "Origin",
    "PageNumbers",
    "Pagination",
    "RestSettings",
    "Since",
    "Stop",
]

Scalar = str | int | float | bool


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _relative(value: str) -> str:
    if "://" in value or value.startswith("//"):
        raise ValueError("give a path relative to base_url, not a URL (credentials stay there)")
    return value


class RestSettings(_Block):
    """``base_url`` (every request goes to its origin), extra ``headers``, ``page_cap``.

    ``health``: the endpoint ``check`` GETs (default: ``base_url`` itself). ``discover``:
    ``from:`` blocks listed by ``patchbay discover`` besides those this source has read.
    """

    base_url: BaseUrl
    headers: dict[str, str] = Field(default_factory=dict, repr=False)  # may hold secrets
    page_cap: int = Field(default=10_000, ge=1)
    health: str | None = None
    discover: list[Origin] = Field(default_factory=list)

    @field_validator("health")
    @classmethod
    def _health(cls, value: str | None) -> str | None:
        return None if value is None else _relative(value)


class OffsetPages(_Block):
    type: Literal["offset"]
    limit: int = Field(default=100, ge=1)
    offset_param: str = "offset"
    limit_param: str = "limit"
    start: int = Field(default=0, ge=0)


class PageNumbers(_Block):
    type: Literal["page"]
    size: int = Field(default=100, ge=1)
    page_param: str = "page"
    size_param: str | None = "per_page"
    first: int = Field(default=1, ge=0)


class CursorPages(_Block):
    type: Literal["cursor"]
    cursor_param: str = "cursor"
    cursor_path: str = Field(min_length=1)


class NextUrlPages(_Block):
    type: Literal["next_url"]
    next_path: str = Field(min_length=1)


class LinkHeaderPages(_Block):
    type: Literal["link_header"]


class NoPages(_Block):
    type: Literal["none"] = "none"


Pagination = Annotated[
    OffsetPages | PageNumbers | CursorPages | NextUrlPages | LinkHeaderPages | NoPages,
    Field(discriminator="type"),
]


class Stop(_Block):
    """Extra stop conditions (an empty page always stops a read)."""

    total_path: str | None = None  # the number of records in all pages (offset and page only)
    has_more_path: str | None = None  # a boolean in the body: false stops


class Since(_Block):
    """How ``since`` (``updated_at >= …``) is sent: ``param`` in ``format``.

    ``path``: the source path ``updated_at`` is mapped from (it must be mapped without a
    transform to be pushed down).
    """

    param: str
    format: Literal["iso", "date", "epoch"] = "iso"
    path: str = "updated_at"


class Origin(_Block):
    """An entity's ``from:`` block."""

    endpoint: str
    records: str = ""  # dotted path to the list of records; "": the body is the list
    params: dict[str, Scalar] = Field(default_factory=dict)
    pagination: Pagination = Field(default_factory=NoPages)
    stop: Stop = Field(default_factory=Stop)
    since: Since | None = None
    filters: dict[str, str] = Field(default_factory=dict)  # source path -> query parameter
    detail: str | None = None  # "/invoices/{id}"
    detail_record: str = ""  # dotted path to the record in the detail body

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        return _relative(value)

    @field_validator("detail")
    @classmethod
    def _detail(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "{id}" not in value:
            raise ValueError("detail needs the placeholder {id}, e.g. /invoices/{id}")
        return _relative(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.stop.total_path is not None and not isinstance(
            self.pagination, OffsetPages | PageNumbers
        ):
            raise ValueError("stop.total_path: only with pagination type offset or page")
        reserved = _page_params(self.pagination)
        clash = sorted(reserved & (set(self.params) | set(self.filters.values())))
        if self.since is not None and self.since.param in reserved:
            clash.append(self.since.param)
        if clash:
            raise ValueError(f"{', '.join(clash)}: also a pagination parameter")
        return self


def _page_params(pagination: Any) -> set[str]:
    if isinstance(pagination, OffsetPages):
        return {pagination.offset_param, pagination.limit_param}
    if isinstance(pagination, PageNumbers):
        return {p for p in (pagination.page_param, pagination.size_param) if p}
    if isinstance(pagination, CursorPages):
        return {pagination.cursor_param}
    return set()


RestSettings.model_rebuild()
