"""Vendor presets over the OData connector: Business Central (v4) and SAP S/4HANA (v2).

Each is the ``odata`` connector with its own settings and ready-made entity bindings, which a
user takes with ``entities: preset`` (or ``order: preset``) and overrides field by field.

* ``business_central``: the standard API v1.0 as published (``companies({id})/customers`` …),
  field names exactly as in its OpenAPI description. ``company`` reads ``customers`` by
  default; ``settings.companies: vendors`` makes the same binding read ``vendors`` instead (a
  second source for vendors, so both can be served: canonical ids are per source, and
  ``extra.role`` says which one a record came from). The v1.0 API has no contacts.
* ``sap_s4hana``: ``API_BUSINESS_PARTNER`` (``A_BusinessPartner``: organisations are
  companies, persons are contacts) and ``API_SALES_ORDER_SRV`` (``A_SalesOrder`` with its
  items by ``to_Item``), OData v2 as SAP documents them.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator

from ._connector import ODataConnector
from ._spec import ODataSettings

__all__ = [
    "BusinessCentralConnector",
    "BusinessCentralSettings",
    "SapS4HanaConnector",
    "SapS4HanaSettings",
]

_CURRENCY = r"^[A-Z]{3}$"


def _money(currency: str | None) -> str:
    return f"money:{currency}" if currency else "money"


# --- Business Central --------------------------------------------------------------------------


class BusinessCentralSettings(ODataSettings):
    """``service_root``: ``https://api.businesscentral.dynamics.com/v2.0/{tenant}/{environment}
    /api/v1.0``; ``company_id``: the company's id (a GUID, ``GET /companies`` lists them);
    ``companies``: the entity set the ``company`` binding reads; ``currency``: the company's
    local currency (BC leaves ``currencyCode`` empty for it, and items and lines carry none)."""

    version: Literal["4"] = "4"
    company_id: str
    companies: Literal["customers", "vendors"] = "customers"
    currency: str | None = Field(default=None, pattern=_CURRENCY)

    @field_validator("company_id")
    @classmethod
    def _guid(cls, value: str) -> str:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError("the company's id is a GUID (GET /companies lists them)") from None


_BC_TYPES = {
    "id": "Edm.Guid", "customerId": "Edm.Guid", "itemId": "Edm.Guid", "documentId": "Edm.Guid",
    "lastModifiedDateTime": "Edm.DateTimeOffset", "orderDate": "Edm.Date",
    "invoiceDate": "Edm.Date", "dueDate": "Edm.Date", "unitPrice": "Edm.Decimal",
    "totalAmountIncludingTax": "Edm.Decimal", "remainingAmount": "Edm.Decimal",
    "blocked": "Edm.String",
}


def _bc_lines(nav: str, currency: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "product_id": {"path": "itemId", "transform": "ref"},
        "sku": "lineDetails.number",
        "description": "description",
        "quantity": {"path": "quantity", "transform": "decimal"},
    }
    if currency:  # lines carry no currency of their own
        fields["unit_price"] = {"path": "unitPrice", "transform": _money(currency)}
        fields["total"] = {"path": "amountIncludingTax", "transform": _money(currency)}
    return {"from": {"expand": nav}, "key": "documentId", "order_by": "sequence",
            "fields": fields}


def business_central_entities(settings: BusinessCentralSettings) -> dict[str, dict[str, Any]]:
    at = f"companies({settings.company_id})"
    money = _money(settings.currency)

    def origin(entity_set: str) -> dict[str, Any]:
        return {"entity_set": f"{at}/{entity_set}", "types": dict(_BC_TYPES)}

    role = "customer" if settings.companies == "customers" else "vendor"
    company: dict[str, Any] = {
        "from": origin(settings.companies),
        "id": "id",
        "updated_at": "lastModifiedDateTime",
        "fields": {
            "name": {"path": "displayName", "required": True},
            "tax_id": "taxRegistrationNumber",
            "website": "website",
            "email": "email",
            "phone": {"path": "phoneNumber", "transform": "phone"},
            "address.line1": "address.street",
            "address.city": "address.city",
            "address.region": "address.state",
            "address.postal_code": "address.postalCode",
            "address.country": {"path": "address.countryLetterCode", "transform": "country"},
            "status": {"path": "blocked", "transform": {"map": {"All": "inactive",
                                                                "*": "active"}}},
            "extra.number": "number",
            "extra.currency": "currencyCode",
            "extra.role": {"transform": f"const:{role}"},
        },
    }
    return {
        "company": company,
        "product": {
            "from": origin("items"),
            "id": "id",
            "updated_at": "lastModifiedDateTime",
            "fields": {
                "sku": "number",
                "name": {"path": "displayName", "required": True},
                "unit_price": {"path": "unitPrice", "transform": money},
                "active": {"path": "blocked", "transform": [
                    {"map": {"true": "false", "false": "true"}}, "bool"]},
                "extra.type": "type",
            },
        },
        "order": {
            "from": origin("salesOrders"),
            "id": "id",
            "updated_at": "lastModifiedDateTime",
            "fields": {
                "number": "number",
                "customer_id": {"path": "customerId", "transform": "ref"},
                "status": {"path": "status", "transform": {"map": {
                    "Draft": "draft", "In Review": "draft", "Open": "confirmed",
                    "Released": "confirmed", "*": "other"}}},
                "ordered_at": "orderDate",
                "total": {"path": ["totalAmountIncludingTax", "currencyCode"],
                          "transform": money},
                "extra.customer_number": "customerNumber",
            },
            "lines": _bc_lines("salesOrderLines", settings.currency),
        },
        "invoice": {
            "from": origin("salesInvoices"),
            "id": "id",
            "updated_at": "lastModifiedDateTime",
            "fields": {
                "number": "number",
                "customer_id": {"path": "customerId", "transform": "ref"},
                "status": {"path": "status", "transform": {"map": {
                    "Draft": "draft", "In Review": "draft", "Open": "open", "Paid": "paid",
                    "Canceled": "void", "Cancelled": "void", "*": "other"}}},
                "issued_on": "invoiceDate",
                "due_on": "dueDate",
                "total": {"path": ["totalAmountIncludingTax", "currencyCode"],
                          "transform": money},
                "balance": {"path": ["remainingAmount", "currencyCode"], "transform": money},
                "extra.customer_number": "customerNumber",
            },
            "lines": _bc_lines("salesInvoiceLines", settings.currency),
        },
    }


class BusinessCentralConnector(ODataConnector):
    """Dynamics 365 Business Central's standard API (OData v4) with ready-made bindings."""

    kind = "business_central"
    Settings: ClassVar[type[BaseModel]] = BusinessCentralSettings

    def _health(self) -> tuple[str, dict[str, str]]:
        # One id from the company's parties: proves the credentials and the company id (the
        # API root has no documented service document).
        settings = self.settings
        assert isinstance(settings, BusinessCentralSettings)
        return (f"companies({settings.company_id})/{settings.companies}",
                {"$top": "1", "$select": "id"})

    @classmethod
    def preset_entities(cls, settings: BaseModel) -> Mapping[str, Mapping[str, Any]]:
        assert isinstance(settings, BusinessCentralSettings)
        return business_central_entities(settings)


