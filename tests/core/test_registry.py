"""Registries find plugins through real entry points (a dist-info folder on sys.path)."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import BUILTIN_CONNECTORS

from patchbay.core.connector import Capability, Connector
from patchbay.core.errors import ConnectorNotFound, EntityNotFound
from patchbay.core.registry import ConnectorRegistry, EntityRegistry, PluginError


@pytest.fixture
def plugin_dist(tmp_path: Path) -> Iterator[Path]:
    """An installed-looking distribution with entry points, as pip would leave it."""
    package = tmp_path / "pb_fake_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent('''
        from typing import ClassVar
        from patchbay.core.connector import Connector
        from patchbay.core.entities import Record

        class Shipment(Record):
            entity: ClassVar[str] = "shipment"
            carrier: str

        class NotAnEntity:
            pass

        class Echo(Connector):
            kind = "echo"

            async def read(self, request):
                yield None
    '''))
    (package / "broken.py").write_text("raise RuntimeError('plugin exploded on import')\n")
    dist = tmp_path / "pb_fake_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pb-fake-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""
        [patchbay.connectors]
        echo = pb_fake_plugin:Echo
        exploding = pb_fake_plugin.broken:Thing
        wrongtype = pb_fake_plugin:NotAnEntity

        [patchbay.entities]
        shipment = pb_fake_plugin:Shipment
        notentity = pb_fake_plugin:NotAnEntity
    """))
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("pb_fake_plugin")]:
            del sys.modules[name]


def test_builtins_register_through_entry_points() -> None:
    registry = ConnectorRegistry()
    assert {"files", "sql"} <= set(registry.names())
    assert registry.get("sql").kind == "sql"


def test_names_are_listed_without_importing(plugin_dist: Path) -> None:
    registry = ConnectorRegistry()
    assert {"echo", "exploding", "wrongtype"} <= set(registry.names())
    assert "pb_fake_plugin.broken" not in sys.modules
    assert "pb_fake_plugin" not in sys.modules


def test_a_plugin_connector_loads_on_demand(plugin_dist: Path) -> None:
    assert ConnectorRegistry().get("echo").kind == "echo"


def test_a_broken_plugin_is_named(plugin_dist: Path) -> None:
    registry = ConnectorRegistry()
    with pytest.raises(PluginError, match=r"patchbay.connectors:exploding.*plugin exploded"):
        registry.get("exploding")
    with pytest.raises(PluginError, match="wrongtype.*is not a patchbay Connector"):
        registry.get("wrongtype")


def test_unknown_connector_lists_the_known_ones() -> None:
    with pytest.raises(ConnectorNotFound) as info:
        ConnectorRegistry().get("oracle")
    assert "Can't load connector: patchbay.connectors:oracle" in str(info.value)
    assert f"installed connectors: {', '.join(BUILTIN_CONNECTORS)}" in str(info.value)


def test_entities_by_entry_point(plugin_dist: Path) -> None:
    registry = EntityRegistry()
    assert "shipment" in registry.names()
    assert registry.get("shipment").entity == "shipment"
    assert "carrier" in registry.schema("shipment")["properties"]  # type: ignore[operator]
    with pytest.raises(PluginError, match="not a subclass of patchbay Record"):
        registry.get("notentity")
    with pytest.raises(EntityNotFound, match="known entities: company, contact"):
        registry.get("shipments")


def test_every_builtin_entity_publishes_a_json_schema() -> None:
    import jsonschema

    registry = EntityRegistry(entry_points_enabled=False)
    for name in registry.names():
        schema = registry.schema(name)
        jsonschema.Draft202012Validator.check_schema(schema)
        assert {"id", "source", "remote_id"} <= set(schema["required"])  # type: ignore[arg-type]


def test_capabilities_are_checked_when_the_class_is_defined() -> None:
    with pytest.raises(TypeError, match="declares get but does not implement get"):

        class Liar(Connector):
            kind = "liar"
            capabilities = frozenset({Capability.READ, Capability.GET})

            async def read(self, request: Any) -> Any:  # pragma: no cover
                yield None

    with pytest.raises(TypeError, match="unknown resources"):

        class Greedy(Connector):
            kind = "greedy"
            resources = frozenset({"gpu"})

            async def read(self, request: Any) -> Any:  # pragma: no cover
                yield None


def test_register_in_python() -> None:
    class Local(Connector):
        kind = "local-test"

        async def read(self, request: Any) -> Any:  # pragma: no cover
            yield None

    registry = ConnectorRegistry(entry_points_enabled=False)
    registry.register(Local)
    assert registry.names() == ["local-test"]
    assert registry.get("local-test") is Local
