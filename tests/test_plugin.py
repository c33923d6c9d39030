"""A connector shipped as its own package: examples/patchbay-jsonl, installed, found, conformant.

The package is built and installed once per session with pip into a temporary target (never into
the venv), from a temporary copy so the build leaves nothing in examples/. In-process tests see it
through sys.path, the CLI through PYTHONPATH; without either, patchbay does not know ``jsonl``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import BUILTIN_CONNECTORS

from patchbay import Hub, Invoice
from patchbay.config import load_config
from patchbay.core.connector import ReadRequest, Resources
from patchbay.core.errors import ConfigError, SourceError
from patchbay.core.mapping import ROW_ERRORS_KEY
from patchbay.core.registry import ConnectorRegistry
from patchbay.testing import ConformanceCase, ConnectorConformance

INSTALLED = f"installed connectors: {', '.join(BUILTIN_CONNECTORS)}"

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "examples" / "patchbay-jsonl"
OWNER = "accounts@invoicing.example"


# --- installing the package ----------------------------------------------------------------


def _builds_without_isolation() -> bool:
    """Whether this venv's setuptools builds wheels by itself (no PyPI needed for the build).

    setuptools has its own ``bdist_wheel`` from 70.1; before that it needs the ``wheel`` package.
    A venv made by ``python3.11 -m venv`` starts with setuptools 65.5 and no ``wheel``.
    """
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="session")
def plugin_target(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package installed with pip into a temporary folder; returns that folder."""
    source = tmp_path_factory.mktemp("plugin-source") / PLUGIN.name
    # A copy: setuptools writes build/ and *.egg-info into the tree it builds.
    shutil.copytree(PLUGIN, source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("plugin-target")
    isolation = ["--no-build-isolation"] if _builds_without_isolation() else []
    command = [sys.executable, "-m", "pip", "install", "--no-deps", *isolation,
               "--target", str(target), "--quiet", "--no-input", "--disable-pip-version-check",
               str(source)]  # absolute: a bare relative name may be taken for a PyPI project
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    assert (target / "patchbay_jsonl" / "py.typed").is_file()
    return target


@pytest.fixture(scope="module")
def installed(plugin_target: Path) -> Iterator[Path]:
    """The package importable in this process (for this module's tests only)."""
    entry = str(plugin_target)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        yield plugin_target
    finally:
        sys.path.remove(entry)
        for name in [m for m in sys.modules if m.partition(".")[0] == "patchbay_jsonl"]:
            del sys.modules[name]
        importlib.invalidate_caches()


# --- an invoicing tool's nightly exports ------------------------------------------------------

STATUSES = ["paid", "sent", "overdue", "void", "draft", "sent"]
CUSTOMERS = [
    {"id": "C-17", "name": "Acme Optics Ltd", "email": "Billing@Acme-Optics.example",
     "address": {"city": "Dublin", "country": "Ireland"}},
    {"id": "C-23", "name": "Brennan & Sons", "email": "accounts@brennan.example",
     "address": {"city": "Leeds", "country": "GB"}},
    {"id": "C-31", "name": "Cortex GmbH", "email": None,
     "address": {"city": "Köln", "country": "Deutschland"}},
]


def _invoice(number: int, day: int) -> str:
    """One line as the tool writes it: amounts as JSON numbers, the customer embedded."""
    customer = CUSTOMERS[(number - 1001) % 3]
    amount = "1200.50" if number == 1001 else f"{number - 900}.{number % 100:02d}"
    return (
        f'{{"id": {number}, "number": "INV-{number}", "status": "{STATUSES[(number - 1001) % 6]}", '
        f'"issued": "2024-03-{day:02d}", "due": "2024-04-{day:02d}", '
        f'"total": {{"amount": {amount}, "currency": "EUR"}}, '
        f'"customer": {json.dumps(customer, ensure_ascii=False)}, '
        f'"updated_at": "2024-03-{day:02d}T{number % 24:02d}:15:00Z"}}'
    )


BROKEN = '{"id": 1007, "number": "INV-1007", "status": "sent", "customer": {"id": "C-'
NO_ID = '{"number": "INV-DRAFT", "status": "draft", "total": {"amount": 10, "currency": "EUR"}}'


def write_exports(folder: Path) -> Path:
    """Two nightly exports: 12 invoices, a line cut off mid-write, an object without an id."""
    exports = folder / "exports"
    exports.mkdir()
    first = [_invoice(n, 1) for n in range(1001, 1007)]
    second = [_invoice(n, 2) for n in range(1008, 1014)]
    (exports / "invoices_2024-03-01.jsonl").write_text(
        "\n".join([*first[:3], "", *first[3:], BROKEN]) + "\n", encoding="utf-8"
    )
    (exports / "invoices_2024-03-02.jsonl").write_text(
        "\n".join([*second[:2], NO_ID, *second[2:]]) + "\n", encoding="utf-8"
    )
    return exports


def source_config() -> dict[str, Any]:
    return {
        "connector": "jsonl",
        "owner": OWNER,
        "settings": {"directory": "exports"},
        "entities": {"invoice": {
            "from": {"files": "invoices_*.jsonl"},
            "id": "id",
            "updated_at": {"path": "updated_at", "transform": "datetime:iso"},
            "fields": {
                "number": "number",
                "status": {"path": "status", "transform": {"map": {
                    "draft": "draft", "sent": "open", "overdue": "open", "paid": "paid",
                    "void": "void", "*": "other",
                }}},
                "issued_on": {"path": "issued", "transform": "date"},
                "due_on": {"path": "due", "transform": "date"},
                "total": {"path": ["total.amount", "total.currency"], "transform": "money"},
                "customer_id": {"path": "customer.id", "transform": "ref"},
                "extra.customer_email": {"path": "customer.email", "transform": "email"},
                "extra.customer_country": {"path": "customer.address.country",
                                           "transform": "country"},
            },
        }},
    }


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with the exports and a patchbay.yaml reading them; returns the config file."""
    write_exports(tmp_path)
    config = {"version": 1, "secret_key": "plugin-test-key-0123456789abcdef",
              "sources": {"billing": source_config()}}
    path = tmp_path / "patchbay.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


# --- found through the entry point -----------------------------------------------------------


@pytest.mark.usefixtures("installed")
def test_the_registry_lists_the_plugin() -> None:
    registry = ConnectorRegistry()
    assert registry.names() == sorted([*BUILTIN_CONNECTORS, "jsonl"])
    connector = registry.get("jsonl")
    assert connector.__module__ == "patchbay_jsonl._connector"
    assert connector.kind == "jsonl"


def test_uninstalled_the_config_fails_at_load(
    plugin_target: Path, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(plugin_target)])
    assert "jsonl" not in ConnectorRegistry().names()
    with pytest.raises(ConfigError) as info:
        load_config(project)  # a fresh ConnectorRegistry, from the entry points
    assert info.value.path == "sources.billing.connector"
    assert "Can't load connector: patchbay.connectors:jsonl" in str(info.value)
    assert INSTALLED in str(info.value)


# --- through the Hub -------------------------------------------------------------------------


@pytest.mark.usefixtures("installed")
async def test_the_hub_maps_and_quarantines(project: Path) -> None:
    async with Hub(load_config(project)) as hub:
        stream = hub.query("invoice")
        records = [record async for record in stream if isinstance(record, Invoice)]
        quality = stream.quality.sources["billing"]
        assert [r.remote_id for r in records] == [
            *(str(n) for n in range(1001, 1007)), *(str(n) for n in range(1008, 1014))
        ]
        assert (quality.read, quality.delivered, quality.quarantined) == (14, 12, 2)
        assert sum(r.status == "open" for r in records) == 6  # sent and overdue

        first = await hub.get("invoice", "billing:1001")
        assert isinstance(first, Invoice)
        assert first == records[0]
        assert first.total is not None
        assert (first.total.amount, first.total.currency) == (Decimal("1200.50"), "EUR")
        assert (first.status, first.issued_on, first.due_on) == (
            "paid", date(2024, 3, 1), date(2024, 4, 1)
        )
        assert first.updated_at == datetime(2024, 3, 1, 17, 15, tzinfo=UTC)
        assert first.customer_id == "billing:C-17"
        assert first.extra == {"customer_email": "billing@acme-optics.example",
                               "customer_country": "IE"}
        assert records[2].extra == {"customer_country": "DE"}  # a null e-mail is left out

        kept = {entry.raw.get("number", entry.raw.get("_line")): entry
                for entry in hub.quarantine.list(source="billing", entity="invoice")}
        assert set(kept) == {BROKEN, "INV-DRAFT"}
        broken = kept[BROKEN]
        assert broken.remote_id is None
        assert broken.reasons == (
            "invoices_2024-03-01.jsonl line 8: invalid JSON: Unterminated string starting at: "
            "column 73",  # the opening quote of "C-
            "id: missing (id)",
        )
        assert kept["INV-DRAFT"].reasons == ("id: missing (id)",)
        assert kept["INV-DRAFT"].raw["total"] == {"amount": 10, "currency": "EUR"}

        page = await hub.fetch("invoice", status="open", limit=4)
        assert [r.remote_id for r in page.records] == ["1002", "1003", "1006", "1008"]
        assert page.next_cursor is not None
        page = await hub.fetch("invoice", status="open", limit=4, cursor=page.next_cursor)
        assert [r.remote_id for r in page.records] == ["1009", "1012"]
        assert page.next_cursor is None


# --- positions, discover, check --------------------------------------------------------------


@pytest.mark.usefixtures("installed")
async def test_positions_resume_exactly(tmp_path: Path) -> None:
    connector = _connector(write_exports(tmp_path))

    async def read(position: object = None) -> list[tuple[dict[str, Any], Any]]:
        request = ReadRequest("invoice", {"files": "invoices_*.jsonl"}, ("id",), ("id",),
                              position=position, batch_size=3)
        return [(row, batch.position_after(i)) async for batch in connector.read(request)
                for i, row in enumerate(batch.rows)]

    everything = await read()
    assert len(everything) == 14
    assert [p for _, p in everything[2:5]] == [
        {"file": "invoices_2024-03-01.jsonl", "line": 3},
        {"file": "invoices_2024-03-01.jsonl", "line": 5},  # line 4 is blank
        {"file": "invoices_2024-03-01.jsonl", "line": 6},
    ]
    assert everything[6][0][ROW_ERRORS_KEY]  # the broken line, in its place
    for index, (_, position) in enumerate(everything):
        assert await read(position) == everything[index + 1 :], position


def _connector(base_dir: Path) -> Any:
    from patchbay_jsonl import JsonLinesConnector, JsonLinesSettings

    return JsonLinesConnector(JsonLinesSettings(directory="."),
                              Resources(source="billing", owner=OWNER, base_dir=base_dir))


@pytest.mark.usefixtures("installed")
async def test_every_line_is_a_row(tmp_path: Path) -> None:
    (tmp_path / "tool.jsonl").write_bytes(b"\n".join([
        b'\xef\xbb\xbf{"id": 1, "amount": 0.10, "tags": ["a"]}',  # a BOM, an exact amount
        b"[1, 2]",
        b'"just text"',
        b'{"id": NaN}',
        b'{"id": "caf\xe9"}',
        b'{"id": 2} {"id": 3}',
        b"   ",
        b'{"id": 4}\r',
    ]))
    request = ReadRequest("invoice", {"file": "tool.jsonl"}, ("id",), ("id",))
    rows = [row async for batch in _connector(tmp_path).read(request) for row in batch.rows]
    assert rows == [
        {"id": 1, "amount": Decimal("0.10"), "tags": ["a"]},
        {"_line": "[1, 2]", ROW_ERRORS_KEY: ["tool.jsonl line 2: a JSON array, not an object"]},
        {"_line": '"just text"',
         ROW_ERRORS_KEY: ["tool.jsonl line 3: a JSON string, not an object"]},
        {"_line": '{"id": NaN}',
         ROW_ERRORS_KEY: ["tool.jsonl line 4: invalid JSON: NaN is not a JSON value"]},
        {"_line": '{"id": "caf\\xe9"}',
         ROW_ERRORS_KEY: ["tool.jsonl line 5: invalid utf-8 bytes at column 12"]},
        {"_line": '{"id": 2} {"id": 3}',
         ROW_ERRORS_KEY: ["tool.jsonl line 6: invalid JSON: Extra data: column 11"]},
        {"id": 4},
    ]


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(
    ("origin", "message"),
    [
        ({}, "from: give exactly one of 'file' (one file) or 'files' (a glob)"),
        ({"file": "a.jsonl", "files": "*.jsonl"}, "give exactly one of"),
        ({"table": "INV"}, "table: Extra inputs are not permitted"),
        ({"file": "nope.jsonl"}, "nope.jsonl not found"),
    ],
)
async def test_errors_name_the_source(tmp_path: Path, origin: dict[str, Any], message: str
                                      ) -> None:
    request = ReadRequest("invoice", origin, ("id",), ("id",))
    with pytest.raises(SourceError) as info:
        [batch async for batch in _connector(tmp_path).read(request)]
    assert message in str(info.value)
    assert (info.value.source, info.value.owner) == ("billing", OWNER)


@pytest.mark.usefixtures("installed")
async def test_discover_and_check(project: Path) -> None:
    async with Hub(load_config(project)) as hub:
        assert await hub.check() == {"billing": None}
        schema = await hub.discover("billing")
    assert [t.name for t in schema.tables] == [
        "invoices_2024-03-01.jsonl", "invoices_2024-03-02.jsonl"
    ]
    columns = {c.name: (c.type, c.nullable) for c in schema.tables[1].columns}
    assert columns == {
        "id": ("number", True),  # the object without an id
        "number": ("string", False),
        "status": ("string", False),
        "issued": ("string", True),
        "due": ("string", True),
        "total": ("object", False),
        "customer": ("object", True),
        "updated_at": ("string", True),
    }
    shutil.rmtree(project.parent / "exports")
    async with Hub(load_config(project)) as hub:
        failure = (await hub.check())["billing"]
    assert failure is not None and failure.unavailable and failure.owner == OWNER
    assert "exports does not exist" in failure.error


# --- the CLI, as a separate process ----------------------------------------------------------


def _cli(target: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("patchbay")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "patchbay.cli"]
    paths = [str(target), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "COLUMNS": "200"}
    return subprocess.run([*command, "--config", str(config), *args], capture_output=True,
                          text=True, env=env, cwd=config.parent, timeout=120, check=False)


def test_the_cli_lists_the_source_and_queries_it(plugin_target: Path, project: Path) -> None:
    listed = _cli(plugin_target, project, "sources")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"billing\s*│\s*jsonl\s*│\s*accounts@invoicing\.example", listed.stdout)

    queried = _cli(plugin_target, project, "query", "invoice", "-f", "jsonl")
    assert queried.returncode == 0, queried.stderr
    records = [json.loads(line) for line in queried.stdout.splitlines()]
    assert len(records) == 12
    assert records[0]["id"] == "billing:1001"
    assert records[0]["total"] == {"amount": "1200.50", "currency": "EUR"}
    assert "read 14 rows, delivered 12, quarantined 2" in queried.stderr


def test_the_cli_without_the_plugin(project: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-m", "patchbay.cli", "--config", str(project),
                             "sources"], capture_output=True, text=True, env=env, timeout=120,
                            check=False)
    assert result.returncode == 2
    assert INSTALLED in result.stderr


# --- the conformance kit -----------------------------------------------------------------------


class TestJsonLinesConformance(ConnectorConformance):
    @pytest.fixture
    def case(self, installed: Path, tmp_path: Path) -> ConformanceCase:
        write_exports(tmp_path)
        return ConformanceCase(
            config={"version": 1, "sources": {"billing": source_config()}},
            source="billing",
            entity="invoice",
            base_dir=tmp_path,
            quarantined=2,  # the line cut off mid-write and the object without an id
        )


# --- the README shows this plugin's code -------------------------------------------------------


def test_readme_walks_through_this_plugin() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Writing a connector"):]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.DOTALL)
    code = (PLUGIN / "patchbay_jsonl" / "_connector.py").read_text(encoding="utf-8")
    shown = {
        "python": code + Path(__file__).read_text(encoding="utf-8"),
        "toml": (PLUGIN / "pyproject.toml").read_text(encoding="utf-8"),
    }
    checked = [language for language, block in blocks if language in shown]
    for language, block in blocks:
        if language in shown:
            assert block in shown[language], f"not verbatim in the plugin:\n{block}"
    assert sorted(checked) == ["python", "python", "toml"]
