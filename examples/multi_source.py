"""One query over three systems at once: ERP database, CRM export and REST CRM.

Run next to ``multi-source.yaml`` (see the comment at its top for the two servers it needs).
"""

import asyncio
from collections import Counter

from patchbay import Hub


async def main() -> None:
    async with Hub.from_config("multi-source.yaml") as hub:
        per_source: Counter[str] = Counter()
        stream = hub.query("contact")  # the three sources are read concurrently
        async for contact in stream:
            per_source[contact.source] += 1
        print("contacts per source:", dict(sorted(per_source.items())))
        print("quarantined:", stream.quality.quarantined)

        # A filter applies to every source (pushed down where a source can evaluate it).
        found = [c.id async for c in hub.query("contact", email="hugo.silva1@example.net")]
        print("by e-mail:", found)


asyncio.run(main())
