"""JSON Lines exports: one JSON object per line, as invoicing tools and CRMs' nightly jobs write.

An entity's ``from:`` block names its file(s) relative to the ``directory`` setting:
``{file: invoices.jsonl}``, or ``{files: "exports/invoices_*.jsonl"}`` read in order of file name
(then of relative path), so dated exports come oldest first.

Rows are the objects as parsed, numbers with a fraction as ``Decimal`` so amounts stay exact; the
mapping addresses nested fields by dotted paths (``customer.email``). Nothing is lost on bad input:
a line that is not UTF-8, not JSON or not an object is still yielded, as a row holding the line's
text under ``_line`` and the reason under ``ROW_ERRORS_KEY``, so the mapping quarantines it.

A position is ``{"file": <path relative to directory>, "line": <1-based line number>}``; resuming
skips the files that sort before that file and its lines up to that one. Blank lines are skipped
but counted, so line numbers are the ones an editor shows.
"""

from __future__ import annotations

import codecs
import contextlib
import glob
import json
import os
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Mapping, Sequence
from decimal import Decimal
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Self, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from patchbay.core.connector import (
    Batch,
    Capability,
    ColumnInfo,
    Connector,
    GetRequest,
    LinesRequest,
    Position,
    ReadRequest,
    Resources,
    SourceOrder,
    SourceSchema,
    TableInfo,
)
from patchbay.core.errors import SourceError, SourceUnavailable
from patchbay.core.ids import part_text
from patchbay.core.mapping import ROW_ERRORS_KEY
from patchbay.core.threads import iterate_in_thread

__all__ = ["LINE_KEY", "JsonLinesConnector", "JsonLinesSettings"]

T = TypeVar("T")
Row = dict[str, Any]

LINE_KEY = "_line"  # the text of a line that holds no JSON object
_SAMPLE = 100  # objects per file that discover looks at
_DISCOVERABLE = {".jsonl", ".ndjson"}
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number",
               Decimal: "number", bool: "boolean", type(None): "null"}  # what json.loads makes


class JsonLinesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    directory: str = "."  # relative to the config file's directory


class _Origin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str | None = None
    files: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.file is None) == (self.files is None):
            raise ValueError("give exactly one of 'file' (one file) or 'files' (a glob)")
        return self


