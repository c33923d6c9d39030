"""What test modules import from the suite itself (not a conftest.py: pytest imports every
conftest.py outside a package as the module ``conftest``, so ``from support import`` would get
whichever one it loaded last)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["BUILTIN_CONNECTORS", "REQUIRED", "ROOT", "unavailable"]

# The connectors this package registers through entry points, sorted.
BUILTIN_CONNECTORS = (
    "business_central", "files", "hubspot", "odata", "odoo", "rest", "salesforce", "sap_s4hana",
    "sql", "tryton", "xero",
)
REQUIRED = os.environ.get("PATCHBAY_REQUIRE_SERVICES") == "1"
ROOT = Path(__file__).resolve().parent.parent


def unavailable(reason: str) -> None:
    """Skip, or fail when services are required (PATCHBAY_REQUIRE_SERVICES=1, as in CI)."""
    if REQUIRED:
        pytest.fail(f"{reason} (PATCHBAY_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(reason)