# --- SAP S/4HANA -------------------------------------------------------------------------------


class SapS4HanaSettings(ODataSettings):
    """``service_root``: the OData services' parent, ``https://HOST/sap/opu/odata/sap`` (the
    entity sets are ``API_BUSINESS_PARTNER/A_BusinessPartner`` and
    ``API_SALES_ORDER_SRV/A_SalesOrder`` below it); ``params: {sap-client: "100"}`` picks a
    client."""

    version: Literal["2"] = "2"
    services: list[str] = Field(
        default_factory=lambda: ["API_BUSINESS_PARTNER", "API_SALES_ORDER_SRV"]
    )


_SAP_TYPES = {
    "BusinessPartnerUUID": "Edm.Guid", "CreationDate": "Edm.DateTime",
    "LastChangeDate": "Edm.DateTime", "BusinessPartnerIsBlocked": "Edm.Boolean",
    "SalesOrderDate": "Edm.DateTime", "LastChangeDateTime": "Edm.DateTimeOffset",
    "TotalNetAmount": "Edm.Decimal",
}
_PARTNERS = "API_BUSINESS_PARTNER/A_BusinessPartner"
_BLOCKED = {"path": "BusinessPartnerIsBlocked",
            "transform": {"map": {"true": "inactive", "false": "active"}}}


