"""Lets the Northwind tests import the project's SQLite copier, tests/connectors/sqlcopy.py."""

from __future__ import annotations

import sys
from pathlib import Path

CONNECTORS = str(Path(__file__).resolve().parent.parent / "connectors")
if CONNECTORS not in sys.path:
    sys.path.append(CONNECTORS)