class JsonLinesConnector(Connector):
    """JSON Lines files under ``settings.directory``; needs no injected resources."""

    kind = "jsonl"
    Settings = JsonLinesSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.READ, Capability.GET, Capability.DISCOVER, Capability.CHECK}
    )

    def __init__(self, settings: JsonLinesSettings, resources: Resources) -> None:
        super().__init__(settings, resources)
        base = Path(resources.base_dir) if resources.base_dir is not None else Path.cwd()
        self.directory = base / Path(settings.directory).expanduser()

    def can_order(self, request: ReadRequest, order: SourceOrder) -> bool:
        return False  # rows come in file order; the Hub refuses order_by for this source

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        origin = self._origin(request.origin, f"entity {request.entity!r}", request.lines)
        if request.order:
            raise self._error("the jsonl connector cannot sort; rows come in file order")
        after = self._after(request.position)
        size = max(1, request.batch_size)

        def batches() -> Iterator[tuple[list[Row], list[tuple[str, int]]]]:
            rows: list[Row] = []
            where: list[tuple[str, int]] = []  # (file, line number) of each row
            for name, path in self._list(origin):
                if after is not None and _order_key(name) < after[0]:
                    continue
                skip = after[1] if after is not None and _order_key(name) == after[0] else 0
                for number, row in _rows(path, name, skip):
                    rows.append(row)
                    where.append((name, number))
                    if len(rows) >= size:
                        yield rows, where
                        rows, where = [], []
            if rows:
                yield rows, where

        # aclosing: a caller that stops early (a full page) stops the reader thread now.
        async with contextlib.aclosing(iterate_in_thread(self._guard(batches))) as chunks:
            async for rows, where in chunks:
                yield Batch(rows, _positions(where))

    async def get(self, request: GetRequest) -> Mapping[str, Any] | None:
        """A scan: there is no index to look an id up in."""
        scan = ReadRequest(request.entity, request.origin, request.id_paths, request.paths,
                           lines=request.lines)
        wanted = tuple(request.id_values)
        async with contextlib.aclosing(self.read(scan)) as batches:
            async for batch in batches:
                for row in batch.rows:
                    if ROW_ERRORS_KEY not in row and _key(row, request.id_paths) == wanted:
                        return row
        return None

    async def discover(self) -> SourceSchema:
        """One table per ``*.jsonl`` and ``*.ndjson`` file directly in the directory."""

        def tables() -> SourceSchema:
            self._require_directory()
            paths = sorted(p for p in self.directory.iterdir() if p.is_file()
                           and p.suffix.lower() in _DISCOVERABLE and not p.name.startswith("."))
            return SourceSchema(tuple(TableInfo(p.name, _columns(p)) for p in paths))

        return await self._call(tables)

    async def describe(self, origin: Mapping[str, Any]) -> TableInfo | None:
        """The columns of an entity's file as it is now (of a glob: its newest file)."""
        parsed = self._origin(origin, "describe")

        def newest() -> TableInfo | None:
            files = self._list(parsed)
            return TableInfo(files[-1][0], _columns(files[-1][1])) if files else None

        return await self._call(newest)

    async def check(self) -> None:
        await self._call(self._require_directory)

    # --- files and requests ----------------------------------------------------------------

    def _require_directory(self) -> None:
        if not self.directory.is_dir():
            what = "is not a directory" if self.directory.exists() else "does not exist"
            raise self._unavailable(f"directory {self.directory} {what}")
        with os.scandir(self.directory) as entries:  # PermissionError: see _guard
            next(entries, None)

    def _list(self, origin: _Origin) -> list[tuple[str, Path]]:
        """The origin's files as (name relative to the directory, path), in reading order."""
        if origin.file is not None:
            path = self.directory / Path(origin.file).expanduser()
            if not path.is_file():
                what = "is not a file" if path.exists() else "not found"
                raise self._unavailable(f"file {path} {what}")
            return [(self._name(path), path)]
        if not self.directory.is_dir():
            raise self._unavailable(f"directory {self.directory} does not exist")
        pattern = os.path.expanduser(str(origin.files))
        paths = [self.directory / m for m in glob.glob(pattern, root_dir=self.directory,
                                                       recursive=True)]
        files = sorted(((self._name(p), p) for p in paths if p.is_file()),
                       key=lambda f: _order_key(f[0]))
        if not files:
            self.res.logger.warning("source %r: %r matches no files in %s",
                                    self.res.source, origin.files, self.directory)
        return files

    def _name(self, path: Path) -> str:
        try:
            return path.relative_to(self.directory).as_posix()
        except ValueError:  # an absolute path elsewhere
            return path.as_posix()

    def _origin(self, origin: Mapping[str, Any], where: str,
                lines: LinesRequest | None = None) -> _Origin:
        """A validated ``from:`` block."""
        if lines is not None:
            raise self._error(f"{where}: the jsonl connector reads no lines: blocks")
        try:
            return _Origin.model_validate(dict(origin))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'from'}: {e['msg']}".replace("Value error, ", "")
                for e in exc.errors(include_url=False)
            )
            raise self._error(f"{where}: invalid from: block {dict(origin)!r}: {problems}"
                              ) from None

    def _after(self, position: Position | None) -> tuple[tuple[str, str], int] | None:
        if position is None:
            return None
        if isinstance(position, Mapping) and set(position) == {"file", "line"}:
            name, line = position["file"], position["line"]
            if isinstance(name, str) and type(line) is int and line >= 0:
                return _order_key(name), line
        raise self._error(
            f"cannot resume from position {position!r}: expected {{'file': NAME, 'line': N}}"
        )

    def _error(self, message: str) -> SourceError:
        return SourceError(self.res.source, message, owner=self.res.owner)

    def _unavailable(self, message: str) -> SourceUnavailable:
        return SourceUnavailable(self.res.source, message, owner=self.res.owner)

    def _guard(self, make: Callable[[], Iterator[T]]) -> Callable[[], Iterator[T]]:
        """Wrap a blocking generator so OS errors become SourceErrors naming the source."""

        def guarded() -> Iterator[T]:
            try:
                yield from make()
            except (FileNotFoundError, PermissionError) as exc:
                raise self._unavailable(f"cannot read {exc.filename}: {exc.strerror}") from None
            except OSError as exc:  # a network share gone, a disk failing
                raise self._unavailable(
                    f"cannot read {exc.filename or self.directory}: {exc.strerror or exc}"
                ) from None

        return guarded

    async def _call(self, fn: Callable[[], T]) -> T:
        """One blocking call in a reader thread, its OS errors as SourceErrors."""

        def once() -> Iterator[T]:
            yield fn()

        async with contextlib.aclosing(iterate_in_thread(self._guard(once), buffer=1)) as it:
            async for value in it:
                return value
        raise AssertionError("the reader thread returned nothing")


