"""Shared pieces of the gateway tests: the demo config with consumers, a served gateway, keys.

The config is a copy of the demo's, extended with a secret_key and these consumers:

* ``support_bot``: contacts without phone numbers, e-mail masked (partial); companies, query only;
* ``finance``: invoices;
* ``ops``: no data, may read /metrics (listed in metrics_consumers);
* ``limited``: products, at most 3 requests per hour.

``CLEAR_EMAIL`` is a demo contact's address: it must never leave the gateway in clear for
``support_bot``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from servers import Server

from patchbay.config import load_config
from patchbay.gateway import ApiKeys, GatewaySettings, create_app
from patchbay.hub import Hub

SECRET_KEY = "gateway-tests-secret-key-0123456789"
CLEAR_EMAIL = "gunter.fernandez@dupont-logistics.de"
MASKED_EMAIL = "g***@dupont-logistics.de"
CONTACT_ID = "erp:10001"

CONSUMERS: dict[str, Any] = {
    "local": {"trusted": True},
    "support_bot": {
        "entities": {
            "contact": {"fields": {"deny": ["phone", "mobile"]}, "mask": {"email": "partial"}},
            "company": {"operations": ["query"]},
        }
    },
    "finance": {"entities": {"invoice": {}}},
    "ops": {},
    "limited": {
        "rate_limit": {"requests": 3, "per_seconds": 3600},
        "entities": {"product": {}},
    },
}


def write_config(directory: Path, **overrides: Any) -> Path:
    """The demo config in ``directory`` with the test consumers (and any overrides)."""
    path = directory / "patchbay.yaml"
    data = yaml.safe_load(path.read_text())
    data["secret_key"] = SECRET_KEY
    data["consumers"] = CONSUMERS
    data.update(overrides)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class Served:
    url: str
    hub: Hub
    keys: ApiKeys
    tokens: dict[str, str]  # consumer -> a live key
    app: Any
    config_path: Path

    def client(self, consumer: str | None = None, **headers: str) -> httpx.Client:
        if consumer is not None:
            headers.setdefault("Authorization", f"Bearer {self.tokens[consumer]}")
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def audit_rows(self) -> list[dict[str, Any]]:
        import sqlalchemy as sa

        self.hub.audit.flush(10)
        with self.hub.state_engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT * FROM patchbay_audit")).mappings().all()
        return [dict(row) for row in rows]


def serve(directory: Path, settings: GatewaySettings | None = None, **options: Any
          ) -> Iterator[Served]:
    """Serve the gateway over the config in ``directory`` on 127.0.0.1 (a generator fixture)."""
    path = directory / "patchbay.yaml"
    hub = Hub(load_config(path))
    settings = settings or GatewaySettings(metrics_consumers=["ops"])
    app = create_app(hub, settings, close_hub=True, **options)
    keys: ApiKeys = app.state.gateway.keys
    tokens = {name: keys.create(name, f"{name} test key")[1] for name in CONSUMERS}
    with Server(app) as server:  # the app closes the Hub when the server stops
        yield Served(server.url, hub, keys, tokens, app, path)
