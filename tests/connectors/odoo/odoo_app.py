"""A handler app following Odoo's documented external JSON-RPC API, for semantics tests.

Like Odoo (odoo.com/documentation, "External API"): one ``POST /jsonrpc`` with ``{"jsonrpc":
"2.0", "method": "call", "params": {"service", "method", "args"}}``; ``common.login`` answers the
uid or ``false``; ``object.execute_kw(db, uid, password, model, method, args, kwargs)`` runs
``search_read`` (domain in prefix notation with ``&``, ``|``, ``!`` and the operators ``=``,
``!=``, ``in``, ``not in``, ``<``, ``<=``, ``>``, ``>=``, ``like``, ``ilike``; ``fields``,
``offset``, ``limit``, ``order``) and ``fields_get``. Many2one values come back as ``[id,
"name"]``, empty fields as ``false``, datetimes as UTC ``"YYYY-MM-DD HH:MM:SS"``. Every failure
is HTTP 200 with an ``error`` body (``AccessDenied`` for a wrong password, ``ValueError`` for an
unknown field), as Odoo does. ``mode`` switches on the bad answers of the bad-input tests.
"""

from __future__ import annotations

import operator
import re
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

DATABASE = "acme-prod"
LOGIN = "integration@acme.example"
API_KEY = "0d00-ap1-k3y-n3ver-l0gged"
UID = 7
START = datetime(2024, 5, 1, 8, 0, 0)

NAMES: dict[str, dict[int, str]] = {
    "res.currency": {1: "EUR", 2: "USD"},
    "res.country": {1: "Belgium", 2: "United Kingdom"},
    "res.country.state": {1: "Brussels", 2: "Greater London"},
    "res.partner.industry": {1: "Manufacturing", 2: "Retail"},
}


