"""A Salesforce org in miniature: the REST shapes the connector relies on, served on 127.0.0.1.

It follows Salesforce's documented request and response shapes (REST API Developer Guide:
Query, Query More Results, sObject Rows, sObject Describe, Limit Info header, Status Codes and
Error Responses; OAuth 2.0 JWT Bearer Flow; SOQL and SOSL Reference): the query result envelope
(``totalSize``, ``done``, ``nextRecordsUrl``, ``records`` with ``attributes {type, url}``),
child subqueries as nested query results (null when there are no children), errors as a JSON
list of ``{message, errorCode}``, ``Sforce-Limit-Info`` on every data response.

SOQL is parsed and evaluated for the subset the connector emits, with Salesforce's rules where
they matter to correctness: string escapes exactly as documented (an unknown escape is a
MALFORMED_QUERY), literals type-checked against the field (a quoted datetime is an error), text
compared case-insensitively (ASCII only: the weakest folding a real org could do), ``!=``
matching nulls, ``LIKE`` with ``%``/``_`` and their escapes, ``NULLS FIRST`` by default.

The token endpoint verifies JWT-bearer assertions with authlib against the test's public key,
and also takes refresh-token grants. ``Org.faults`` switches on the bad behaviours the tests
need (a page of HTML, a repeating or foreign nextRecordsUrl, a 200 with an error list, a record
without a field, a session that expires mid-read).
"""

from __future__ import annotations

import itertools
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from authlib.jose import JoseError, jwt
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

VERSION = "62.0"
CLIENT_ID = "3MVG9-patchbay-consumer-key"
USERNAME = "integration@acme.example"
AUDIENCE = "https://login.salesforce.com"
REFRESH_TOKEN = "5Aep861-refresh-n3ver-l0gged"
PAGE = 3  # records per query page, whatever batchSize asks (the real minimum is 200)
CHILD_PAGE = 2  # child records per subquery batch
START = datetime(2024, 1, 1, tzinfo=UTC)


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- the objects ------------------------------------------------------------------------------

TEXT = {"id", "string", "reference", "picklist", "textarea", "phone", "url", "email"}
SCHEMA: dict[str, dict[str, str]] = {
    "Account": {"Id": "id", "Name": "string", "Website": "url", "Phone": "phone",
                "Industry": "picklist", "Type": "picklist", "AccountNumber": "string",
                "BillingStreet": "textarea", "BillingCity": "string", "BillingState": "string",
                "BillingPostalCode": "string", "BillingCountry": "string",
                "AnnualRevenue": "currency", "NumberOfEmployees": "int", "IsDeleted": "boolean",
                "CreatedDate": "datetime", "SystemModstamp": "datetime"},
    "Contact": {"Id": "id", "FirstName": "string", "LastName": "string", "Email": "email",
                "Phone": "phone", "MobilePhone": "phone", "Title": "string",
                "AccountId": "reference", "MailingStreet": "textarea", "MailingCity": "string",
                "MailingState": "string", "MailingPostalCode": "string",
                "MailingCountry": "string", "CreatedDate": "datetime",
                "SystemModstamp": "datetime"},
    "Opportunity": {"Id": "id", "Name": "string", "Amount": "currency",
                    "StageName": "picklist", "Probability": "percent", "CloseDate": "date",
                    "AccountId": "reference", "ContactId": "reference", "OwnerId": "reference",
                    "SystemModstamp": "datetime"},
    "Case": {"Id": "id", "Subject": "string", "Description": "textarea", "Status": "picklist",
             "Priority": "picklist", "ContactId": "reference", "AccountId": "reference",
             "CaseNumber": "string", "CreatedDate": "datetime", "ClosedDate": "datetime",
             "SystemModstamp": "datetime"},
    "Product2": {"Id": "id", "Name": "string", "ProductCode": "string",
                 "Description": "textarea", "IsActive": "boolean", "Family": "picklist",
                 "SystemModstamp": "datetime"},
    "Order": {"Id": "id", "OrderNumber": "string", "AccountId": "reference",
              "Status": "picklist", "EffectiveDate": "date", "TotalAmount": "currency",
              "SystemModstamp": "datetime"},
    "OrderItem": {"Id": "id", "OrderId": "reference", "Product2Id": "reference",
                  "OrderItemNumber": "string", "Description": "textarea",
                  "Quantity": "double", "UnitPrice": "currency", "TotalPrice": "currency",
                  "SystemModstamp": "datetime"},
}
# parent object -> child relationship name -> (child object, the child's field naming the parent)
RELATIONSHIPS = {"Order": {"OrderItems": ("OrderItem", "OrderId")}}
# object -> parent relationship name -> (parent object, the object's field holding its Id)
PARENTS = {name: {"Account": ("Account", "AccountId")}
           for name in ("Contact", "Opportunity", "Case", "Order")}
