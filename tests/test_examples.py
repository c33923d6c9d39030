"""Every example in examples/ runs against the demo, and the README shows them verbatim."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from patchbay.config import load_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# Run here against the demo; the others need servers their own tests start:
# multi_source.py in tests/test_cross_source.py, agent_tools.py in tests/ai.
ON_THE_DEMO = [ROOT / "examples" / name for name in ("query_async.py", "query_sync.py")]


def test_there_are_examples() -> None:
    assert [p.name for p in EXAMPLES] == [
        "agent_tools.py", "multi_source.py", "query_async.py", "query_sync.py"]


@pytest.mark.parametrize("example", ON_THE_DEMO, ids=lambda p: p.name)
def test_example_runs(example: Path, demo_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)],
        cwd=demo_dir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "erp:" in result.stdout


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_readme_shows_the_example_verbatim(example: Path) -> None:
    assert example.read_text() in (ROOT / "README.md").read_text()


def test_the_example_config_is_the_demo_config(demo_dir: Path) -> None:
    config = load_config(ROOT / "examples" / "patchbay.yaml", resolve_secrets=False)
    assert sorted(config.sources) == ["crm", "erp"]
    assert (ROOT / "examples" / "patchbay.yaml").read_text() == (
        ROOT / "patchbay" / "demo" / "patchbay.yaml"
    ).read_text()


CONFIGS = sorted((ROOT / "examples" / "connectors").glob("*.yaml"))


def test_every_vendor_connector_has_an_example_config() -> None:
    assert [p.stem for p in CONFIGS] == [
        "business_central", "hubspot", "odata", "odoo", "salesforce", "sap_s4hana", "tryton",
        "xero"]


@pytest.mark.parametrize(
    "config", [*CONFIGS, ROOT / "examples" / "multi-source.yaml"], ids=lambda p: p.name
)
def test_readme_shows_the_config_verbatim_and_it_loads(config: Path) -> None:
    assert config.read_text() in (ROOT / "README.md").read_text()
    loaded = load_config(config, resolve_secrets=False)
    assert loaded.sources


def test_the_readme_links_resolve() -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    targets = set(re.findall(r"\]\(((?:docs|examples)/[^)#]+)\)", readme))
    assert targets
    assert sorted(t for t in targets if not (ROOT / t).exists()) == []


@pytest.mark.parametrize(
    "name", ["gateway_consumers.yaml", "gateway_session.sh", "mcp_host_config.json"]
)
def test_readme_shows_the_front_door_examples_verbatim(name: str) -> None:
    # each also runs in its own test: tests/gateway/test_example_session.py, tests/ai
    text = (ROOT / "examples" / name).read_text()
    assert text.rstrip("\n") in (ROOT / "README.md").read_text()
