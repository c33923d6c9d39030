"""Registries of connectors and entities, found through entry points.

Names are listed without importing anything; a class is imported when it is first asked for,
validated then (pluggy-style: the error names the plugin), and cached. ``register()`` adds one in
Python, for tests, examples and applications that do not package their plugins.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from pydantic import BaseModel

from patchbay.core.connector import Connector
from patchbay.core.entities import BUILTIN_ENTITIES, Record
from patchbay.core.errors import ConnectorNotFound, EntityNotFound, PatchbayError

__all__ = ["ConnectorRegistry", "EntityRegistry", "PluginError"]

T = TypeVar("T")


class PluginError(PatchbayError):
    """An entry point that does not load or does not provide what its group promises."""


class _Registry(Generic[T]):
    group: str

    def __init__(self, entry_points_enabled: bool = True) -> None:
        self._loaded: dict[str, T] = {}
        self._entry_points: dict[str, EntryPoint] = {}
        if entry_points_enabled:
            for ep in entry_points(group=self.group):
                self._entry_points.setdefault(ep.name, ep)

    def names(self) -> list[str]:
        return sorted(set(self._loaded) | set(self._entry_points))

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in self._entry_points

    def _load(self, name: str) -> T | None:
        if name in self._loaded:
            return self._loaded[name]
        ep = self._entry_points.get(name)
        if ep is None:
            return None
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not look like a missing one
            raise PluginError(
                f"Can't load plugin: {self.group}:{name} ({ep.value}): {type(exc).__name__}: {exc}"
            ) from exc
        item = self._validate(name, obj, f"{self.group}:{name} ({ep.value})")
        self._loaded[name] = item
        return item

    def _validate(self, name: str, obj: object, where: str) -> T:
        raise NotImplementedError


class ConnectorRegistry(_Registry[type[Connector]]):
    group = "patchbay.connectors"

    def get(self, name: str) -> type[Connector]:
        cls = self._load(name)
        if cls is None:
            raise ConnectorNotFound(name, self.names())
        return cls

    def register(self, cls: type[Connector], name: str | None = None) -> type[Connector]:
        key = name or cls.kind
        self._loaded[key] = self._validate(key, cls, f"{cls.__module__}.{cls.__qualname__}")
        return cls

    def _validate(self, name: str, obj: object, where: str) -> type[Connector]:
        if not (isinstance(obj, type) and issubclass(obj, Connector)):
            raise PluginError(f"{where} is not a patchbay Connector class")
        if not (isinstance(obj.Settings, type) and issubclass(obj.Settings, BaseModel)):
            raise PluginError(f"{where}: Settings must be a pydantic model")
        return obj


class EntityRegistry(_Registry[type[Record]]):
    group = "patchbay.entities"

    def __init__(
        self, entry_points_enabled: bool = True, builtins: Iterable[type[Record]] = BUILTIN_ENTITIES
    ) -> None:
        super().__init__(entry_points_enabled)
        for model in builtins:
            self._loaded[model.entity] = model

    def get(self, name: str) -> type[Record]:
        model = self._load(name)
        if model is None:
            raise EntityNotFound(name, self.names())
        return model

    def register(self, model: type[Record]) -> type[Record]:
        self._loaded[model.entity] = self._validate(model.entity, model, model.__qualname__)
        return model

    def schema(self, name: str) -> dict[str, object]:
        """The entity's JSON Schema (validation mode: what a record may contain)."""
        return self.get(name).model_json_schema()

    def _validate(self, name: str, obj: object, where: str) -> type[Record]:
        if not (isinstance(obj, type) and issubclass(obj, Record)):
            raise PluginError(f"{where} is not a subclass of patchbay Record")
        if not obj.entity:
            raise PluginError(f"{where} sets no entity name (entity: ClassVar[str] = '...')")
        if obj.entity != name:
            raise PluginError(f"{where} is registered as {name!r} but names itself {obj.entity!r}")
        return obj
