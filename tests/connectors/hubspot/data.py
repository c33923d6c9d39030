"""The records the HubSpot handler app serves, built once, in HubSpot's shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

Obj = dict[str, Any]

START = datetime(2024, 1, 1, tzinfo=UTC)
STAGES = ("appointmentscheduled", "closedwon", "closedlost", "contractsent")
PRIORITIES = ("LOW", "MEDIUM", "HIGH", "URGENT")


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def hubspot_object(ident: int, props: dict[str, Any], modified: datetime, *,
                   modprop: str = "hs_lastmodifieddate") -> Obj:
    created = START - timedelta(days=ident % 17)
    properties = {"hs_object_id": str(ident), "createdate": stamp(created),
                  modprop: stamp(modified), **props}
    return {"id": str(ident), "properties": properties, "createdAt": stamp(created),
            "updatedAt": stamp(modified)}


def contacts() -> list[Obj]:
    first = ("Ann", "Bob", "Cleo", "Dev", "Eve")
    out = []
    for i in range(40):
        ident = 101 + i
        props: dict[str, Any] = {
            "firstname": first[i % 5],
            "lastname": "SMITH" if i % 6 == 0 else ("Smith" if i % 3 == 0 else f"Jones{i}"),
            "email": f"{first[i % 5].lower()}.{i}@acme.example",
            "phone": f"020 7946 0{i:03d}",
            "mobilephone": None,
            "jobtitle": "Buyer" if i % 2 else "CFO",
            "company": f"Acme {i % 4}",
            "lifecyclestage": ("lead", "customer", "subscriber")[i % 3],
            "city": "London" if i % 2 else "Berlin",
            "country": "United Kingdom" if i % 2 else "DE",
        }
        if i == 7:
            del props["email"]  # a property missing from the remote object
        if i == 9:
            props["email"] = "not-an-email"  # nulled and counted, not fatal
        out.append(hubspot_object(ident, props, START + timedelta(hours=i, milliseconds=i),
                                  modprop="lastmodifieddate"))
    return out


def companies() -> list[Obj]:
    out = []
    for i in range(12):
        ident = 1001 + i
        props = {"name": f"Acme {i}" if i != 11 else None, "domain": f"acme{i}.example",
                 "website": f"https://acme{i}.example", "phone": f"+44 20 7946 1{i:03d}",
                 "industry": ("RETAIL", "SOFTWARE")[i % 2], "city": "Leeds", "country": "GB",
                 "address2": None}
        out.append(hubspot_object(ident, props, START + timedelta(hours=3 * i)))
    return out


def deals() -> list[Obj]:
    out = []
    for i in range(30):
        ident = 5001 + i
        props = {"dealname": f"Deal {i}" if i != 29 else "", "amount": f"{i * 100}.50",
                 "dealstage": STAGES[i % 4], "closedate": stamp(START + timedelta(days=30 + i)),
                 "pipeline": "default", "hubspot_owner_id": str(900 + i % 3)}
        if i % 2 == 0:
            props["deal_currency_code"] = "EUR"
        out.append(hubspot_object(ident, props, START + timedelta(hours=2 * i)))
    return out


def tickets() -> list[Obj]:
    out = []
    for i in range(25):
        ident = 7001 + i
        stage = str(1 + i % 4)
        props = {"subject": f"Printer {i} on fire" if i != 13 else None,
                 "content": f"Ticket body {i}", "hs_pipeline": "0", "hs_pipeline_stage": stage,
                 "hs_ticket_priority": PRIORITIES[i % 4],
                 "closed_date": stamp(START + timedelta(days=i)) if stage == "4" else None}
        out.append(hubspot_object(ident, props, START + timedelta(minutes=45 * i)))
    return out


def products() -> list[Obj]:
    return [hubspot_object(9001 + i, {"name": f"Widget {i}", "hs_sku": f"W-{i:03d}",
                                      "description": f"Widget number {i}",
                                      "price": f"{i + 1}9.99"},
                           START + timedelta(hours=i)) for i in range(8)]


def orders() -> list[Obj]:
    return [hubspot_object(40_001 + i, {
        "hs_order_name": f"SO-{i:04d}", "hs_total_price": f"{(i + 1) * 10}.00",
        "hs_currency_code": "GBP", "hs_fulfillment_status": ("Packing", "Shipped")[i % 2],
        "hs_external_order_id": f"EXT-{i}"}, START + timedelta(hours=5 * i))
        for i in range(12)]


def line_items() -> list[Obj]:
    """Three lines per order (none for the fourth); 45_999 is associated but deleted."""
    out = []
    for i in range(12 * 3):
        out.append(hubspot_object(45_000 + i, {
            "name": f"Widget {i % 8}", "hs_product_id": str(9001 + i % 8),
            "hs_sku": f"W-{i % 8:03d}", "quantity": str(1 + i % 3), "price": f"{i % 8 + 1}9.99",
            "amount": f"{(1 + i % 3) * (i % 8 + 1)}9.97",
            "hs_line_item_currency_code": "GBP"}, START + timedelta(minutes=i)))
    return out


def bulk(count: int, *, tie: int) -> list[Obj]:
    """``count`` records, ``tie`` of them per modification time, times not in id order."""
    out = []
    for i in range(count):
        slot = (i * 37) % count // tie
        out.append(hubspot_object(20_000 + i, {"name": f"Bulk {i}"},
                                  START + timedelta(seconds=slot)))
    return out


def associations() -> dict[tuple[str, str], dict[str, list[tuple[str, bool]]]]:
    """contact -> company: a primary, sometimes an unlabeled extra, every 7th none;
    deal -> company: unlabeled only (the lowest id is taken); ticket -> company: primary."""
    contact_links: dict[str, list[tuple[str, bool]]] = {}
    for i in range(40):
        if i % 7 == 3:
            continue
        links = [(str(1001 + i % 11), True)]
        if i % 5 == 0:
            links.insert(0, (str(1012), False))
        contact_links[str(101 + i)] = links
    deal_links = {str(5001 + i): [(str(1001 + (i + 4) % 11), False), (str(1001 + i % 3), False)]
                  for i in range(30) if i % 4 != 1}
    ticket_links = {str(7001 + i): [(str(1001 + i % 11), True)] for i in range(25) if i % 2}
    # Each order's three lines, listed highest id first (the connector sorts them).
    order_lines = {str(40_001 + i): [(str(45_000 + 3 * i + k), False) for k in (2, 1, 0)]
                   for i in range(12) if i != 3}
    order_lines[str(40_012)].append(("45999", False))  # associated, but the line is gone
    order_contacts = {str(40_001 + i): [(str(101 + i), True)] for i in range(12)}
    return {("contacts", "companies"): contact_links, ("deals", "companies"): deal_links,
            ("tickets", "companies"): ticket_links, ("orders", "line_items"): order_lines,
            ("orders", "contacts"): order_contacts}


def all_objects() -> dict[str, list[Obj]]:
    return {
        "contacts": contacts(), "companies": companies(), "deals": deals(),
        "tickets": tickets(), "products": products(), "orders": orders(),
        "line_items": line_items(),
        "p_loop": [hubspot_object(30_000 + i, {"name": f"Loop {i}"}, START) for i in range(3)],
        "p_bulk": bulk(95, tie=3),
        "p_ties": bulk(8, tie=8),
        "p_tied": bulk(30, tie=10),
        "p_big": bulk(10_250, tie=1),
    }
