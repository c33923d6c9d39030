"""Query the demo's ERP database and CRM export as one, with the async API.

Run from a folder holding the demo (``patchbay demo --dir DIR``; then ``cd DIR``).
"""

import asyncio

from patchbay import Hub


async def main() -> None:
    async with Hub.from_config("patchbay.yaml") as hub:
        # A stream: records arrive as the sources deliver them, memory stays bounded.
        stream = hub.query("contact", address__country="GB")
        async for contact in stream:
            print(contact.id, contact.full_name, contact.email)
        print("quarantined:", stream.quality.quarantined, "failed sources:", stream.errors)

        # A page, and a signed cursor to the next one.
        page = await hub.fetch("invoice", status="open", total__gt=1000, limit=5)
        while page.next_cursor:
            page = await hub.fetch(
                "invoice", status="open", total__gt=1000, limit=5, cursor=page.next_cursor
            )
        print("last page:", [invoice.id for invoice in page.records])

        # One record with its lines; references hold canonical ids of the same source.
        invoice = await hub.get("invoice", "erp:500002")
        customer = await hub.get("company", invoice.customer_id)
        print(customer.name, invoice.total, [line.sku for line in invoice.lines])


asyncio.run(main())