PREFIX = {"Account": "001", "Contact": "003", "Opportunity": "006", "Case": "500",
          "Product2": "01t", "Order": "801", "OrderItem": "802"}


def sf_id(sobject: str, n: int) -> str:
    return f"{PREFIX[sobject]}{n:012d}AAB"  # 18 characters, as the API returns them


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _modstamp(i: int, count: int) -> str:
    # Not in Id order, and in pairs sharing one stamp: the keyset needs its Id tie-break.
    return stamp(START + timedelta(hours=((i * 7) % count) // 2 * 5))


NAMES = ["Acme Corp", "O'Brien & Sons", "Zürich Straße AG", "50% Off_Ltd", "Back\\slash Ltd",
         "Line\nBreak Inc", "  Padded Name  ", "ACME corp", "Ünïcødé 株式会社", "' OR Id != null",
         "Globex", "Initech"]
INDUSTRIES = ["Technology", "Retail", None, "Finance"]
TYPES = ["Prospect", "Customer - Direct", "Customer - Channel", "Other"]


def build_data() -> dict[str, list[dict[str, Any]]]:
    accounts = []
    for i, name in enumerate(NAMES, start=1):
        accounts.append({
            "Id": sf_id("Account", i), "Name": name, "Website": f"https://a{i}.example",
            "Phone": f"+44 20 7946 0{i:03d}" if i % 3 else None,
            "Industry": INDUSTRIES[i % 4], "Type": TYPES[i % 4], "AccountNumber": f"AC-{i:04d}",
            "BillingStreet": f"{i} High Street", "BillingCity": "London" if i % 2 else "Paris",
            "BillingState": None, "BillingPostalCode": f"N{i} 1AA",
            "BillingCountry": "United Kingdom" if i % 2 else "France",
            "AnnualRevenue": 1000.5 * i, "NumberOfEmployees": 10 * i, "IsDeleted": False,
            "CreatedDate": stamp(START - timedelta(days=i)),
            "SystemModstamp": _modstamp(i, len(NAMES) + 1),
        })
    accounts.append({**accounts[0], "Id": sf_id("Account", 99), "Name": None,
                     "SystemModstamp": stamp(START)})  # no Name: quarantined
    contacts = []
    for i in range(1, 15):
        contacts.append({
            "Id": sf_id("Contact", i), "FirstName": ["Ann", "Bob", "Zoë", None][i % 4],
            "LastName": f"Smith{i}", "Email": f"Person{i}@Acme.example" if i % 5 else None,
            "Phone": "020 7946 0018", "MobilePhone": None, "Title": "Buyer" if i % 2 else "CFO",
            "AccountId": sf_id("Account", i % 6 + 1) if i % 7 else None,
            "MailingStreet": "1 Main St", "MailingCity": "Leeds", "MailingState": None,
            "MailingPostalCode": "LS1", "MailingCountry": "GB",
            "CreatedDate": stamp(START - timedelta(days=30 + i)),
            "SystemModstamp": _modstamp(i, 15),
        })
    stages = ["Prospecting", "Closed Won", "Closed Lost", "Negotiation/Review"]
    opportunities = [{
        "Id": sf_id("Opportunity", i), "Name": f"Deal {i}", "Amount": 1250.5 * i if i % 4 else None,
        "StageName": stages[i % 4], "Probability": [10.0, 100.0, 0.0, 75.0][i % 4],
        "CloseDate": (date(2024, 3, 1) + timedelta(days=9 * i)).isoformat(),
        "AccountId": sf_id("Account", i % 5 + 1), "ContactId": sf_id("Contact", i),
        "OwnerId": "005000000000001AAB", "SystemModstamp": _modstamp(i, 11),
    } for i in range(1, 11)]
    opportunities.append({**opportunities[0], "Id": sf_id("Opportunity", 99), "Name": None,
                          "SystemModstamp": stamp(START)})  # no Name: quarantined
    statuses = ["New", "Working", "Escalated", "Closed", "On Hold"]
    cases = [{
        "Id": sf_id("Case", i), "Subject": f"Printer {i} jammed" if i != 4 else None,
        "Description": "It's broken\nagain", "Status": statuses[i % 5],
        "Priority": ["Low", "Medium", "High"][i % 3], "ContactId": sf_id("Contact", i),
        "AccountId": sf_id("Account", i % 4 + 1), "CaseNumber": f"{i:08d}",
        "CreatedDate": stamp(START + timedelta(days=i)),
        "ClosedDate": stamp(START + timedelta(days=i + 2)) if statuses[i % 5] == "Closed" else None,
        "SystemModstamp": _modstamp(i, 9),
    } for i in range(1, 9)]
    products = [{
        "Id": sf_id("Product2", i), "Name": f"Widget {i}", "ProductCode": f"W-{i:03d}",
        "Description": None, "IsActive": i % 3 != 0, "Family": "Hardware",
        "SystemModstamp": _modstamp(i, 7),
    } for i in range(1, 7)]
    products.append({**products[0], "Id": sf_id("Product2", 99), "Name": " ",
                     "SystemModstamp": stamp(START)})  # a blank Name: quarantined
    orders, items = [], []
    number = itertools.count(1)
    for i in range(1, 8):
        order_id = sf_id("Order", i)
        total = 0.0
        for j in range(1, i % 4 + 1):  # 1..3 lines, and order 3 and 7 with 3+ (child paging)
            n = next(number)
            quantity, price = float(j), 9.5 * i
            total += quantity * price
            items.append({
                "Id": sf_id("OrderItem", n), "OrderId": order_id,
                "Product2Id": sf_id("Product2", j), "OrderItemNumber": f"{n:010d}",
                "Description": f"Line {j}", "Quantity": quantity, "UnitPrice": price,
                "TotalPrice": quantity * price, "SystemModstamp": stamp(START),
            })
        orders.append({
            "Id": order_id, "OrderNumber": f"{i:08d}", "AccountId": sf_id("Account", i % 3 + 1),
            "Status": "Activated" if i % 2 else "Draft",
            "EffectiveDate": (date(2024, 2, 1) + timedelta(days=i)).isoformat(),
            "TotalAmount": total, "SystemModstamp": _modstamp(i, 8),
        })
    orders.append({"Id": sf_id("Order", 50), "OrderNumber": "00000050",
                   "AccountId": sf_id("Account", 1), "Status": "Draft",
                   "EffectiveDate": "2024-02-20", "TotalAmount": 0.0,
                   "SystemModstamp": stamp(START)})  # an order without lines: null subquery
    return {"Account": accounts, "Contact": contacts, "Opportunity": opportunities,
            "Case": cases, "Product2": products, "Order": orders, "OrderItem": items}


# --- SOQL ---------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op>!=|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
""", re.VERBOSE | re.DOTALL)
_ESCAPE = {"n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t", "b": "\b",
           "B": "\b", "f": "\f", "F": "\f", '"': '"', "'": "'", "\\": "\\"}


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str


def tokenize(text: str) -> list[Tok]:
    tokens, at = [], 0
    while at < len(text):
        found = _TOKEN.match(text, at)
        if found is None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected character at {at}")
        kind = found.lastgroup or ""
        if kind != "ws":
            tokens.append(Tok(kind, found.group()))
        at = found.end()
    return tokens


@dataclass(frozen=True)
class Like:
    """A decoded LIKE pattern: ``parts`` are literal text or the wildcards ``%``/``_``."""

    parts: tuple[tuple[str, str], ...]  # (kind, text): ("text", "abc") | ("any", "") | ("one", "")

    def regex(self) -> re.Pattern[str]:
        out = []
        for kind, text in self.parts:
            out.append(".*" if kind == "any" else "." if kind == "one" else re.escape(text))
        return re.compile("".join(out), re.DOTALL | re.IGNORECASE | re.ASCII)

    def matches(self, value: str) -> bool:
        return self.regex().fullmatch(value) is not None


def decode_string(token: str, *, like: bool = False) -> str | Like:
    """A quoted SOQL string as Salesforce documents its escapes; anything else is an error."""
    body = token[1:-1]
    if any(ord(c) < 0x20 for c in body):  # stricter than needed: patchbay escapes them all
        raise SoqlError("MALFORMED_QUERY", "a raw control character in a string")
    parts: list[tuple[str, str]] = []
    text: list[str] = []

    def flush() -> None:
        if text:
            parts.append(("text", "".join(text)))
            text.clear()

    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\":
            nxt = body[i + 1] if i + 1 < len(body) else ""
            if nxt in _ESCAPE:
                text.append(_ESCAPE[nxt])
                i += 2
            elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[i + 2:i + 6]):
                text.append(chr(int(body[i + 2:i + 6], 16)))
                i += 6
            elif like and nxt in "%_":
                text.append(nxt)
                i += 2
            else:
                raise SoqlError("MALFORMED_QUERY", f"invalid escape \\{nxt} in a string")
        elif like and char in "%_":
            flush()
            parts.append(("any" if char == "%" else "one", ""))
            i += 1
        else:
            text.append(char)
            i += 1
    if not like:
        return "".join(text)
    flush()
    return Like(tuple(parts))


@dataclass
class Cond:
    field: str
    op: str  # = != < <= > >= IN LIKE
    value: Any


@dataclass
class BoolOp:
    op: str  # AND OR NOT
    items: list[Any]


@dataclass
class Select:
    fields: list[str]
    sobject: str
    where: Any = None
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # field, desc, nulls_last
    limit: int | None = None
    subqueries: list[Select] = field(default_factory=list)


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.at = 0

    def peek(self, *words: str) -> bool:
        if self.at >= len(self.tokens):
            return False
        tok = self.tokens[self.at]
        return not words or tok.text.upper() in words

    def take(self, *words: str) -> Tok:
        if self.at >= len(self.tokens):
            raise SoqlError("MALFORMED_QUERY", f"unexpected end of query, expected {words}")
        tok = self.tokens[self.at]
        if words and tok.text.upper() not in words:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {tok.text[:20]}")
        self.at += 1
        return tok

    def parse(self) -> Select:
        select = self.select()
        if self.at != len(self.tokens):
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {self.tokens[self.at].text}")
        return select

    def select(self) -> Select:
        self.take("SELECT")
        fields: list[str] = []
        subs: list[Select] = []
        while True:
            if self.peek("("):
                self.take("(")
                subs.append(self.select())
                self.take(")")
            else:
                tok = self.take()
                if tok.kind != "name":
                    raise SoqlError("MALFORMED_QUERY", f"unexpected token: {tok.text}")
                fields.append(tok.text)
            if not self.peek(","):
                break
            self.take(",")
        self.take("FROM")
        query = Select(fields, self.take().text, subqueries=subs)
        if self.peek("WHERE"):
            self.take("WHERE")
            query.where = self.disjunction()
        if self.peek("ORDER"):
            self.take("ORDER")
            self.take("BY")
            while True:
                name = self.take().text
                desc = False
                if self.peek("ASC", "DESC"):
                    desc = self.take().text.upper() == "DESC"
                nulls_last = False
                if self.peek("NULLS"):
                    self.take("NULLS")
                    nulls_last = self.take("FIRST", "LAST").text.upper() == "LAST"
                query.order.append((name, desc, nulls_last))
                if not self.peek(","):
                    break
                self.take(",")
        if self.peek("LIMIT"):
            self.take("LIMIT")
            query.limit = int(self.take().text)
        return query

    def disjunction(self) -> Any:
        items = [self.conjunction()]
        while self.peek("OR"):
            self.take("OR")
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else BoolOp("OR", items)

    def conjunction(self) -> Any:
        items = [self.negation()]
        while self.peek("AND"):
            self.take("AND")
            items.append(self.negation())
        return items[0] if len(items) == 1 else BoolOp("AND", items)

    def negation(self) -> Any:
        if self.peek("NOT"):
            self.take("NOT")
            return BoolOp("NOT", [self.negation()])
        if self.peek("("):
            self.take("(")
            inner = self.disjunction()
            self.take(")")
            return inner
        name = self.take()
        if name.kind != "name":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {name.text[:20]}")
        if self.peek("IN"):
            self.take("IN")
            self.take("(")
            values = [self.value()]
            while self.peek(","):
                self.take(",")
                values.append(self.value())
            self.take(")")
            return Cond(name.text, "IN", values)
        if self.peek("LIKE"):
            self.take("LIKE")
            tok = self.take()
            if tok.kind != "string":
                raise SoqlError("MALFORMED_QUERY", "LIKE needs a quoted pattern")
            return Cond(name.text, "LIKE", decode_string(tok.text, like=True))
        op = self.take()
        if op.kind != "op":
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: {op.text[:20]}")
        return Cond(name.text, op.text, self.value())

    def value(self) -> Any:
        tok = self.take()
        if tok.kind == "string":
            return decode_string(tok.text)
        if tok.kind == "datetime":
            return datetime.fromisoformat(tok.text.replace("Z", "+00:00"))
        if tok.kind == "date":
            return date.fromisoformat(tok.text)
        if tok.kind == "number":
            return Decimal(tok.text)
        word = tok.text.lower()
        if word in ("true", "false"):
            return word == "true"
        if word == "null":
            return None
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: {tok.text[:20]}")


def parse(text: str) -> Select:
    return Parser(text).parse()


# --- evaluation ---------------------------------------------------------------------------------


def _field(sobject: str, name: str) -> str:
    """The field's API spelling (SOQL names are case-insensitive); ``Account.Name`` reaches
    through a parent relationship."""
    relation, _, rest = name.partition(".")
    if rest:
        for known, (parent, _key) in PARENTS.get(sobject, {}).items():
            if known.lower() == relation.lower():
                return f"{known}.{_field(parent, rest)}"
        raise SoqlError("INVALID_FIELD", f"Didn't understand relationship '{relation}' in "
                                         "field path.")
    for known in SCHEMA[sobject]:
        if known.lower() == name.lower():
            return known
    raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'. If you "
                                     "are attempting to use a custom field, be sure to append "
                                     "the '__c' after the custom field name.")


def _kind(sobject: str, name: str) -> str:
    relation, _, rest = name.partition(".")
    if rest:
        return _kind(PARENTS[sobject][relation][0], rest)
    return SCHEMA[sobject][name]


def _with_parents(row: dict[str, Any], sobject: str,
                  data: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The row plus ``Relation.Field`` keys of its parents, for WHERE and ORDER BY."""
    out = dict(row)
    for relation, (parent, key) in PARENTS.get(sobject, {}).items():
        found = next((p for p in data.get(parent, []) if p["Id"] == row.get(key)), None)
        for name in SCHEMA[parent]:
            out[f"{relation}.{name}"] = None if found is None else found.get(name)
    return out


def _typed(sobject: str, name: str, value: Any) -> Any:
    """A literal checked against the field's type, as Salesforce refuses mismatches."""
    kind = _kind(sobject, name)
    if value is None:
        return None
    ok = (
        (kind in TEXT and isinstance(value, str))
        or (kind == "datetime" and isinstance(value, datetime))
        or (kind == "date" and isinstance(value, date) and not isinstance(value, datetime))
        or (kind in ("double", "currency", "percent", "int") and isinstance(value, Decimal))
        or (kind == "boolean" and isinstance(value, bool))
    )
    if not ok:
        quoting = "be enclosed" if kind in TEXT else "not be enclosed"
        raise SoqlError("INVALID_FIELD", f"value of filter criterion for field '{name}' must "
                                         f"be of type {kind} and should {quoting} in quotes")
    return value


def _stored(sobject: str, name: str, value: Any) -> Any:
    kind = _kind(sobject, name)
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind in ("double", "currency", "percent", "int"):
        return Decimal(str(value))
    return value


def _fold(text: str) -> str:
    return text.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                        "abcdefghijklmnopqrstuvwxyz"))


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return _fold(left) == _fold(right)
    return bool(left == right)