def stamp(hours: int) -> str:
    return (START + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")


def _partners() -> list[dict[str, Any]]:
    rows = []
    for i in range(1, 9):
        rows.append({"id": i, "name": f"Company {i}" if i != 3 else "O'Brien & \"Sons\"",
                     "is_company": True, "email": f"info@company{i}.example",
                     "phone": f"+32 2 555 01 {i:02d}", "mobile": False, "function": False,
                     "vat": f"BE0{400000000 + i}", "website": f"https://company{i}.example",
                     "street": f"Rue {i}", "street2": False, "city": "Brussels",
                     "zip": f"10{i:02d}", "state_id": 1, "country_id": 1,
                     "industry_id": 1 + i % 2, "parent_id": False, "active": True,
                     "write_date": stamp(i // 3)})  # three share each write_date
    for i in range(9, 25):
        rows.append({"id": i, "name": f"Person {i}", "is_company": False,
                     "email": f"person{i}@company{1 + i % 8}.example",
                     "phone": False, "mobile": f"+44 7700 900{i:03d}", "function": "Buyer",
                     "vat": False, "website": False, "street": False, "street2": False,
                     "city": "London", "zip": False, "state_id": 2, "country_id": 2,
                     "industry_id": False, "parent_id": 1 + i % 8, "active": True,
                     "write_date": stamp(2 + i // 4)})
    return rows


def _orders() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    orders, lines = [], []
    states = ("draft", "sent", "sale", "done", "cancel")
    line_id = 100
    for i in range(1, 13):
        total = 0.0
        for n in range(1, i % 3 + 2):
            line_id += 1
            subtotal = 12.5 * n * n
            total += subtotal
            lines.append({"id": line_id, "order_id": i, "sequence": 10 * n,
                          "display_type": False, "product_id": n, "name": f"Widget {n}",
                          "product_uom_qty": float(n), "price_unit": 12.5 * n,
                          "price_subtotal": subtotal, "currency_id": 1 + i % 2,
                          "write_date": stamp(i)})
        line_id += 1
        lines.append({"id": line_id, "order_id": i, "sequence": 1, "display_type": "line_section",
                      "product_id": False, "name": "Section", "product_uom_qty": 0.0,
                      "price_unit": 0.0, "price_subtotal": 0.0, "currency_id": 1 + i % 2,
                      "write_date": stamp(i)})
        orders.append({"id": i, "name": f"S{i:05d}", "partner_id": 1 + i % 8,
                       "state": states[i % 5], "date_order": stamp(24 * i),
                       "amount_total": total, "currency_id": 1 + i % 2,
                       "write_date": stamp(30 - 2 * i), "order_line": []})
    for line in lines:
        orders[line["order_id"] - 1]["order_line"].append(line["id"])
    return orders, lines


def _moves() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    moves, lines = [], []
    line_id = 500
    for i in range(1, 16):
        kind = "in_invoice" if i % 4 == 0 else "out_invoice"
        state = "draft" if i % 5 == 0 else "posted"
        total = 0.0
        for n in range(1, i % 2 + 2):
            line_id += 1
            total += 40.0 * n
            lines.append({"id": line_id, "move_id": i, "sequence": n, "display_type": "product",
                          "product_id": n, "name": f"Widget {n}", "quantity": float(n),
                          "price_unit": 40.0, "price_subtotal": 40.0 * n, "currency_id": 1,
                          "write_date": stamp(i)})
        line_id += 1
        lines.append({"id": line_id, "move_id": i, "sequence": 99,
                      "display_type": "payment_term", "product_id": False, "name": False,
                      "quantity": 0.0, "price_unit": 0.0, "price_subtotal": 0.0,
                      "currency_id": 1, "write_date": stamp(i)})
        moves.append({"id": i, "name": f"INV/2024/{i:05d}", "move_type": kind, "state": state,
                      "partner_id": 1 + i % 8,
                      "payment_state": ("not_paid", "partial", "paid", "in_payment")[i % 4],
                      "invoice_date": f"2024-05-{i:02d}", "invoice_date_due": f"2024-06-{i:02d}",
                      "amount_total": total, "amount_residual": 0.0 if i % 4 == 2 else total,
                      "currency_id": 1, "write_date": stamp(i % 7)})
    return moves, lines


ORDERS, ORDER_LINES = _orders()
MOVES, MOVE_LINES = _moves()
MODELS: dict[str, list[dict[str, Any]]] = {
    "res.partner": _partners(),
    "sale.order": ORDERS,
    "sale.order.line": ORDER_LINES,
    "account.move": MOVES,
    "account.move.line": MOVE_LINES,
    "product.product": [
        {"id": n, "default_code": f"W-{n}", "name": f"Widget {n}", "active": True,
         "description_sale": False, "list_price": 12.5 * n, "currency_id": 1,
         "write_date": stamp(n)} for n in range(1, 4)],
}
MANY2ONE = {"state_id": "res.country.state", "country_id": "res.country",
            "industry_id": "res.partner.industry", "parent_id": "res.partner",
            "partner_id": "res.partner", "currency_id": "res.currency",
            "order_id": "sale.order", "move_id": "account.move", "product_id": "product.product"}
TYPES = {"id": "integer", "sequence": "integer", "is_company": "boolean", "active": "boolean",
         "write_date": "datetime", "date_order": "datetime", "invoice_date": "date",
         "invoice_date_due": "date", "order_line": "one2many", "amount_total": "monetary",
         "amount_residual": "monetary", "price_subtotal": "monetary", "price_unit": "float",
         "product_uom_qty": "float", "quantity": "float", "list_price": "float",
         "state": "selection", "move_type": "selection", "payment_state": "selection",
         "display_type": "selection", **dict.fromkeys(MANY2ONE, "many2one")}


class OdooError(Exception):
    def __init__(self, name: str, message: str) -> None:
        self.name, self.message = name, message


def _display(model: str, ident: int) -> str:
    if model in NAMES:
        return NAMES[model][ident]
    return str(next(r["name"] for r in MODELS[model] if r["id"] == ident))


def _like(pattern: str, text: str, fold: bool) -> bool:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c)
                    for c in f"%{pattern}%")
    return re.fullmatch(regex, text, re.IGNORECASE if fold else 0 | re.DOTALL) is not None


_COMPARE = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _term(row: dict[str, Any], model: str, term: list[Any]) -> bool:
    field, op, value = term
    if field not in row:
        raise OdooError("builtins.ValueError", f"Invalid field {field!r} on model {model!r}")
    actual = row[field]
    if field in MANY2ONE and isinstance(value, str):
        # Odoo reads text compared with a many2one as a name to search for
        actual = _display(MANY2ONE[field], actual) if actual else False
    if op == "=":
        return bool(actual == value) if value is not False else not actual
    if op == "!=":
        return bool(actual != value) if value is not False else bool(actual)
    if op in ("in", "not in"):
        inside = actual in value
        return inside if op == "in" else not inside
    if op in ("like", "ilike"):
        return isinstance(actual, str) and _like(str(value), actual, op == "ilike")
    if op in _COMPARE:
        return actual is not False and actual is not None and bool(_COMPARE[op](actual, value))
    raise OdooError("builtins.ValueError", f"Invalid leaf {term!r}")


def evaluate(domain: list[Any], row: dict[str, Any], model: str) -> bool:
    """Prefix notation, implicit AND between top-level expressions."""
    stack: list[bool] = []
    for item in reversed(domain):
        if item == "!":
            stack.append(not stack.pop())
        elif item in ("&", "|"):
            a, b = stack.pop(), stack.pop()
            stack.append((a and b) if item == "&" else (a or b))
        elif isinstance(item, list) and len(item) == 3:
            stack.append(_term(row, model, item))
        else:
            raise OdooError("builtins.ValueError", f"Invalid domain term {item!r}")
    return all(stack)


def _sorted(rows: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    for part in reversed([p.strip() for p in order.split(",") if p.strip()]):
        name, _, direction = part.partition(" ")
        rows = sorted(rows, key=lambda r, n=name: (r[n] is False, r[n]),
                      reverse=direction.strip().lower() == "desc")
    return rows


def _out(row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row["id"]}
    for name in fields:
        value = row[name]
        if name in MANY2ONE and value:
            value = [value, _display(MANY2ONE[name], value)]
        out[name] = value
    return out


class OdooState:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []  # service, method, model, odoo method, domain, kw
        self.mode = "normal"  # normal | html | not_a_list | ignore_domain

    def search_read(self, model: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
        domain = args[0] if args else kwargs.get("domain", [])
        rows = MODELS[model]
        fields = kwargs.get("fields") or [k for k in rows[0] if k != "id"]
        unknown = [f for f in fields if f not in rows[0]]
        if unknown:
            raise OdooError("builtins.ValueError",
                            f"Invalid field {unknown[0]!r} on model {model!r}")
        if self.mode != "ignore_domain":
            rows = [r for r in rows if evaluate(domain, r, model)]
        rows = _sorted(rows, kwargs.get("order") or "id")
        offset, limit = kwargs.get("offset", 0), kwargs.get("limit")
        rows = rows[offset:offset + limit] if limit else rows[offset:]
        if self.mode == "not_a_list":
            return {"records": [_out(r, fields) for r in rows]}
        return [_out(r, fields) for r in rows]

    def execute_kw(self, args: list[Any]) -> Any:
        db, uid, password, model, method, *rest = args
        margs = rest[0] if rest else []
        kwargs = rest[1] if len(rest) > 1 else {}
        self.calls.append({"model": model, "method": method, "args": margs, "kwargs": kwargs})
        if db != DATABASE:
            raise OdooError("psycopg2.OperationalError", f'database "{db}" does not exist')
        if uid != UID or password != API_KEY:
            raise OdooError("odoo.exceptions.AccessDenied", "Access Denied")
        if model not in MODELS:
            raise OdooError("builtins.KeyError", repr(model))
        if method == "fields_get":
            sample = MODELS[model][0]
            return {name: {"type": TYPES.get(name, "char"), "string": name.title()}
                    for name in sample}
        if method == "search_read":
            return self.search_read(model, margs, kwargs)
        raise OdooError("builtins.AttributeError", f"The method '{method}' does not exist")

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/jsonrpc")
        async def jsonrpc(request: Request) -> Response:
            if self.mode == "html":
                return HTMLResponse("<html><body>502 Bad Gateway (nginx)</body></html>")
            body = await request.json()
            params = body["params"]
            service, method, args = params["service"], params["method"], params["args"]
            try:
                if service == "common" and method == "login":
                    self.calls.append({"service": "common", "method": "login"})
                    db, login, password = args
                    if db != DATABASE:
                        raise OdooError("psycopg2.OperationalError",
                                        f'database "{db}" does not exist')
                    result: Any = UID if (db, login, password) == (DATABASE, LOGIN, API_KEY) \
                        else False
                elif service == "common" and method == "version":
                    result = {"server_version": "17.0", "protocol_version": 1}
                elif service == "object" and method == "execute_kw":
                    result = self.execute_kw(args)
                else:
                    raise OdooError("builtins.NotImplementedError", f"{service}.{method}")
            except OdooError as exc:
                return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "error": {
                    "code": 200, "message": "Odoo Server Error",
                    "data": {"name": exc.name, "message": exc.message,
                             "arguments": [exc.message], "context": {},
                             "debug": f"Traceback (most recent call last):\n  ...args={args!r}"}}})
            return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": result})

        return app
