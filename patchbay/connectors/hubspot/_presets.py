"""The preset entity bindings: HubSpot's default properties mapped to canonical entities.

Property names are HubSpot's documented defaults. Stages and statuses follow the default
pipelines (deals: ``closedwon``/``closedlost``; tickets: stage ids 1-4); accounts with their
own pipelines override ``status`` with their stage ids. Money has no currency of its own in
HubSpot unless the account is multi-currency (``deal_currency_code``): set
``defaults.currency`` on the source.

Line items are order lines: HubSpot's commerce ``orders`` (an order's ``line_items``, read by
association) become canonical orders with lines. Deals keep theirs: a canonical deal has no
lines; a user who treats deals as orders binds ``order`` to ``{object: deals}`` with the same
``lines`` block (``key: associated.deals``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

_ADDRESS = {
    "address.line1": "properties.address",
    "address.city": "properties.city",
    "address.region": "properties.state",
    "address.postal_code": "properties.zip",
    "address.country": {"path": "properties.country", "transform": "country"},
}

PRESETS: dict[str, dict[str, Any]] = {
    "contact": {
        "from": {"object": "contacts", "associations": ["companies"]},
        "id": "id",
        "updated_at": "updatedAt",
        "fields": {
            "first_name": "properties.firstname",
            "last_name": "properties.lastname",
            "email": {"path": "properties.email", "transform": "email"},
            "phone": {"path": "properties.phone", "transform": "phone"},
            "mobile": {"path": "properties.mobilephone", "transform": "phone"},
            "title": "properties.jobtitle",
            "company_name": "properties.company",
            "company_id": {"path": "associated.companies", "transform": "ref"},
            "status": "properties.lifecyclestage",
            "created_at": {"path": "createdAt", "transform": "date"},
            **_ADDRESS,
        },
    },
    "company": {
        "from": {"object": "companies"},
        "id": "id",
        "updated_at": "updatedAt",
        "fields": {
            "name": "properties.name",
            "website": "properties.website",
            "phone": {"path": "properties.phone", "transform": "phone"},
            "industry": "properties.industry",
            "created_at": {"path": "createdAt", "transform": "date"},
            "extra.domain": "properties.domain",
            "address.line2": "properties.address2",
            **_ADDRESS,
        },
    },
    "deal": {
        "from": {"object": "deals", "associations": ["companies"]},
        "id": "id",
        "updated_at": "updatedAt",
        "fields": {
            "name": "properties.dealname",
            "amount": {"path": ["properties.amount", "properties.deal_currency_code"],
                       "transform": "money"},
            "stage": "properties.dealstage",
            "status": {"path": "properties.dealstage",
                       "transform": {"map": {"closedwon": "won", "closedlost": "lost",
                                             "*": "open"}}},
            "close_date": {"path": "properties.closedate", "transform": "date"},
            "company_id": {"path": "associated.companies", "transform": "ref"},
            "owner": "properties.hubspot_owner_id",
            "extra.pipeline": "properties.pipeline",
        },
    },
    "ticket": {
        "from": {"object": "tickets", "associations": ["companies"]},
        "id": "id",
        "updated_at": "updatedAt",
        "fields": {
            "subject": "properties.subject",
            "description": "properties.content",
            "status": {"path": "properties.hs_pipeline_stage",
                       "transform": {"map": {"1": "open", "2": "pending", "3": "open",
                                             "4": "closed", "*": "other"}}},
            "priority": {"path": "properties.hs_ticket_priority",
                         "transform": {"map": {"LOW": "low", "MEDIUM": "normal",
                                               "HIGH": "high", "URGENT": "urgent"}}},
            "company_id": {"path": "associated.companies", "transform": "ref"},
            "opened_at": "createdAt",
            "closed_at": "properties.closed_date",
            "extra.pipeline": "properties.hs_pipeline",
        },
    },
    "order": {
        "from": {"object": "orders", "associations": ["contacts"]},
        "id": "id",
        "updated_at": "updatedAt",
        "fields": {
            "number": "properties.hs_order_name",
            "customer_id": {"path": "associated.contacts", "transform": "ref"},
            "ordered_at": {"path": "createdAt", "transform": "date"},
            "total": {"path": ["properties.hs_total_price", "properties.hs_currency_code"],
                      "transform": "money"},
            "extra.fulfillment_status": "properties.hs_fulfillment_status",
            "extra.external_id": "properties.hs_external_order_id",
        },
        "lines": {
            "from": {"object": "line_items"},
            "key": "associated.orders",
            "fields": {
                "product_id": {"path": "properties.hs_product_id", "transform": "ref"},
                "sku": "properties.hs_sku",
                "description": "properties.name",
                "quantity": {"path": "properties.quantity", "transform": "decimal"},
                "unit_price": {"path": ["properties.price",
                                        "properties.hs_line_item_currency_code"],
                               "transform": "money"},
                "total": {"path": ["properties.amount", "properties.hs_line_item_currency_code"],
                          "transform": "money"},
            },
        },
    },
    "product": {
        "from": {"object": "products"},
        "id": "id",
        "updated_at": "updatedAt",
        "fields": {
            "name": "properties.name",
            "sku": "properties.hs_sku",
            "description": "properties.description",
            "unit_price": {"path": "properties.price", "transform": "money"},
        },
    },
}
