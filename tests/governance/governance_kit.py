"""What the governance tests share: the demo (an ERP in SQLite, a CRM export in CSV) under
consumer policies, a fake clock.

Not a conftest.py: test modules import ``conftest`` by name elsewhere, and a second conftest
module would shadow the root one.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml


def unavailable(reason: str) -> None:
    """As tests/conftest.py: skip, or fail when PATCHBAY_REQUIRE_SERVICES=1 (CI)."""
    if os.environ.get("PATCHBAY_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (PATCHBAY_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)


SECRET_KEY = "governance-test-secret-key-0123456789abcdef"


class FakeClock:
    """Time that moves only when a test advances it."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.epoch = datetime(2026, 1, 1, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.t += seconds

    def advance(self, seconds: float) -> None:
        self.t += seconds


def governed(demo_dir: Path, consumers: dict[str, Any], **top: Any) -> Path:
    """Writes ``consumers`` (and any other top-level keys) into the demo config; its path."""
    path = demo_dir / "patchbay.yaml"
    data = yaml.safe_load(path.read_text())
    data["consumers"] = {"local": {"trusted": True}, **consumers}
    data.setdefault("secret_key", SECRET_KEY)
    data.update(top)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
