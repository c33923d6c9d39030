"""``$metadata``: the entity sets of a service with their properties, types and keys.

v4 CSDL (``http://docs.oasis-open.org/odata/ns/edm``) and v2 EDMX (``…/ado/2008/09/edm`` and
its siblings) name the same elements in different namespaces, so elements are matched by local
name. The standard library's parser is enough (and its expat refuses entity expansion bombs).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from patchbay.core.connector import ColumnInfo, TableInfo

__all__ = ["EntitySets", "parse_metadata"]


@dataclass(frozen=True, slots=True)
class EntitySets:
    """Entity set name -> its table (columns with Edm types, primary key); navigation property
    name -> the table it leads to (lines), where that name leads to one entity type only."""

    tables: dict[str, TableInfo]
    navigations: dict[str, TableInfo]


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def parse_metadata(text: bytes | str) -> EntitySets:
    """Parse a ``$metadata`` document; raises ``ValueError`` when it is not one."""
    raw = text.encode() if isinstance(text, str) else text
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        # CSDL never declares a DTD; refusing one rules out entity expansion and external
        # entities, the attacks defusedxml exists for, without another dependency.
        raise ValueError("a $metadata document with a DTD (<!DOCTYPE/<!ENTITY) is refused")
    try:
        root = ET.fromstring(raw)  # noqa: S314 - DTDs are refused above
    except ET.ParseError as exc:
        raise ValueError(f"not XML: {exc}") from None
    if _local(root.tag) != "Edmx":
        raise ValueError(f"not an EDMX/CSDL document (root element {_local(root.tag)!r})")
    types: dict[str, TableInfo] = {}
    sets: dict[str, str] = {}
    roles: dict[tuple[str, str], str] = {}  # v2: (association, role) -> entity type
    navs: list[tuple[str, str | None, str | None, str | None]] = []
    for schema in root.iter():
        if _local(schema.tag) != "Schema":
            continue
        namespace = schema.get("Namespace", "")
        alias = schema.get("Alias")
        prefixes = [p for p in (namespace, alias) if p]
        for entity_type in _children(schema, "EntityType"):
            table = _table(entity_type)
            for prefix in prefixes:
                types[f"{prefix}.{table.name}"] = table
            for nav in _children(entity_type, "NavigationProperty"):
                navs.append((nav.get("Name", ""), nav.get("Type"), nav.get("Relationship"),
                             nav.get("ToRole")))
        for association in _children(schema, "Association"):
            for end in _children(association, "End"):
                for prefix in prefixes:
                    key = (f"{prefix}.{association.get('Name')}", end.get("Role", ""))
                    roles[key] = end.get("Type", "")
        for container in _children(schema, "EntityContainer"):
            for entity_set in _children(container, "EntitySet"):
                name, of = entity_set.get("Name"), entity_set.get("EntityType")
                if name and of:
                    sets[name] = of
    tables = {}
    for name, of in sets.items():
        found = types.get(of)
        if found is not None:
            tables[name] = TableInfo(name, found.columns, found.primary_key)
    targets: dict[str, set[str]] = {}
    for name, of, relationship, to_role in navs:
        if of is None and relationship and to_role:  # v2: through the association's role
            of = roles.get((relationship, to_role))
        if of:
            targets.setdefault(name, set()).add(of.removeprefix("Collection(").rstrip(")"))
    navigations = {}
    for name, candidates in targets.items():
        found = types.get(next(iter(candidates))) if len(candidates) == 1 else None
        if found is not None:
            navigations[name] = found
    return EntitySets(tables, navigations)


def _table(entity_type: ET.Element) -> TableInfo:
    keys: list[str] = []
    for key in _children(entity_type, "Key"):
        keys.extend(ref.get("Name", "") for ref in _children(key, "PropertyRef"))
    columns = tuple(
        ColumnInfo(
            prop.get("Name", ""),
            prop.get("Type", ""),
            prop.get("Nullable", "true").lower() != "false",
        )
        for prop in _children(entity_type, "Property")
    )
    return TableInfo(entity_type.get("Name", ""), columns, tuple(keys))
