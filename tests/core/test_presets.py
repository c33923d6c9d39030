"""Vendor presets: a connector's ready-made entity bindings, taken whole or overridden field by
field, and ``from:`` blocks the connector checks when the config loads."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from patchbay.config import load_config_data
from patchbay.core.connector import Batch, Connector, ReadRequest
from patchbay.core.errors import ConfigError
from patchbay.core.registry import ConnectorRegistry

PRESET: dict[str, dict[str, Any]] = {
    "contact": {
        "from": {"object": "people"},
        "id": "id",
        "fields": {
            "email": {"path": "email", "transform": "email"},
            "first_name": "first",
            "phone": {"path": "tel", "transform": "phone:GB"},
        },
    },
    "company": {"from": {"object": "orgs"}, "id": "id", "fields": {"name": "name"}},
}


class VendorConnector(Connector):
    kind = "vendor"
    objects: ClassVar[set[str]] = {"people", "orgs", "tickets"}

    @classmethod
    def preset_entities(cls, settings: BaseModel) -> Mapping[str, Mapping[str, Any]]:
        return PRESET

    @classmethod
    def check_origin(cls, settings: BaseModel, entity: str, origin: Mapping[str, Any]) -> None:
        if origin.get("object") not in cls.objects:
            raise ValueError(f"unknown object {origin.get('object')!r}; objects: people, orgs")

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        yield Batch([], lambda i: i)


def load(entities: Any = None, **source: Any) -> Any:
    registry = ConnectorRegistry(entry_points_enabled=False)
    registry.register(VendorConnector)
    spec: dict[str, Any] = {"connector": "vendor", **source}
    if entities is not None:
        spec["entities"] = entities
    return load_config_data({"version": 1, "sources": {"crm": spec}}, connectors=registry)


def test_without_entities_a_preset_connector_serves_its_preset() -> None:
    assert sorted(load().sources["crm"].mappings) == ["company", "contact"]
    assert sorted(load("preset").sources["crm"].mappings) == ["company", "contact"]


def test_one_entity_from_the_preset() -> None:
    assert list(load({"contact": "preset"}).sources["crm"].mappings) == ["contact"]


def test_a_partial_block_overrides_the_preset_field_by_field() -> None:
    config = load({"contact": {"fields": {"last_name": "last", "phone": None,
                                          "email": {"path": "mail", "transform": "email"}}}})
    mapping = config.sources["crm"].mappings["contact"]
    assert set(mapping.source_paths) == {"id", "mail", "first", "last"}
    assert set(mapping.spec.fields) == {"email", "first_name", "last_name"}


def test_an_own_binding_beside_the_preset() -> None:
    config = load({"contact": "preset",
                   "ticket": {"from": {"object": "tickets"}, "id": "id",
                              "fields": {"subject": "title"}}})
    assert sorted(config.sources["crm"].mappings) == ["contact", "ticket"]


def test_a_preset_the_connector_does_not_have_is_named() -> None:
    with pytest.raises(ConfigError, match=r"sources\.crm\.entities\.ticket: connector 'vendor' "
                                          r"has no preset for 'ticket' \(its presets: company, "
                                          r"contact\)"):
        load({"ticket": "preset"})


def test_the_connector_checks_from_blocks_at_load() -> None:
    with pytest.raises(ConfigError, match=r"sources\.crm\.entities\.company\.from: unknown "
                                          r"object 'accounts'"):
        load({"company": {"from": {"object": "accounts"}}})


def test_preset_on_a_connector_without_one_is_an_error() -> None:
    with pytest.raises(ConfigError, match="connector 'sql' has no preset entities"):
        load_config_data({"version": 1, "sources": {"erp": {
            "connector": "sql", "settings": {"url": "sqlite://"}, "entities": "preset"}}})


def test_a_binding_missing_its_id_names_the_path() -> None:
    with pytest.raises(ConfigError, match=r"sources\.crm\.entities\.ticket\.id: Field required"):
        load({"ticket": {"from": {"object": "tickets"}, "fields": {"subject": "title"}}})
