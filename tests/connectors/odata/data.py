"""The data the test services hold: a Business Central company (v4) and an SAP system (v2).

Field names and types follow the published Business Central API v1.0 description
(``shared/specs/dynamics365-business-central/openapi.yaml``) and SAP's API_BUSINESS_PARTNER and
API_SALES_ORDER_SRV documentation. Values are chosen to be awkward: apostrophes, ``&``, ``+``,
``%`` and non-ASCII in text, mixed-case e-mail addresses, empty currency codes (BC's local
currency), nulls, and one record per set that must be quarantined.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from odata.service import EntitySet

COMPANY_ID = "11111111-1111-1111-1111-111111111111"
START = datetime(2024, 3, 1, 8, 30, tzinfo=UTC)
NAMES = ["O'Brien & Söhne", "Acme 100% Ltd", "Ann + Bob GmbH", "Zeta Corp", "Beta/Gamma LLP",
         "Müller AG", "North Wind", "it's \"quoted\"", "Café Olé", "Delta #7", "Epsilon?x=1"]


def _guid(kind: str, number: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"patchbay-test/{kind}/{number}")


# --- Business Central (v4) --------------------------------------------------------------------

ADDRESS = {"address/street": "Edm.String", "address/city": "Edm.String",
           "address/state": "Edm.String", "address/countryLetterCode": "Edm.String",
           "address/postalCode": "Edm.String"}
PARTY = {"id": "Edm.Guid", "number": "Edm.String", "displayName": "Edm.String",
         "address": "Microsoft.NAV.postalAddressType", **ADDRESS,
         "phoneNumber": "Edm.String", "email": "Edm.String", "website": "Edm.String",
         "taxRegistrationNumber": "Edm.String", "currencyCode": "Edm.String",
         "blocked": "Edm.String", "lastModifiedDateTime": "Edm.DateTimeOffset"}


def _party(kind: str, i: int) -> dict[str, Any]:
    city = ["London", "Berlin", "New York", "Paris"][i % 4]
    country = ["GB", "DE", "US", "FR"][i % 4]
    return {
        "id": _guid(kind, i), "number": f"{kind[0].upper()}{i:04d}",
        "displayName": NAMES[i % len(NAMES)],
        "type": "Company",
        "address": {"street": f"{i} High Street", "city": city, "state": None,
                    "countryLetterCode": country, "postalCode": f"PC{i:03d}"},
        "phoneNumber": f"+44 20 7946 {i:04d}" if i % 3 else None,
        "email": f"Sales.{i}@Example.COM" if i % 4 else None,
        "website": f"https://{kind}{i}.example" if i % 2 else "",
        "taxRegistrationNumber": f"GB{i:09d}",
        "currencyCode": "" if i % 2 else "USD",
        "blocked": "All" if i % 5 == 0 else " ",
        "lastModifiedDateTime": START + timedelta(hours=13 * i),
    }


CUSTOMERS = [_party("customer", i) for i in range(1, 12)]
CUSTOMERS[6]["displayName"] = None  # no name: quarantined (company.name is required)
VENDORS = [_party("vendor", i) for i in range(1, 6)]
VENDORS[2]["displayName"] = None  # quarantined

ITEM = {"id": "Edm.Guid", "number": "Edm.String", "displayName": "Edm.String",
        "type": "Edm.String", "blocked": "Edm.Boolean", "unitPrice": "Edm.Decimal",
        "lastModifiedDateTime": "Edm.DateTimeOffset"}
ITEMS = [{"id": _guid("item", i), "number": f"1{i:03d}-W", "displayName": f"Widget {i}'s",
          "type": "Inventory", "blocked": i == 3, "unitPrice": Decimal(f"{i * 7}.25"),
          "lastModifiedDateTime": START + timedelta(days=i)} for i in range(1, 7)]
ITEMS[5]["displayName"] = None  # quarantined (product.name is required)

LINE = {"id": "Edm.String", "documentId": "Edm.Guid", "sequence": "Edm.Int32",
        "itemId": "Edm.Guid", "lineDetails": "Microsoft.NAV.documentLineObjectDetailsType",
        "lineDetails/number": "Edm.String", "description": "Edm.String",
        "quantity": "Edm.Decimal", "unitPrice": "Edm.Decimal",
        "amountIncludingTax": "Edm.Decimal"}


def _lines(document: uuid.UUID, i: int) -> list[dict[str, Any]]:
    out = []
    for n in range(1, i % 3 + 2):
        item = ITEMS[(i + n) % len(ITEMS)]
        out.append({"id": f"{document}-{n * 10000}", "documentId": document,
                    "sequence": n * 10000, "itemId": item["id"],
                    "lineDetails": {"number": item["number"]},
                    "description": f"{item['displayName']} x{n}",
                    "quantity": Decimal(n), "unitPrice": item["unitPrice"],
                    "amountIncludingTax": item["unitPrice"] * n})
    return list(reversed(out))  # the service's order is not the sequence: lines are sorted


ORDER = {"id": "Edm.Guid", "number": "Edm.String", "orderDate": "Edm.Date",
         "customerId": "Edm.Guid", "customerNumber": "Edm.String", "status": "Edm.String",
         "totalAmountIncludingTax": "Edm.Decimal", "currencyCode": "Edm.String",
         "lastModifiedDateTime": "Edm.DateTimeOffset"}
ORDER_STATUS = ["Draft", "Open", "Released", "In Review"]
ORDERS = [{"id": _guid("order", i), "number": f"SO-{1000 + i}",
           "orderDate": date(2024, 2, 1) + timedelta(days=3 * i),
           "customerId": CUSTOMERS[i % 5]["id"], "customerNumber": CUSTOMERS[i % 5]["number"],
           "status": ORDER_STATUS[i % 4], "totalAmountIncludingTax": Decimal(f"{i * 110}.40"),
           "currencyCode": "" if i % 3 else "EUR",
           "lastModifiedDateTime": START + timedelta(hours=29 * i)} for i in range(1, 10)]
ORDER_LINES = {row["id"]: _lines(row["id"], i) for i, row in enumerate(ORDERS, 1)}
del ORDER_LINES[ORDERS[8]["id"]][0]["quantity"]  # a line without it: the order is quarantined

INVOICE = {"id": "Edm.Guid", "number": "Edm.String", "invoiceDate": "Edm.Date",
           "dueDate": "Edm.Date", "customerId": "Edm.Guid", "customerNumber": "Edm.String",
           "status": "Edm.String", "totalAmountIncludingTax": "Edm.Decimal",
           "remainingAmount": "Edm.Decimal", "currencyCode": "Edm.String",
           "lastModifiedDateTime": "Edm.DateTimeOffset"}
INVOICE_STATUS = ["Draft", "Open", "Paid", "Canceled", "Corrective"]
INVOICES = [{"id": _guid("invoice", i), "number": f"INV-{2000 + i}",
             "invoiceDate": date(2024, 1, 10) + timedelta(days=2 * i),
             "dueDate": date(2024, 2, 10) + timedelta(days=2 * i),
             "customerId": CUSTOMERS[i % 4]["id"], "customerNumber": CUSTOMERS[i % 4]["number"],
             "status": INVOICE_STATUS[i % 5], "totalAmountIncludingTax": Decimal(f"{i * 95}.10"),
             "remainingAmount": Decimal("0") if i % 5 == 2 else Decimal(f"{i * 95}.10"),
             "currencyCode": "",
             "lastModifiedDateTime": START + timedelta(hours=17 * i)} for i in range(1, 9)]
INVOICE_LINES = {row["id"]: _lines(row["id"], i) for i, row in enumerate(INVOICES, 1)}
del INVOICE_LINES[INVOICES[7]["id"]][0]["description"]  # quarantined, like the order above


def business_central() -> list[EntitySet]:
    order_lines = EntitySet("salesOrderLines", "salesOrderLine", ["id"], LINE, [])
    invoice_lines = EntitySet("salesInvoiceLines", "salesInvoiceLine", ["id"], LINE, [])
    return [
        EntitySet("customers", "customer", ["id"], PARTY, CUSTOMERS),
        EntitySet("vendors", "vendor", ["id"], PARTY, VENDORS),
        EntitySet("items", "item", ["id"], ITEM, ITEMS),
        EntitySet("salesOrders", "salesOrder", ["id"], ORDER, ORDERS,
                  nav={"salesOrderLines": order_lines},
                  lines={"salesOrderLines": lambda row: ORDER_LINES[row["id"]]}),
        EntitySet("salesInvoices", "salesInvoice", ["id"], INVOICE, INVOICES,
                  nav={"salesInvoiceLines": invoice_lines},
                  lines={"salesInvoiceLines": lambda row: INVOICE_LINES[row["id"]]}),
    ]


# --- SAP S/4HANA (v2) -------------------------------------------------------------------------

PARTNER = {"BusinessPartner": "Edm.String", "BusinessPartnerCategory": "Edm.String",
           "BusinessPartnerFullName": "Edm.String", "FirstName": "Edm.String",
           "LastName": "Edm.String", "OrganizationBPName1": "Edm.String",
           "Industry": "Edm.String", "BusinessPartnerIsBlocked": "Edm.Boolean",
           "CreationDate": "Edm.DateTime", "LastChangeDate": "Edm.DateTime",
           "Customer": "Edm.String", "Supplier": "Edm.String", "SearchTerm1": "Edm.String",
           "BusinessPartnerUUID": "Edm.Guid"}
FIRST = ["Ann", "Bob", "Chloé", "D'Arcy", "Eve", "Fay"]
LAST = ["Smith", "Lee", "O'Neil", "Ng", "Müller", "Park"]


def _partner(i: int) -> dict[str, Any]:
    person = i % 2 == 1
    first, last = FIRST[i % 6], LAST[(i + 1) % 6]
    name = f"{first} {last}" if person else NAMES[i % len(NAMES)]
    midnight = datetime(2023, 11, 1, tzinfo=UTC) + timedelta(days=5 * i)
    return {
        "BusinessPartner": f"{1000000 + i}", "BusinessPartnerCategory": "1" if person else "2",
        "BusinessPartnerFullName": name, "FirstName": first if person else "",
        "LastName": last if person else "", "OrganizationBPName1": "" if person else name,
        "Industry": "" if person else ["Y001", "Y002"][i % 2],
        "BusinessPartnerIsBlocked": i % 7 == 0,
        "CreationDate": midnight, "LastChangeDate": midnight + timedelta(days=30 + i),
        "Customer": f"{1000000 + i}", "Supplier": "", "SearchTerm1": name[:20].upper(),
        "BusinessPartnerUUID": _guid("partner", i),
    }


PARTNERS = [_partner(i) for i in range(1, 17)]
PARTNERS[3]["BusinessPartnerFullName"] = ""  # an organisation without a name: quarantined
del PARTNERS[8]["FirstName"]  # a person the service sends without it: quarantined

SALES_ORDER = {"SalesOrder": "Edm.String", "SalesOrderType": "Edm.String",
               "SalesOrganization": "Edm.String", "SoldToParty": "Edm.String",
               "SalesOrderDate": "Edm.DateTime", "PurchaseOrderByCustomer": "Edm.String",
               "TotalNetAmount": "Edm.Decimal", "TransactionCurrency": "Edm.String",
               "OverallSDProcessStatus": "Edm.String",
               "LastChangeDateTime": "Edm.DateTimeOffset"}
SALES_ITEM = {"SalesOrder": "Edm.String", "SalesOrderItem": "Edm.String",
              "Material": "Edm.String", "SalesOrderItemText": "Edm.String",
              "RequestedQuantity": "Edm.Decimal", "NetAmount": "Edm.Decimal",
              "TransactionCurrency": "Edm.String"}
SALES_ORDERS = [{
    "SalesOrder": f"{5000000 + i}", "SalesOrderType": "OR", "SalesOrganization": "1710",
    "SoldToParty": PARTNERS[(2 * i + 1) % 16]["BusinessPartner"],
    "SalesOrderDate": datetime(2024, 4, 1, tzinfo=UTC) + timedelta(days=2 * i),
    "PurchaseOrderByCustomer": f"PO 'rush' #{i}" if i % 2 else f"PO-{i}",
    "TotalNetAmount": Decimal(f"{i * 250}.50"), "TransactionCurrency": ["EUR", "USD"][i % 2],
    "OverallSDProcessStatus": "ABC"[i % 3],
    "LastChangeDateTime": START + timedelta(hours=31 * i, seconds=i),
} for i in range(1, 10)]


def _items(order: dict[str, Any], i: int) -> list[dict[str, Any]]:
    # Item numbers are text: "100" sorts after "20" only when compared as numbers.
    return [{"SalesOrder": order["SalesOrder"], "SalesOrderItem": f"{n * 10 if n < 3 else 100}",
             "Material": f"MAT-{(i + n) % 5}", "SalesOrderItemText": f"Material {n} for {i}",
             "RequestedQuantity": Decimal(f"{n}.000"),
             "NetAmount": Decimal(f"{n * 100}.25"),
             "TransactionCurrency": order["TransactionCurrency"]}
            for n in range(i % 3 + 1, 0, -1)]


SALES_ITEMS = {row["SalesOrder"]: _items(row, i) for i, row in enumerate(SALES_ORDERS, 1)}
del SALES_ITEMS[SALES_ORDERS[7]["SalesOrder"]][0]["Material"]  # quarantined: an item without it
BROKEN_ORDER = SALES_ORDERS[7]["SalesOrder"]
BROKEN_PERSON = PARTNERS[8]["BusinessPartner"]


def sap() -> list[EntitySet]:
    items = EntitySet("A_SalesOrderItem", "A_SalesOrderItemType", ["SalesOrder",
                                                                     "SalesOrderItem"],
                      SALES_ITEM, [])
    return [
        EntitySet("A_BusinessPartner", "A_BusinessPartnerType", ["BusinessPartner"], PARTNER,
                  PARTNERS),
        EntitySet("A_SalesOrder", "A_SalesOrderType", ["SalesOrder"], SALES_ORDER,
                  SALES_ORDERS, nav={"to_Item": items},
                  lines={"to_Item": lambda row: SALES_ITEMS[row["SalesOrder"]]}),
    ]
