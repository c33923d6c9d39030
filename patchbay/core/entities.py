"""Canonical entities: the one shape every source is mapped into.

A record is a pydantic model subclassing :class:`Record`; its ``entity`` class variable is its
name. The built-ins follow the table in DESIGN.md. Users add their own by subclassing
``Record`` and registering the class, in Python (``EntityRegistry.register``) or through the
entry point group ``patchbay.entities``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "BUILTIN_ENTITIES",
    "Address",
    "Company",
    "Contact",
    "Deal",
    "Email",
    "Invoice",
    "InvoiceLine",
    "Money",
    "Order",
    "OrderLine",
    "Product",
    "Record",
    "Ticket",
]

# Marked in the JSON Schema so filters know to compare e-mail addresses case-insensitively.
Email = Annotated[str, Field(json_schema_extra={"format": "email"})]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
RecordId = Annotated[str, Field(json_schema_extra={"x-patchbay-reference": True})]


class Value(BaseModel):
    """Base of the value types nested inside records."""

    model_config = ConfigDict(extra="forbid")


class Money(Value):
    """An amount in a currency. Decimal in Python, a string in JSON, never a float."""

    amount: Decimal
    currency: CurrencyCode


class Address(Value):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: CountryCode | None = None


class Record(BaseModel):
    """The envelope every canonical record carries.

    ``id`` is ``"{source}:{remote_id}"`` with ``:`` and ``/`` of the remote id percent-encoded
    and the parts of a composite key joined by ``/``.
    """

    model_config = ConfigDict(extra="forbid")

    entity: ClassVar[str] = ""
    # Fields a mapping must fill or quarantine the row (besides the id).
    required: ClassVar[frozenset[str]] = frozenset()

    id: str
    source: str
    remote_id: str
    updated_at: AwareDatetime | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    raw: dict[str, Any] | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # Required canonical fields are the ones the model gives no default.
        cls.required = frozenset(
            name
            for name, info in cls.model_fields.items()
            if info.is_required() and name not in Record.model_fields
        )


class Company(Record):
    entity: ClassVar[str] = "company"

    name: str
    legal_name: str | None = None
    tax_id: str | None = None
    website: str | None = None
    email: Email | None = None
    phone: str | None = None
    industry: str | None = None
    address: Address | None = None
    status: Literal["active", "inactive", "prospect", "other"] | None = None
    created_at: date | None = None


class Contact(Record):
    entity: ClassVar[str] = "contact"

    first_name: str | None = None
    last_name: str | None = None
    # Derived from the parts when the source has no full name (called only when it is absent).
    full_name: str | None = Field(default_factory=lambda data: _full_name(data))
    email: Email | None = None
    phone: str | None = None
    mobile: str | None = None
    title: str | None = None
    company_id: RecordId | None = None
    company_name: str | None = None
    address: Address | None = None
    status: str | None = None
    created_at: date | None = None


def _full_name(data: dict[str, Any]) -> str | None:
    first, last = data.get("first_name"), data.get("last_name")
    if first and last:
        return f"{first} {last}"
    return first or last or None


class Deal(Record):
    entity: ClassVar[str] = "deal"

    name: str
    amount: Money | None = None
    stage: str | None = None
    status: Literal["open", "won", "lost"] | None = None
    probability: Annotated[Decimal, Field(ge=0, le=100)] | None = None
    close_date: date | None = None
    company_id: RecordId | None = None
    contact_id: RecordId | None = None
    owner: str | None = None


class Product(Record):
    entity: ClassVar[str] = "product"

    sku: str | None = None
    name: str
    description: str | None = None
    unit_price: Money | None = None
    active: bool | None = None


class Line(Value):
    product_id: RecordId | None = None
    sku: str | None = None
    description: str | None = None
    quantity: Decimal | None = None
    unit_price: Money | None = None
    total: Money | None = None


class OrderLine(Line):
    pass


class InvoiceLine(Line):
    pass


class Order(Record):
    entity: ClassVar[str] = "order"

    number: str | None = None
    customer_id: RecordId | None = None
    status: Literal["draft", "confirmed", "fulfilled", "cancelled", "other"] | None = None
    ordered_at: date | None = None
    total: Money | None = None
    lines: list[OrderLine] = Field(default_factory=list)


class Invoice(Record):
    entity: ClassVar[str] = "invoice"

    number: str | None = None
    customer_id: RecordId | None = None
    status: Literal["draft", "open", "paid", "void", "other"] | None = None
    issued_on: date | None = None
    due_on: date | None = None
    total: Money | None = None
    balance: Money | None = None
    lines: list[InvoiceLine] = Field(default_factory=list)


class Ticket(Record):
    entity: ClassVar[str] = "ticket"

    subject: str
    description: str | None = None
    status: Literal["open", "pending", "closed", "other"] | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    contact_id: RecordId | None = None
    company_id: RecordId | None = None
    opened_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None


BUILTIN_ENTITIES: tuple[type[Record], ...] = (
    Company,
    Contact,
    Deal,
    Product,
    Order,
    Invoice,
    Ticket,
)
