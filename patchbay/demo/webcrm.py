"""A small REST CRM for the multi-source example: JSON contacts behind an API key, cursor paged.

``create_app(contacts, api_key)`` returns a FastAPI app serving ``GET /api/v2/contacts`` as
``{"data": [...], "next_cursor": "..."}`` (``page_size``, ``cursor``, ``updated_since``,
``email``) and ``GET /api/v2/contacts/{id}``. :func:`contacts` makes deterministic records.
``python -m patchbay.demo.webcrm --port 8765`` serves it for the example in ``examples/``.
"""

from __future__ import annotations

import argparse
import os
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI, Header, HTTPException, Query

__all__ = ["DEMO_KEY", "contacts", "create_app"]

DEMO_KEY = "demo-webcrm-key"  # the example's key; a real CRM's key lives in the credential store
_FIRST = ("Ada", "Bram", "Cleo", "Dara", "Emil", "Femi", "Greta", "Hugo", "Ines", "Jonas")
_LAST = ("Okafor", "Lindqvist", "Moreau", "Nakamura", "Petrov", "Quinn", "Rossi", "Silva")
_COUNTRIES = ("GB", "DE", "FR", "US", "NL")
_START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)


def contacts(n: int = 120, *, seed: int = 11) -> list[dict[str, Any]]:
    """``n`` contacts as the CRM's API returns them; the same arguments give the same records."""
    rng = random.Random(seed)
    out = []
    for i in range(1, n + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        out.append({
            "id": f"c-{i:05d}",
            "name": {"given": first, "family": last},
            "email": f"{first}.{last}{i}@example.net".lower(),
            "phone": f"+44 20 7946 {i % 10000:04d}",
            "country": rng.choice(_COUNTRIES),
            "updated": (_START + timedelta(hours=7 * i)).isoformat().replace("+00:00", "Z"),
        })
    return out


def create_app(records: Sequence[dict[str, Any]], api_key: str = DEMO_KEY, *,
               before_page: Callable[[], None] | None = None) -> FastAPI:
    """``before_page``: called (in the server's thread pool) before each list page is served."""
    app = FastAPI(title="webcrm (demo)")
    by_id = {r["id"]: r for r in records}

    def authorise(key: str | None) -> None:
        if key != api_key:
            raise HTTPException(status_code=401, detail="missing or wrong X-Api-Key")

    @app.get("/api/v2/contacts")
    def list_contacts(
        page_size: int = Query(50, ge=1, le=200),
        cursor: int = Query(0, ge=0),
        updated_since: datetime | None = None,
        email: str | None = None,
        x_api_key: str | None = Header(None),
    ) -> dict[str, Any]:
        authorise(x_api_key)
        if before_page is not None:
            before_page()
        chosen = [
            r for r in records
            if (updated_since is None or datetime.fromisoformat(r["updated"]) >= updated_since)
            and (email is None or r["email"] == email)
        ]
        page = chosen[cursor:cursor + page_size]
        following = cursor + page_size
        return {"data": page, "next_cursor": str(following) if following < len(chosen) else None}

    @app.get("/api/v2/contacts/{contact_id}")
    def one_contact(contact_id: str, x_api_key: str | None = Header(None)) -> dict[str, Any]:
        authorise(x_api_key)
        if contact_id not in by_id:
            raise HTTPException(status_code=404, detail="no such contact")
        return by_id[contact_id]

    return app


def main(argv: Sequence[str] | None = None) -> None:  # pragma: no cover - a manual helper
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    key = os.environ.get("WEBCRM_API_KEY", DEMO_KEY)
    uvicorn.run(create_app(contacts(), key), host="127.0.0.1", port=args.port)


if __name__ == "__main__":  # pragma: no cover
    main()
