"""The same calls without ``await`` (also inside a running event loop, such as a notebook's)."""

from patchbay import SyncHub

with SyncHub.from_config("patchbay.yaml") as hub:
    for company in hub.query("company", status="active", limit=3):
        print(company.id, company.name, company.address)

    either = {
        "or": [
            {"field": "email", "op": "contains", "value": "optics"},
            {"field": "address.country", "op": "eq", "value": "IE"},
        ]
    }
    page = hub.fetch("contact", where=either, limit=10)
    print(len(page.records), "contacts; more:", page.next_cursor is not None)
    print(hub.explain("contact", email="ann@acme.example"))
