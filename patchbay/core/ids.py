"""Canonical ids: ``"{source}:{remote_id}"``.

Each part of a remote key is written as text with ``%``, ``:`` and ``/`` percent-encoded, and the
parts of a composite key are joined by ``/``. So ``erp:1042`` and ``erp:1042/3`` (order 1042,
line 3) both split back into their source and key parts unambiguously.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote, unquote

__all__ = ["canonical_id", "part_text", "remote_id", "split_id"]

_SPECIAL = frozenset("%:/")


def part_text(value: object) -> str:
    """A key value as text; integral floats (ids stored as REAL) lose their ``.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _encode(text: str) -> str:
    return quote(text, safe="") if _SPECIAL.intersection(text) else text


def remote_id(values: Sequence[object]) -> str:
    """The source's own id as text: the value itself, or the encoded parts joined by ``/``."""
    if len(values) == 1:
        return part_text(values[0])
    return "/".join(_encode(part_text(v)) for v in values)


def canonical_id(source: str, values: Sequence[object]) -> str:
    if len(values) == 1:  # the common case, on the hot path
        return f"{source}:{_encode(part_text(values[0]))}"
    return f"{source}:" + "/".join(_encode(part_text(v)) for v in values)


def split_id(record_id: str) -> tuple[str, list[str]]:
    """``"erp:1042/3"`` -> ``("erp", ["1042", "3"])``. Raises ValueError when there is no source."""
    source, sep, rest = record_id.partition(":")
    if not sep or not source or not rest:
        raise ValueError(f"not a canonical id (source:remote_id): {record_id!r}")
    return source, [unquote(part) for part in rest.split("/")]