def evaluate(node: Any, sobject: str, row: dict[str, Any]) -> bool:
    if isinstance(node, BoolOp):
        results = [evaluate(item, sobject, row) for item in node.items]
        if node.op == "NOT":
            return not results[0]
        return all(results) if node.op == "AND" else any(results)
    name = _field(sobject, node.field)
    have = _stored(sobject, name, row.get(name))
    if node.op == "LIKE":
        if _kind(sobject, name) not in TEXT:
            raise SoqlError("INVALID_FIELD", f"invalid operator on field '{name}'")
        return have is not None and node.value.matches(have)
    if node.op == "IN":
        values = [_typed(sobject, name, v) for v in node.value]
        return have is not None and any(_equal(have, v) for v in values)
    value = _typed(sobject, name, node.value)
    if node.op == "=":
        return have is None if value is None else have is not None and _equal(have, value)
    if node.op == "!=":
        return have is not None if value is None else have is None or not _equal(have, value)
    if have is None or value is None:
        return False
    if isinstance(have, str):
        have, value = _fold(have), _fold(value)
    return bool({"<": have < value, "<=": have <= value, ">": have > value,
                 ">=": have >= value}[node.op])


def run(query: Select, data: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    if query.sobject not in SCHEMA:
        raise SoqlError("INVALID_TYPE", f"sObject type '{query.sobject}' is not supported.")
    sobject = query.sobject
    names = [_field(sobject, f) for f in query.fields]
    rows = [_with_parents(r, sobject, data) for r in data[sobject]]
    rows = [r for r in rows if query.where is None or evaluate(query.where, sobject, r)]
    rows = _sorted(rows, sobject, query.order)
    if query.limit is not None:
        rows = rows[:query.limit]
    out = []
    for row in rows:
        record: dict[str, Any] = {"attributes": {
            "type": sobject, "url": f"/services/data/v{VERSION}/sobjects/{sobject}/{row['Id']}"}}
        for name in names:
            relation, _, rest = name.partition(".")
            if not rest:
                record[name] = row.get(name)
                continue
            parent, key = PARENTS[sobject][relation]
            if row.get(key) is None:  # no parent: the relationship is null
                record[relation] = None
                continue
            nested = record.get(relation) or {"attributes": {
                "type": parent, "url": f"/services/data/v{VERSION}/sobjects/{parent}/{row[key]}"}}
            nested[rest] = row.get(name)
            record[relation] = nested
        for sub in query.subqueries:
            relation = RELATIONSHIPS.get(sobject, {}).get(sub.sobject)
            if relation is None:
                raise SoqlError("INVALID_TYPE", f"Didn't understand relationship "
                                                f"'{sub.sobject}' in FROM part of query call.")
            child, key = relation
            children = [c for c in data[child] if c[key] == row["Id"]]
            nested = Select(sub.fields, child, sub.where, sub.order, sub.limit)
            picked = {c["Id"] for c in children}
            result = [r for r in run(nested, {child: children}) if r["Id"] in picked]
            record[sub.sobject] = result  # paged by the app into a nested query result
        out.append(record)
    return out


def _sorted(rows: list[dict[str, Any]], sobject: str,
            order: list[tuple[str, bool, bool]]) -> list[dict[str, Any]]:
    for name, desc, nulls_last in reversed(order):
        api = _field(sobject, name)
        present = [r for r in rows if r.get(api) is not None]
        absent = [r for r in rows if r.get(api) is None]
        present.sort(key=lambda r, api=api: _stored(sobject, api, r[api]), reverse=desc)
        rows = present + absent if nulls_last else absent + present
    return rows


# --- the org ------------------------------------------------------------------------------------


@dataclass
class Org:
    public_key: bytes
    url: str = ""
    other_origin: str = "http://127.0.0.1:1"
    data: dict[str, list[dict[str, Any]]] = field(default_factory=build_data)
    tokens: set[str] = field(default_factory=set)
    token_grants: list[str] = field(default_factory=list)  # grant types, in order
    queries: list[str] = field(default_factory=list)  # every SOQL received
    requests: list[str] = field(default_factory=list)  # every data path requested
    cursors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    used: int = 0
    limit: int = 15000
    faults: set[str] = field(default_factory=set)

    def reset(self) -> None:
        self.faults.clear()
        self.queries.clear()
        self.requests.clear()
        self.token_grants.clear()
        self.used = 0
        self.limit = 15000

    # --- query results ---------------------------------------------------------------------

    def _page(self, locator: str, offset: int, size: int) -> dict[str, Any]:
        rows = self.cursors[locator]
        chunk = [self._children(r) for r in rows[offset:offset + size]]
        done = offset + size >= len(rows)
        body: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": chunk}
        if not done:
            body["nextRecordsUrl"] = f"/services/data/v{VERSION}/query/{locator}-{offset + size}"
        return body

    def _children(self, record: dict[str, Any]) -> dict[str, Any]:
        out = dict(record)
        for key, value in record.items():
            if isinstance(value, list):  # a subquery's rows
                if not value:
                    out[key] = None
                else:
                    child = self._locator(value)
                    out[key] = self._page(child, 0, CHILD_PAGE)
        return out

    def _locator(self, rows: list[dict[str, Any]]) -> str:
        locator = "01g" + uuid.uuid4().hex[:15]
        self.cursors[locator] = rows
        return locator

    def query(self, soql: str, batch_size: int | None) -> dict[str, Any]:
        self.queries.append(soql)
        rows = run(parse(soql), self.data)
        if "drop_field" in self.faults and rows and "Phone" in rows[0]:
            del rows[0]["Phone"]
        locator = self._locator(rows)
        return self._page(locator, 0, min(PAGE, batch_size or PAGE))

    def more(self, locator: str, offset: int) -> dict[str, Any]:
        if locator not in self.cursors:
            raise SoqlError("INVALID_QUERY_LOCATOR", "invalid query locator")
        rows = self.cursors[locator]
        size = CHILD_PAGE if rows and rows[0]["attributes"]["type"] == "OrderItem" else PAGE
        return self._page(locator, offset, size)


def _errors(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


def build_app(org: Org) -> FastAPI:
    app = FastAPI()
    base = f"/services/data/v{VERSION}"

    @app.post("/services/oauth2/token")
    async def token(request: Request) -> Response:
        form = await request.form()
        grant = str(form.get("grant_type"))
        org.token_grants.append(grant)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = jwt.decode(str(form.get("assertion")), org.public_key)
                claims.validate(now=int(time.time()))
            except (JoseError, ValueError):
                return JSONResponse({"error": "invalid_grant",
                                     "error_description": "invalid assertion"}, 400)
            expected = {"iss": CLIENT_ID, "sub": USERNAME, "aud": AUDIENCE}
            if any(claims.get(k) != v for k, v in expected.items()) or "exp" not in claims:
                return JSONResponse({"error": "invalid_grant",
                                     "error_description": "user hasn't approved this consumer"},
                                    400)
        elif grant == "refresh_token":
            if form.get("refresh_token") != REFRESH_TOKEN or form.get("client_id") != CLIENT_ID:
                return JSONResponse({"error": "invalid_grant",
                                     "error_description": "expired access/refresh token"}, 400)
        else:
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        access = "00D000000000001!" + uuid.uuid4().hex
        org.tokens.add(access)
        # Salesforce answers without expires_in; instance_url names the org's API host.
        return JSONResponse({"access_token": access, "instance_url": org.url,
                             "id": f"{org.url}/id/00D000000000001/005000000000001",
                             "token_type": "Bearer", "scope": "api",
                             "issued_at": str(int(time.time() * 1000))})

    @app.middleware("http")
    async def session(request: Request, call_next: Any) -> Response:
        if not request.url.path.startswith("/services/data/"):
            response: Response = await call_next(request)
            return response
        org.requests.append(request.url.path)
        header = request.headers.get("authorization", "")
        given = header.removeprefix("Bearer ")
        if "expire_once" in org.faults and "/query/" in request.url.path:
            org.faults.discard("expire_once")
            org.tokens.discard(given)  # the session times out between two pages
        if not header.startswith("Bearer ") or given not in org.tokens:
            return _errors("INVALID_SESSION_ID", "Session expired or invalid", 401)
        org.used += 1
        response = await call_next(request)
        response.headers["Sforce-Limit-Info"] = f"api-usage={org.used}/{org.limit}"
        return response

    def answer(body: Any, status: int = 200) -> Response:
        return JSONResponse(body, status_code=status)

    @app.get(f"{base}/")
    async def resources() -> Response:
        return answer({"query": f"{base}/query", "sobjects": f"{base}/sobjects"})

    @app.get(f"{base}/query")
    async def query(request: Request, q: str) -> Response:
        if "error_200" in org.faults:
            return _errors("QUERY_TIMEOUT", "Your query request was running for too long.", 200)
        options = request.headers.get("sforce-query-options", "")
        found = re.search(r"batchSize=(\d+)", options)
        try:
            body = org.query(q, int(found.group(1)) if found else None)
        except SoqlError as exc:
            # As Salesforce does: the query echoed (values and all), a caret, the row and column.
            return _errors(exc.code, f"\n{q}\n^\nERROR at Row:1:Column:8\n{exc.message}", 400)
        if "repeat_locator" in org.faults and not body["done"]:
            body["nextRecordsUrl"] = f"{base}/query/repeat-0"
        if "foreign_next" in org.faults and not body["done"]:
            body["nextRecordsUrl"] = f"{org.other_origin}{body['nextRecordsUrl']}"
        return answer(body)

    @app.get(f"{base}/query/{{locator}}")
    async def more(locator: str) -> Response:
        if "html_page" in org.faults:
            return HTMLResponse("<html><body>Service Unavailable for maintenance</body></html>")
        if "html_503" in org.faults:
            return HTMLResponse("<html><body>Down for maintenance</body></html>", 503)
        if "expire_locators" in org.faults:
            org.faults.discard("expire_locators")
            org.cursors.clear()  # the caller paused for more than 15 minutes
        if locator == "repeat-0":
            return answer({"totalSize": 9, "done": False, "records": [],
                           "nextRecordsUrl": f"{base}/query/repeat-0"})
        name, _, offset = locator.rpartition("-")
        try:
            return answer(org.more(name, int(offset)))
        except SoqlError as exc:
            return _errors(exc.code, exc.message, 400)

    @app.get(f"{base}/sobjects/{{sobject}}/describe")
    async def describe(sobject: str) -> Response:
        if sobject not in SCHEMA:
            return _errors("NOT_FOUND", "The requested resource does not exist", 404)
        return answer({"name": sobject, "fields": [
            {"name": n, "type": t, "nillable": n != "Id",
             "relationshipName": next((r for r, (_, k) in PARENTS.get(sobject, {}).items()
                                       if k == n), None)}
            for n, t in SCHEMA[sobject].items()]})

    @app.get(f"{base}/sobjects/{{sobject}}/{{ident}}")
    async def row(sobject: str, ident: str, fields: str = "") -> Response:
        if sobject not in SCHEMA:
            return _errors("NOT_FOUND", "The requested resource does not exist", 404)
        for record in org.data[sobject]:
            if record["Id"] == ident:
                try:
                    names = [_field(sobject, f) for f in fields.split(",") if f]
                except SoqlError as exc:
                    return _errors(exc.code, exc.message, 400)
                names = names or list(SCHEMA[sobject])
                out: dict[str, Any] = {"attributes": {"type": sobject,
                                                      "url": f"{base}/sobjects/{sobject}/{ident}"}}
                out.update({n: record.get(n) for n in names})
                return answer(out)
        return _errors("NOT_FOUND", "The requested resource does not exist", 404)

    return app
