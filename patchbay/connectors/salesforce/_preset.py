"""The preset: standard Salesforce objects bound to canonical entities.

Field names are the standard objects' API names (Salesforce Object Reference). Picklists are
mapped from their default values; orgs that changed them override ``status`` or ``priority``
field by field in their config. Fields whose API values already have the canonical type
(dates, datetimes, numbers, booleans, ids) are mapped without a transform, so filters on them go
to the query; ``updated_at`` is ``SystemModstamp``, so ``since`` does too.
"""

from __future__ import annotations

from typing import Any

from ._spec import SalesforceSettings

__all__ = ["preset_entities"]


def _address(prefix: str) -> dict[str, Any]:
    return {
        "address.line1": {"path": f"{prefix}Street", "transform": "strip"},
        "address.city": f"{prefix}City",
        "address.region": f"{prefix}State",
        "address.postal_code": f"{prefix}PostalCode",
        "address.country": {"path": f"{prefix}Country", "transform": "country"},
    }


def _ref(path: str) -> dict[str, str]:
    return {"path": path, "transform": "ref"}


def preset_entities(settings: SalesforceSettings) -> dict[str, dict[str, Any]]:
    def money(path: str) -> dict[str, Any]:
        if settings.multi_currency:
            return {"path": [path, "CurrencyIsoCode"], "transform": "money"}
        return {"path": path, "transform": "money"}  # the source's defaults.currency

    def binding(sobject: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {"from": {"object": sobject}, "id": "Id", "updated_at": "SystemModstamp",
                "fields": fields}

    return {
        "company": binding("Account", {
            "name": {"path": "Name", "required": True},
            "website": "Website",
            "phone": {"path": "Phone", "transform": "phone"},
            "industry": "Industry",
            "status": {"path": "Type", "transform": {"map": {
                "Prospect": "prospect", "Customer - Direct": "active",
                "Customer - Channel": "active", "*": "other"}}},
            "created_at": {"path": "CreatedDate", "transform": "date"},
            "extra.account_number": "AccountNumber",
            **_address("Billing"),
        }),
        "contact": binding("Contact", {
            "first_name": "FirstName",
            "last_name": "LastName",
            "email": {"path": "Email", "transform": "email"},
            "phone": {"path": "Phone", "transform": "phone"},
            "mobile": {"path": "MobilePhone", "transform": "phone"},
            "title": "Title",
            "company_id": _ref("AccountId"),
            "company_name": "Account.Name",  # through the parent relationship
            "created_at": {"path": "CreatedDate", "transform": "date"},
            **_address("Mailing"),
        }),
        "deal": binding("Opportunity", {
            "name": {"path": "Name", "required": True},
            "amount": money("Amount"),
            "stage": "StageName",
            "status": {"path": "StageName", "transform": {"map": {
                "Closed Won": "won", "Closed Lost": "lost", "*": "open"}}},
            "probability": "Probability",
            "close_date": "CloseDate",
            "company_id": _ref("AccountId"),
            "contact_id": _ref("ContactId"),
            "owner": "OwnerId",
        }),
        "ticket": binding("Case", {
            "subject": {"path": "Subject", "required": True},
            "description": "Description",
            "status": {"path": "Status", "transform": {"map": {
                "New": "open", "Working": "open", "Escalated": "open", "On Hold": "pending",
                "Closed": "closed", "*": "other"}}},
            "priority": {"path": "Priority", "transform": {"map": {
                "Low": "low", "Medium": "normal", "High": "high", "Critical": "urgent"}}},
            "contact_id": _ref("ContactId"),
            "company_id": _ref("AccountId"),
            "opened_at": "CreatedDate",
            "closed_at": "ClosedDate",
            "extra.case_number": "CaseNumber",
        }),
        "product": binding("Product2", {
            "sku": "ProductCode",
            "name": {"path": "Name", "required": True},
            "description": "Description",
            "active": "IsActive",
            "extra.family": "Family",
        }),
        "order": {
            **binding("Order", {
                "number": "OrderNumber",
                "customer_id": _ref("AccountId"),
                "status": {"path": "Status", "transform": {"map": {
                    "Draft": "draft", "Activated": "confirmed", "*": "other"}}},
                "ordered_at": "EffectiveDate",
                "total": money("TotalAmount"),
            }),
            "lines": {
                "from": {"object": "OrderItem", "relationship": "OrderItems"},
                "key": "OrderId",
                "order_by": "OrderItemNumber",
                "fields": {
                    "product_id": _ref("Product2Id"),
                    "description": "Description",
                    "quantity": "Quantity",
                    "unit_price": money("UnitPrice"),
                    "total": money("TotalPrice"),
                },
            },
        },
    }