# --- lines -----------------------------------------------------------------------------------


def _rows(path: Path, name: str, skip: int = 0) -> Generator[tuple[int, Row], None, None]:
    """(line number, row) of each non-blank line after the first ``skip`` lines."""
    with path.open("rb") as fh:  # bytes: a bad line must not stop the file
        for number, raw in islice(enumerate(fh, start=1), skip, None):
            if raw.strip():
                yield number, _parse(raw, f"{name} line {number}", number == 1)


def _parse(raw: bytes, where: str, first: bool) -> Row:
    raw = raw.rstrip(b"\r\n")
    if first:
        raw = raw.removeprefix(codecs.BOM_UTF8)  # Windows tools write one
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _bad(raw.decode("utf-8", "backslashreplace"),
                    f"{where}: invalid utf-8 bytes at column {exc.start + 1}")
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return _bad(text, f"{where}: invalid JSON: {exc.msg}: column {exc.colno}")
    except (ValueError, RecursionError) as exc:  # NaN, a 5,000-digit number, deep nesting
        return _bad(text, f"{where}: invalid JSON: {exc}")
    if not isinstance(value, dict):
        return _bad(text, f"{where}: a JSON {_JSON_TYPES[type(value)]}, not an object")
    return value


def _bad(text: str, reason: str) -> Row:
    return {LINE_KEY: text, ROW_ERRORS_KEY: [reason]}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _columns(path: Path) -> tuple[ColumnInfo, ...]:
    """Top-level keys of the file's first objects, with the JSON types seen under each."""
    with contextlib.closing(_rows(path, path.name)) as rows:
        sample = list(islice((r for _, r in rows if ROW_ERRORS_KEY not in r), _SAMPLE))
    seen: dict[str, set[str]] = {}
    for obj in sample:
        for key, value in obj.items():
            seen.setdefault(key, set()).add(_JSON_TYPES[type(value)])
    return tuple(
        ColumnInfo(key, "|".join(sorted(types - {"null"})) or "null",
                   nullable="null" in types or any(key not in obj for obj in sample))
        for key, types in seen.items()
    )


def _at(row: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, as the mapping finds it (a flat key wins)."""
    if path in row:
        return row[path]
    value: Any = row
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _key(row: Mapping[str, Any], paths: Sequence[str]) -> tuple[str | None, ...]:
    """The row's id as the text its canonical id was made of."""
    return tuple(None if (v := _at(row, p)) is None else part_text(v) for p in paths)


def _order_key(name: str) -> tuple[str, str]:
    return PurePosixPath(name).name, name


def _positions(where: list[tuple[str, int]]) -> Callable[[int], Position]:
    def position_after(index: int) -> dict[str, Any]:
        name, line = where[index]
        return {"file": name, "line": line}

    return position_after