def sap_entities(settings: SapS4HanaSettings) -> dict[str, dict[str, Any]]:
    def partners(category: str) -> dict[str, Any]:
        return {"entity_set": _PARTNERS, "where": {"BusinessPartnerCategory": category},
                "types": dict(_SAP_TYPES)}

    # A_BusinessPartner has no change timestamp, only LastChangeDate (+ LastChangeTime):
    # `since` is pushed on the date, which is exact on canonical values made from it.
    partner_fields = {
        "created_at": "CreationDate",
        "extra.customer": "Customer",
        "extra.supplier": "Supplier",
        "extra.search_term": "SearchTerm1",
    }
    return {
        "company": {
            "from": partners("2"),
            "id": "BusinessPartner",
            "updated_at": "LastChangeDate",
            "fields": {
                "name": {"path": "BusinessPartnerFullName", "required": True},
                "legal_name": "OrganizationBPName1",
                "industry": "Industry",
                "status": _BLOCKED,
                **partner_fields,
            },
        },
        "contact": {
            "from": partners("1"),
            "id": "BusinessPartner",
            "updated_at": "LastChangeDate",
            "fields": {
                "first_name": "FirstName",
                "last_name": "LastName",
                "full_name": "BusinessPartnerFullName",
                "status": _BLOCKED,
                **partner_fields,
            },
        },
        "order": {
            "from": {"entity_set": "API_SALES_ORDER_SRV/A_SalesOrder",
                     "types": dict(_SAP_TYPES)},
            "id": "SalesOrder",
            "updated_at": "LastChangeDateTime",
            "fields": {
                "number": "SalesOrder",
                "customer_id": {"path": "SoldToParty", "transform": "ref"},
                "status": {"path": "OverallSDProcessStatus", "transform": {"map": {
                    "A": "confirmed", "B": "confirmed", "C": "fulfilled", "*": "other"}}},
                "ordered_at": "SalesOrderDate",
                "total": {"path": ["TotalNetAmount", "TransactionCurrency"],
                          "transform": "money"},
                "extra.order_type": "SalesOrderType",
                "extra.sales_organization": "SalesOrganization",
                "extra.customer_reference": "PurchaseOrderByCustomer",
            },
            "lines": {
                "from": {"expand": "to_Item"},
                "key": "SalesOrder",
                "order_by": "SalesOrderItem",
                "fields": {
                    "sku": "Material",
                    "description": "SalesOrderItemText",
                    "quantity": {"path": "RequestedQuantity", "transform": "decimal"},
                    "total": {"path": ["NetAmount", "TransactionCurrency"],
                              "transform": "money"},
                },
            },
        },
    }


class SapS4HanaConnector(ODataConnector):
    """SAP S/4HANA's business partner and sales order APIs (OData v2) with bindings."""

    kind = "sap_s4hana"
    Settings: ClassVar[type[BaseModel]] = SapS4HanaSettings

    @classmethod
    def preset_entities(cls, settings: BaseModel) -> Mapping[str, Mapping[str, Any]]:
        assert isinstance(settings, SapS4HanaSettings)
        return sap_entities(settings)
