"""A handler app following Xero's documented request and response shapes, for semantics tests.

What it does like Xero (developer.xero.com, "Requests and responses", the Accounting API):
``Authorization: Bearer`` and ``xero-tenant-id`` checked (401 / 403 with Xero's problem body);
``page`` from 1 and ``pageSize`` on Contacts and Invoices with a ``pagination`` object, Items
unpaged; ``If-Modified-Since`` (UTC, to the second) on ``UpdatedDateUTC``; ``where`` evaluated
for the subset the connector emits (``Path==literal`` with ``"..."`` strings whose ``""`` is one
quote, ``Guid("...")``, ``true``/``false``, integers; ``AND``, ``OR``, parentheses; strings
compared case-insensitively as Xero does), a 400 ``QueryParseException`` for anything else;
``/Date(ms+0000)/`` dates. Knobs for the bad-input tests: ``mode`` makes every list answer HTML,
an envelope without records, the same page whatever ``page`` says, or one 429 first.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

TOKEN = "xero-access-t0ken-never-shown"
TENANTS = {"": "7d8f7b5c-0000-4000-8000-00000000d3f0",
           "acme": "11111111-2222-4333-8444-555555555555",
           "globex": "99999999-8888-4777-8666-555555555555"}
START = datetime(2024, 3, 1, tzinfo=UTC)
QUOTED_NAME = 'Acme "Best" Ltd'


def xero_date(moment: datetime) -> str:
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def _guid(kind: str, i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-test/{kind}/{i}"))


def contact(i: int) -> dict[str, Any]:
    return {
        "ContactID": _guid("contact", i),
        "ContactStatus": "ARCHIVED" if i % 9 == 0 else "ACTIVE",
        "Name": QUOTED_NAME if i == 4 else f"Company {i:02d}",
        "FirstName": f"First{i}",
        "LastName": f"Last{i}",
        "EmailAddress": f"person{i}@company{i}.example",
        "TaxNumber": f"GB{100000 + i}",
        "Addresses": [
            {"AddressType": "STREET", "City": "", "Region": "", "PostalCode": "", "Country": ""},
            {"AddressType": "POBOX", "AddressLine1": f"{i} High Street", "City": "London",
             "Region": "", "PostalCode": f"N{i} 1AA", "Country": "United Kingdom"},
        ],
        "Phones": [
            {"PhoneType": "DEFAULT", "PhoneNumber": f"7946 {i:04d}", "PhoneAreaCode": "020",
             "PhoneCountryCode": "44"},
            {"PhoneType": "MOBILE", "PhoneNumber": "", "PhoneAreaCode": "",
             "PhoneCountryCode": ""},
        ],
        "UpdatedDateUTC": xero_date(START + timedelta(hours=5 * i)),
        "IsCustomer": True,
        "ContactPersons": [],
        "HasAttachments": False,
    }


CONTACTS = [contact(i) for i in range(1, 25)]
# A contact without a Name: a company needs one, so this row is quarantined (not dropped).
NAMELESS = contact(25)
del NAMELESS["Name"]
CONTACTS.insert(12, NAMELESS)


def invoice(i: int) -> dict[str, Any]:
    lines = []
    for n in range(1, i % 3 + 2):
        lines.append({"LineItemID": _guid(f"line{i}", n), "Description": f"Widget {n}",
                      "Quantity": float(n), "UnitAmount": 10.0 * n, "LineAmount": 10.0 * n * n,
                      "ItemCode": f"W-{n}", "Item": {"ItemID": _guid("item", n),
                                                     "Code": f"W-{n}", "Name": f"Widget {n}"},
                      "AccountCode": "200", "TaxType": "OUTPUT2", "TaxAmount": 0.0})
    total = sum(line["LineAmount"] for line in lines)
    statuses = ("DRAFT", "AUTHORISED", "PAID", "VOIDED", "SUBMITTED")
    day = START + timedelta(days=i)
    return {
        "Type": "ACCPAY" if i % 5 == 0 else "ACCREC",
        "InvoiceID": _guid("invoice", i),
        "InvoiceNumber": f"INV-{i:04d}",
        "Contact": {"ContactID": CONTACTS[i % 20]["ContactID"], "Name": "x"},
        "Date": xero_date(day.replace(hour=0)),
        "DateString": day.strftime("%Y-%m-%dT00:00:00"),
        "DueDate": xero_date(day + timedelta(days=30)),
        "Status": statuses[i % 5],
        "LineAmountTypes": "Exclusive",
        "LineItems": lines,
        "SubTotal": total, "TotalTax": 0.0, "Total": total,
        "AmountDue": 0.0 if i % 5 == 2 else total, "AmountPaid": 0.0,
        "CurrencyCode": "GBP" if i % 2 else "NZD",
        "UpdatedDateUTC": xero_date(START + timedelta(hours=3 * i, seconds=17)),
    }


INVOICES = [invoice(i) for i in range(1, 31)]
ITEMS = [{"ItemID": _guid("item", n), "Code": f"W-{n}", "Name": f"Widget {n}",
          "Description": f"The widget number {n}", "IsSold": n != 3, "IsPurchased": True,
          "SalesDetails": {"UnitPrice": 10.0 * n, "AccountCode": "200"},
          "UpdatedDateUTC": xero_date(START + timedelta(days=n))} for n in range(1, 6)]
DATASETS = {"Contacts": CONTACTS, "Invoices": INVOICES, "Items": ITEMS}


# --- where ------------------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*(?:(?P<str>"(?:[^"]|"")*")|(?P<guid>Guid\("[0-9a-fA-F-]{36}"\))'
                    r"|(?P<op>==|\(|\))|(?P<word>[A-Za-z][A-Za-z0-9.]*)|(?P<num>-?\d+))")


class WhereError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise WhereError(f"Syntax error at position {pos}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _value(kind: str, token: str) -> Any:
    if kind == "str":
        return token[1:-1].replace('""', '"')
    if kind == "guid":
        return token[6:-2].lower()
    if kind == "num":
        return int(token)
    if token in ("true", "false"):
        return token == "true"
    raise WhereError(f"Expression expected, got {token!r}")


def _lookup(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):  # a field left out of the JSON is null at Xero
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _equal(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, str) and isinstance(actual, str):
        return actual.lower() == wanted.lower()
    return bool(actual == wanted)


def compile_where(text: str) -> Any:
    tokens = _tokens(text)
    pos = 0

    def peek() -> tuple[str, str] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal pos
        if pos >= len(tokens):
            raise WhereError("Unexpected end of expression")
        pos += 1
        return tokens[pos - 1]

    def expr() -> Any:
        left = term()
        while peek() == ("word", "OR"):
            take()
            right, first = term(), left
            left = lambda row, a=first, b=right: a(row) or b(row)  # noqa: E731
        return left

    def term() -> Any:
        left = factor()
        while peek() == ("word", "AND"):
            take()
            right, first = factor(), left
            left = lambda row, a=first, b=right: a(row) and b(row)  # noqa: E731
        return left

    def factor() -> Any:
        kind, token = take()
        if token == "(":
            inner = expr()
            if take()[1] != ")":
                raise WhereError("')' expected")
            return inner
        if kind != "word":
            raise WhereError(f"Expression expected at {token!r}")
        if take() != ("op", "=="):
            raise WhereError("Only == is understood by this test server")
        wanted = _value(*take())
        return lambda row: _equal(_lookup(row, token), wanted)

    tree = expr()
    if pos != len(tokens):
        raise WhereError(f"Syntax error at {tokens[pos][1]!r}")
    return tree


# --- the app ----------------------------------------------------------------------------------


class XeroState:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []  # path, params, headers of every request
        self.mode = "normal"  # normal | html | no_records | ignore_page | throttle_once
        self.throttled = False

    def app(self) -> FastAPI:
        app = FastAPI()

        def problem(status: int, title: str, detail: str) -> JSONResponse:
            return JSONResponse({"Type": None, "Title": title, "Status": status,
                                 "Detail": detail}, status_code=status)

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Response:
            self.requests.append({"path": request.url.path,
                                  "params": dict(request.query_params),
                                  "headers": dict(request.headers)})
            if request.headers.get("authorization") != f"Bearer {TOKEN}":
                return problem(401, "Unauthorized", "AuthenticationUnsuccessful")
            if request.headers.get("xero-tenant-id") not in TENANTS.values():
                return problem(403, "Forbidden", "AuthenticationUnsuccessful")
            if self.mode == "throttle_once" and not self.throttled:
                self.throttled = True
                return JSONResponse({"Title": "Too Many Requests"}, status_code=429,
                                    headers={"Retry-After": "0"})
            response: Response = await call_next(request)
            return response

        @app.get("/api.xro/2.0/Organisation")
        async def organisation(request: Request) -> dict[str, Any]:
            return {"Status": "OK", "Organisations": [
                {"Name": "Test Org", "OrganisationID": request.headers["xero-tenant-id"]}]}

        @app.get("/api.xro/2.0/{endpoint}")
        async def listing(request: Request, endpoint: str) -> Response:
            if endpoint not in DATASETS:
                return problem(404, "Not Found", "The resource you're looking for cannot be found")
            if self.mode == "html":
                return HTMLResponse("<html><body>Xero is down for maintenance</body></html>")
            q = request.query_params
            rows = DATASETS[endpoint]
            tenant = request.headers["xero-tenant-id"]
            if tenant == TENANTS["globex"]:
                rows = rows[:3]  # another organisation, other data
            if "where" in q:
                try:
                    test = compile_where(q["where"])
                    rows = [r for r in rows if test(r)]
                except WhereError as exc:
                    return JSONResponse({"ErrorNumber": 16, "Type": "QueryParseException",
                                         "Message": str(exc)}, status_code=400)
            since_text = request.headers.get("if-modified-since")
            if since_text:
                since = datetime.fromisoformat(since_text.replace("Z", "+00:00"))
                rows = [r for r in rows if _ms(r["UpdatedDateUTC"]) >= since]
            body: dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK",
                                    "ProviderName": "patchbay tests",
                                    "DateTimeUTC": xero_date(datetime.now(UTC))}
            if endpoint in ("Contacts", "Invoices") and "page" in q:
                page, size = int(q["page"]), min(int(q.get("pageSize", "100")), 1000)
                if self.mode == "ignore_page":
                    page = 1
                count = max(1, -(-len(rows) // size))
                body["pagination"] = {"page": page, "pageSize": size, "pageCount": count,
                                      "itemCount": len(rows)}
                rows = rows[(page - 1) * size:page * size]
            if self.mode == "no_records":
                return JSONResponse(body)
            body[endpoint] = rows
            return JSONResponse(body)

        return app


def _ms(text: str) -> datetime:
    match = re.match(r"/Date\((\d+)", text)
    assert match
    return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC)
