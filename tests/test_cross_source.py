"""One ``hub.query("contact")`` over the demo ERP (SQL), its CSV export and a REST CRM.

The reads overlap: the REST CRM holds its first page until the Hub reports three source reads
in flight at once (the ``read_start``/``read_end`` events), so a Hub that read the sources one
after the other would never get that page (the gate gives up, and the test fails).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from servers import Server

from patchbay import Hub
from patchbay.config import load_config
from patchbay.demo.webcrm import DEMO_KEY, contacts, create_app

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "multi-source.yaml"


class InFlight(logging.Handler):
    """Counts the source reads the Hub has in flight, from its events."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.now = 0
        self.peak = 0
        self.all_three = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:  # called under the handler's own lock
        event = getattr(record, "event", None)
        if event == "read_start":
            self.now += 1
        elif event == "read_end":
            self.now -= 1
        self.peak = max(self.peak, self.now)
        if self.now >= 3:
            self.all_three.set()


@pytest.fixture
def in_flight() -> Iterator[InFlight]:
    handler = InFlight()
    logger = logging.getLogger("patchbay.resilience")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def setup(demo_dir: Path, url: str) -> Path:
    """The example config next to the demo's sources, pointed at the test's REST CRM."""
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["sources"]["webcrm"]["settings"]["base_url"] = url
    path = demo_dir / "multi-source.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _crm_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBCRM_API_KEY", DEMO_KEY)


async def test_one_query_reads_three_sources_at_once(demo_dir: Path, in_flight: InFlight) -> None:
    gate_missed: list[bool] = []

    def before_page() -> None:
        gate_missed.append(not in_flight.all_three.wait(timeout=5))

    with Server(create_app(contacts(), before_page=before_page)) as crm:
        config = setup(demo_dir, crm.url)
        async with Hub.from_config(config) as hub:
            per_source = Counter([r.source async for r in hub.query("contact")])
            alone = {name: len([r async for r in hub.query("contact", sources=[name])])
                     for name in ("erp", "crm_export", "webcrm")}
    assert gate_missed and not any(gate_missed), "the REST read never overlapped the others"
    assert in_flight.peak == 3
    assert per_source == alone
    assert per_source["webcrm"] == 120
    assert per_source["erp"] > 0 and per_source["crm_export"] > 0


async def test_a_filter_reaches_every_source(demo_dir: Path) -> None:
    wanted = contacts()[41]["email"]
    seen: list[str] = []
    with Server(create_app(contacts(), before_page=lambda: seen.append("page"))) as crm:
        async with Hub.from_config(setup(demo_dir, crm.url)) as hub:
            found = [r async for r in hub.query("contact", email=wanted)]
    assert [r.id for r in found] == ["webcrm:c-00042"]
    # Not pushed to the CRM: ``email`` is case-folded by its transform and the API compares
    # exactly, so the Hub reads every page and filters the canonical records itself.
    assert seen == ["page"] * 3


def test_the_example_config_loads() -> None:
    config = load_config(EXAMPLE, resolve_secrets=False)
    assert sorted(config.sources) == ["crm_export", "erp", "webcrm"]
    assert {s: list(c.mappings) for s, c in config.sources.items()} == {
        "erp": ["contact"], "crm_export": ["contact"], "webcrm": ["contact"]}


def test_the_example_script_runs(demo_dir: Path) -> None:
    with Server(create_app(contacts())) as crm:
        setup(demo_dir, crm.url)
        shutil.copy(ROOT / "examples" / "multi_source.py", demo_dir / "multi_source.py")
        result = subprocess.run(
            [sys.executable, "multi_source.py"], cwd=demo_dir, capture_output=True, text=True,
            timeout=120, check=False, env={**os.environ, "WEBCRM_API_KEY": DEMO_KEY},
        )
    assert result.returncode == 0, result.stderr
    assert "'webcrm': 120" in result.stdout
    assert "by e-mail: ['webcrm:c-00001']" in result.stdout
