"""The ready-made entity bindings of a Tryton database (``entities: preset``).

Parties (``party.party``, inactive ones too, with their status) become companies and contacts:
e-mail, phone, mobile and website are Tryton's own "first contact mechanism of that type"
fields, the address is the party's first address (Tryton orders them by sequence). Sales
(``sale.sale`` with ``sale.line``) become orders; posted and paid customer invoices
(``account.invoice``, type ``out``, with ``account.invoice.line``) invoices; variants
(``product.product``) products. ``updated_at`` is Tryton's ``last_modified_at``: the write
date, or the create date of a record never written.

Amounts carry the currency of their document; a product's list price has none in Tryton (it is
in the company's currency): set the source's ``defaults.currency``.
"""

from __future__ import annotations

from typing import Any

from ._spec import TrytonSettings

__all__ = ["preset_entities"]

# Tryton's function fields (no search method): filters on them stay in memory.
_MEMORY = {"pushdown": False}
_ADDRESS = {
    "address.line1": {"path": "addresses.street", "transform": "strip"},
    "address.city": {"path": "addresses.city", "transform": "strip"},
    "address.postal_code": {"path": "addresses.postal_code", "transform": "strip"},
    "address.region": "addresses.subdivision.name",
    "address.country": {"path": "addresses.country.code", "transform": "country"},
}
_LINE_FIELDS = {
    "product_id": {"path": "product", "transform": "ref"},
    "sku": "product.code",
    "description": {"path": "description", "transform": "strip"},
    "quantity": "quantity",
    "unit_price": {"path": ["unit_price", "currency.code"], "transform": "money"},
    "total": {"path": ["amount", "currency.code"], "transform": "money"},
}


def _party(domain: list[Any]) -> dict[str, Any]:
    return {
        "from": {"model": "party.party", "domain": domain, "active_test": False},
        "id": "id",
        "updated_at": "last_modified_at",
    }


def preset_entities(settings: TrytonSettings) -> dict[str, dict[str, Any]]:
    return {
        "company": {
            **_party(settings.company_domain),
            "fields": {
                "name": {"path": "name", "transform": "squash", "required": True},
                "tax_id": "tax_identifier.code",
                "website": {"path": "website", "transform": "strip", **_MEMORY},
                "email": {"path": "email", "transform": "email", **_MEMORY},
                "phone": {"path": "phone", "transform": "phone", **_MEMORY},
                **_ADDRESS,
                "status": {"path": "active", "transform": {"map": {True: "active",
                                                                   False: "inactive"}}},
                "extra.code": "code",
            },
        },
        "contact": {
            **_party(settings.contact_domain),
            "fields": {
                "full_name": {"path": "name", "transform": "squash"},
                "email": {"path": "email", "transform": "email", **_MEMORY},
                "phone": {"path": "phone", "transform": "phone", **_MEMORY},
                "mobile": {"path": "mobile", "transform": "phone", **_MEMORY},
                **_ADDRESS,
                "status": {"path": "active", "transform": {"map": {True: "active",
                                                                   False: "inactive"}}},
                "extra.code": "code",
            },
        },
        "order": {
            "from": {"model": "sale.sale"},
            "id": "id",
            "updated_at": "last_modified_at",
            "fields": {
                "number": "number",
                "customer_id": {"path": "party", "transform": "ref"},
                "status": {"path": "state", "transform": {"map": {
                    "draft": "draft", "quotation": "draft", "confirmed": "confirmed",
                    "processing": "confirmed", "done": "fulfilled", "cancelled": "cancelled",
                    "*": "other"}}},
                "ordered_at": "sale_date",
                "total": {"path": ["total_amount", "currency.code"], "transform": "money"},
                "extra.reference": "reference",
                "extra.invoice_state": "invoice_state",
            },
            "lines": {
                "from": {"model": "sale.line"},
                "key": "sale",
                "order_by": "sequence",
                "fields": dict(_LINE_FIELDS),
            },
        },
        "invoice": {
            "from": {
                "model": "account.invoice",
                "domain": [["type", "=", "out"], ["state", "in", ["posted", "paid"]]],
            },
            "id": "id",
            "updated_at": "last_modified_at",
            "fields": {
                "number": "number",
                "customer_id": {"path": "party", "transform": "ref"},
                "status": {"path": "state", "transform": {"map": {
                    "draft": "draft", "validated": "open", "posted": "open", "paid": "paid",
                    "cancelled": "void", "*": "other"}}},
                "issued_on": "invoice_date",
                "total": {"path": ["total_amount", "currency.code"], "transform": "money"},
                "balance": {"path": ["amount_to_pay", "currency.code"], "transform": "money"},
                "extra.reference": "reference",
            },
            "lines": {
                "from": {"model": "account.invoice.line"},
                "key": "invoice",
                "order_by": "sequence",
                "fields": dict(_LINE_FIELDS),
            },
        },
        "product": {
            "from": {"model": "product.product", "active_test": False},
            "id": "id",
            "updated_at": "last_modified_at",
            "fields": {
                "sku": "code",
                "name": {"path": "name", "transform": "squash", "required": True},
                "description": {"path": "description", "transform": "strip"},
                "unit_price": {"path": "list_price_used", "transform": "money", **_MEMORY},
                "active": "active",
            },
        },
    }
