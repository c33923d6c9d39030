"""patchbay: legacy ERP, CRM, SQL and file sources behind one set of canonical, validated records.

    from patchbay import Hub

    async with Hub.from_config("patchbay.yaml") as hub:
        async for contact in hub.query("contact", email="ann@acme.example"):
            ...

``SyncHub`` offers the same calls without ``await`` (also inside a running event loop, such as a
notebook's).
"""

from patchbay.core.consumers import AccessDenied, RateLimited
from patchbay.core.entities import (
    Address,
    Company,
    Contact,
    Deal,
    Invoice,
    InvoiceLine,
    Money,
    Order,
    OrderLine,
    Product,
    Record,
    Ticket,
)
from patchbay.core.errors import (
    ConfigError,
    ConnectorNotFound,
    CursorError,
    EntityNotFound,
    PatchbayError,
    QuarantinedRecord,
    QueryError,
    RecordNotFound,
    SourceError,
    SourceUnavailable,
)
from patchbay.core.policy import record_to_json
from patchbay.hub import Hub, Page
from patchbay.sync import SyncHub

__all__ = [
    "AccessDenied",
    "Address",
    "Company",
    "ConfigError",
    "ConnectorNotFound",
    "Contact",
    "CursorError",
    "Deal",
    "EntityNotFound",
    "Hub",
    "Invoice",
    "InvoiceLine",
    "Money",
    "Order",
    "OrderLine",
    "Page",
    "PatchbayError",
    "Product",
    "QuarantinedRecord",
    "QueryError",
    "RateLimited",
    "Record",
    "RecordNotFound",
    "SourceError",
    "SourceUnavailable",
    "SyncHub",
    "Ticket",
    "record_to_json",
]
