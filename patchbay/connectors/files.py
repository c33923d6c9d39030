"""Files: CSV exports (one file or a folder of dated ones) and fixed-width records, streamed.

An entity's ``from:`` block names its file(s) relative to the ``directory`` setting:

* ``{file: crm_contacts.csv}``: one CSV file;
* ``{files: "exports/customers_*.csv"}``: a glob; the files are read in order of file name (then of
  relative path), so dated exports come oldest first;
* ``{file: legacy.dat, format: fixed, layout: {CUST_NO: [0, 6], NAME: [6, 36]}}``: fixed-width
  records, each column a ``[start, end)`` slice of the line in characters, values stripped.

Encodings are declared or detected per file: a UTF-8 BOM gives ``utf-8-sig``; else a file that is
valid UTF-8 throughout is ``utf-8``; else ``cp1252`` when every byte is defined there; else
``latin-1``. Detection streams the bytes once through an incremental decoder. Delimiters are
declared or sniffed (``csv.Sniffer`` over the first 64 KB, among ``, ; TAB |``; when it cannot
decide, the one of those most frequent in the first line, else ``,``).

Rows are dicts of strings keyed by column name. Nothing is lost on bad input: a record with bytes
the encoding cannot decode, with more or fewer fields than the header, or a fixed-width line shorter
than its layout is still yielded with what could be read, and lists the reasons under
``ROW_ERRORS_KEY`` so the mapping quarantines it. Undecodable bytes appear in values as the text
``\\xNN``; fields beyond the header appear under ``#<position>`` (1-based).

Reads stream with bounded memory in a producer thread. A position is ``{"file": <path relative to
directory>, "row": <1-based record number in that file>}``; resuming re-lists the files and skips
those that sort before that file and the first ``row`` records of it.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import glob
import os
import re
from bisect import bisect_right
from collections import defaultdict
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, ClassVar, Literal, Self, TextIO, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

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
    invalid_block,
)
from patchbay.core.errors import SourceError, SourceUnavailable
from patchbay.core.mapping import LINES_KEY, ROW_ERRORS_KEY
from patchbay.core.threads import iterate_in_thread

__all__ = ["FileConnector", "FileSettings"]

T = TypeVar("T")
Row = dict[str, Any]

_SAMPLE = 64 * 1024  # characters handed to csv.Sniffer
_CHUNK = 1 << 20  # bytes per step of encoding detection
_DELIMITERS = ",;\t|"
_DISCOVERABLE = {".csv", ".tsv", ".txt"}
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
_UNDECODED = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" makes of bad bytes
_GET_PROGRESS = 10_000  # rows between the points where a cancelled get() can stop


def _codec(name: str) -> str:
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(f"unknown encoding {name!r}") from None
    return name


Encoding = Annotated[str, AfterValidator(_codec)]
Char = Annotated[str, Field(min_length=1, max_length=1)]


class FileSettings(BaseModel):
    """The ``settings:`` block: where the files are and the defaults every entity can override."""

    model_config = ConfigDict(extra="forbid")

    directory: str = "."  # relative to the config file's directory
    encoding: Encoding | None = None  # None: detect per file
    delimiter: Char | None = None  # None: sniff per file
    quotechar: Char = '"'

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        _check_chars(self.delimiter, self.quotechar)
        return self


class _Origin(BaseModel):
    """An entity's (or its lines') ``from:`` block."""

    model_config = ConfigDict(extra="forbid")

    file: str | None = None
    files: str | None = None
    format: Literal["csv", "fixed"] = "csv"
    encoding: Encoding | None = None
    delimiter: Char | None = None
    quotechar: Char | None = None
    header: bool = True
    columns: list[str] | None = None
    skip_rows: int = Field(default=0, ge=0)
    layout: dict[str, tuple[int, int]] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.file is None) == (self.files is None):
            raise ValueError("give exactly one of 'file' (one file) or 'files' (a glob)")
        if self.format == "fixed":
            unused = {"delimiter", "quotechar", "header", "columns"} & self.model_fields_set
            if unused:
                raise ValueError(f"{', '.join(sorted(unused))}: not used with format: fixed")
            if not self.layout:
                raise ValueError("format: fixed needs a layout: {COLUMN: [start, end], ...}")
            for name, (start, end) in self.layout.items():
                if not 0 <= start < end:
                    raise ValueError(f"layout.{name}: need 0 <= start < end, got [{start}, {end}]")
            return self
        if self.layout is not None:
            raise ValueError("layout: only with format: fixed")
        if self.header and self.columns is not None:
            raise ValueError("columns: only with header: false (otherwise the header names them)")
        if not self.header and not self.columns:
            raise ValueError("header: false needs columns: [NAME, ...]")
        if self.columns is not None and len(set(self.columns)) != len(self.columns):
            raise ValueError("columns: names must be unique")
        _check_chars(self.delimiter, self.quotechar or '"')
        return self


def _check_chars(delimiter: str | None, quotechar: str) -> None:
    if delimiter is not None and delimiter in "\r\n":
        raise ValueError("delimiter cannot be a line break")
    if quotechar in "\r\n" or quotechar == delimiter:
        raise ValueError("quotechar must differ from the delimiter and from line breaks")


@dataclass(frozen=True, slots=True)
class _Spec:
    """A validated ``from:`` block with the settings' defaults filled in."""

    pattern: str
    is_glob: bool
    fixed: bool
    encoding: str | None
    delimiter: str | None
    quotechar: str
    header: bool
    columns: tuple[str, ...] | None
    skip_rows: int
    layout: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class _File:
    path: Path
    name: str  # relative to the directory (posix), as positions and reasons show it

    @property
    def key(self) -> tuple[str, str]:
        return _order_key(self.name)


class FileConnector(Connector):
    """CSV and fixed-width files under ``settings.directory``; needs no injected resources."""

    kind = "files"
    Settings = FileSettings
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.READ, Capability.GET, Capability.DISCOVER, Capability.CHECK}
    )

    def __init__(self, settings: FileSettings, resources: Resources) -> None:
        super().__init__(settings, resources)
        self.options = settings
        base = Path(resources.base_dir) if resources.base_dir is not None else Path.cwd()
        self.directory = base / Path(settings.directory).expanduser()

    def can_order(self, request: ReadRequest, order: SourceOrder) -> bool:
        return False  # rows come in file order; the Hub refuses order_by for this source

    # --- reading ---------------------------------------------------------------------------

    async def read(self, request: ReadRequest) -> AsyncGenerator[Batch, None]:
        if request.order:
            raise self._error("the files connector cannot sort; rows come in file order")
        spec = self._spec(request.origin, f"entity {request.entity!r}")
        lines_spec = self._lines_spec(request.lines)
        after = self._after(request.position)
        size = max(1, request.batch_size)
        need = (*request.id_paths, *request.paths)

        def batches() -> Iterator[tuple[list[Row], list[tuple[int, str, int]]]]:
            by_key = None
            if request.lines is not None and lines_spec is not None:
                by_key = self._load_lines(request.lines, lines_spec)
            rows: list[Row] = []
            # (index in rows, file, record number): rows from there on count up in that file
            segments: list[tuple[int, str, int]] = []
            for file in self._list(spec):
                if after is not None and file.key < after[0]:
                    continue
                skip = after[1] if after is not None and file.key == after[0] else 0
                records = self._rows(file, spec, need)
                if skip:
                    next(islice(records, skip, skip), None)  # parsed, so quoted newlines count
                segments.append((len(rows), file.name, skip + 1))
                for number, row in enumerate(records, start=skip + 1):
                    if not segments:
                        segments.append((0, file.name, number))
                    if by_key is not None:
                        _attach(row, by_key.get(_key(row, request.id_paths), []))
                    rows.append(row)
                    if len(rows) >= size:
                        yield rows, segments
                        rows, segments = [], []
            if rows:
                yield rows, segments

        # aclosing: a caller that stops early (a full page) stops the reader thread now.
        async with contextlib.aclosing(iterate_in_thread(self._guard(batches))) as chunks:
            async for rows, segments in chunks:
                yield Batch(rows, _positions(segments))

    def _load_lines(self, lines: LinesRequest, spec: _Spec) -> dict[tuple[str, ...], list[Row]]:
        """Every line row by its key, read once per read.

        Line files (order lines, invoice lines) of an export are small enough to hold; the header
        file itself is still streamed. Lines keep file order (``order_by`` is not applied).
        """
        by_key: dict[tuple[str, ...], list[Row]] = defaultdict(list)
        need = (*lines.key, *lines.paths, *lines.order_by)
        for file in self._list(spec):
            for row in self._rows(file, spec, need):
                by_key[_key(row, lines.key)].append(row)
        return dict(by_key)

    async def get(self, request: GetRequest) -> Mapping[str, Any] | None:
        spec = self._spec(request.origin, f"entity {request.entity!r}")
        lines_spec = self._lines_spec(request.lines)
        wanted = tuple(v.strip() for v in request.id_values)
        need = (*request.id_paths, *request.paths)

        def find() -> Iterator[list[Row]]:
            for file in self._list(spec):
                for number, row in enumerate(self._rows(file, spec, need), start=1):
                    if _key(row, request.id_paths) == wanted:
                        if request.lines is not None and lines_spec is not None:
                            _attach(row, list(self._matching_lines(request.lines, lines_spec,
                                                                   wanted)))
                        yield [row]
                        return
                    if number % _GET_PROGRESS == 0:
                        yield []  # lets a cancelled caller stop the scan

        async with contextlib.aclosing(iterate_in_thread(self._guard(find), buffer=1)) as scan:
            async for found in scan:
                if found:
                    return found[0]
        return None

    def _matching_lines(self, lines: LinesRequest, spec: _Spec, key: tuple[str, ...]
                        ) -> Iterator[Row]:
        need = (*lines.key, *lines.paths, *lines.order_by)
        for file in self._list(spec):
            for row in self._rows(file, spec, need):
                if _key(row, lines.key) == key:
                    yield row

    async def discover(self) -> SourceSchema:
        """One table per ``*.csv``, ``*.tsv`` and ``*.txt`` file directly in the directory."""
        spec = _Spec("", False, False, self.options.encoding, self.options.delimiter,
                     self.options.quotechar, True, None, 0, ())

        def tables() -> Iterator[SourceSchema]:
            self._require_directory()
            found = []
            for path in sorted(self.directory.iterdir()):
                if path.name.startswith(".") or path.suffix.lower() not in _DISCOVERABLE:
                    continue
                if not path.is_file():
                    continue
                file = _File(path, self._name(path))
                names = self._csv_header(file, spec)
                found.append(TableInfo(file.name, tuple(ColumnInfo(n, "text") for n in names)))
            yield SourceSchema(tuple(found))

        async for schema in iterate_in_thread(self._guard(tables), buffer=1):
            return schema
        raise AssertionError("discover yielded nothing")

    async def describe(self, origin: Mapping[str, Any]) -> TableInfo | None:
        """The columns of an entity's file as it is now (of a glob: its newest file)."""
        spec = self._spec(origin, "describe")

        def header() -> Iterator[TableInfo | None]:
            files = self._list(spec)
            if not files:
                yield None
                return
            file = files[-1]
            if spec.fixed:
                names = [name for name, _, _ in spec.layout]
            elif spec.columns is not None:
                names = list(spec.columns)
            else:
                names = self._csv_header(file, spec)
            yield TableInfo(file.name, tuple(ColumnInfo(n, "text") for n in names))

        async with contextlib.aclosing(iterate_in_thread(self._guard(header), buffer=1)) as out:
            async for info in out:
                return info
        return None

    async def check(self) -> None:
        def probe() -> Iterator[None]:
            self._require_directory()
            yield None

        async for _ in iterate_in_thread(self._guard(probe), buffer=1):
            pass

    # --- files -----------------------------------------------------------------------------

    def _require_directory(self) -> None:
        if not self.directory.is_dir():
            what = "is not a directory" if self.directory.exists() else "does not exist"
            raise self._unavailable(f"directory {self.directory} {what}")
        try:
            with os.scandir(self.directory) as entries:
                next(entries, None)
        except OSError as exc:
            raise self._unavailable(
                f"directory {self.directory} is unreadable: {exc.strerror or exc}"
            ) from None

    def _list(self, spec: _Spec) -> list[_File]:
        if not spec.is_glob:
            path = self.directory / Path(spec.pattern).expanduser()
            if not path.is_file():
                what = "is not a file" if path.exists() else "not found"
                raise self._unavailable(f"file {path} {what}")
            return [_File(path, self._name(path))]
        if not self.directory.is_dir():
            raise self._unavailable(f"directory {self.directory} does not exist")
        pattern = os.path.expanduser(spec.pattern)
        matches = glob.glob(pattern, root_dir=self.directory, recursive=True)
        files = [_File(p, self._name(p)) for p in (self.directory / m for m in matches)
                 if p.is_file()]
        if not files:
            self.res.logger.warning(
                "source %r: %r matches no files in %s", self.res.source, spec.pattern,
                self.directory,
            )
        return sorted(files, key=lambda f: f.key)

    def _name(self, path: Path) -> str:
        try:
            return path.relative_to(self.directory).as_posix()
        except ValueError:  # an absolute path elsewhere
            return path.as_posix()

    def _rows(self, file: _File, spec: _Spec, need: Iterable[str]) -> Iterator[Row]:
        """The file's records in order; blank lines skipped; problems listed, never dropped."""
        encoding, clean = (spec.encoding, False) if spec.encoding else _detect(file.path)
        label = "utf-8" if encoding == "utf-8-sig" else encoding
        try:
            if spec.fixed:
                yield from self._fixed_rows(file, spec, need, encoding, clean, label)
            else:
                yield from self._csv_rows(file, spec, need, encoding, clean, label)
        except UnicodeError as exc:  # only codecs that surrogateescape cannot cover
            raise self._error(f"{file.name}: cannot decode as {label}: {exc}") from None

    def _csv_rows(self, file: _File, spec: _Spec, need: Iterable[str], encoding: str,
                  clean: bool, label: str) -> Iterator[Row]:
        with _open(file.path, encoding, newline="") as fh:
            reader = self._reader(fh, spec)
            columns = list(spec.columns or ())
            width = len(columns) if spec.columns is not None else -1  # -1: header not read yet
            if width >= 0:
                self._require_columns(file, columns, need)
            what = "header has" if spec.header else "columns: lists"
            offset, done = spec.skip_rows, 0  # line numbers: skipped lines + lines read so far
            try:
                for record in reader:
                    previous, done = done, reader.line_num
                    count = len(record)
                    if (count == width and (count > 1 or record[0].strip())
                            and (clean or not _UNDECODED.search("".join(record)))):
                        yield dict(zip(columns, record, strict=True))  # the usual case
                        continue
                    if not record or (count == 1 and not record[0].strip()):
                        continue  # a blank line
                    if width < 0:
                        columns = _header(record)
                        width = len(columns)
                        self._require_columns(file, columns, need)
                        continue
                    line = offset + previous + 1
                    row = dict(zip(columns, record, strict=False))
                    errors: list[str] = []
                    if count != width:
                        errors.append(f"{file.name} line {line}: {count} fields, {what} {width}")
                        for name in columns[count:]:
                            row[name] = ""
                        for position in range(width, count):
                            row[f"#{position + 1}"] = record[position]
                    if not clean:
                        names = [*columns, *(f"#{p + 1}" for p in range(width, count))]
                        _undecoded(row, names, errors, f"{file.name} line {line}", label)
                    if errors:
                        row[ROW_ERRORS_KEY] = errors
                    yield row
            except csv.Error as exc:
                raise self._error(
                    f"{file.name} line {offset + reader.line_num}: {exc}"
                ) from None

    def _reader(self, fh: TextIO, spec: _Spec) -> Any:
        """A csv reader positioned after the skipped lines, with a declared or sniffed delimiter."""
        for _ in range(spec.skip_rows):
            fh.readline()
        delimiter = spec.delimiter
        if delimiter is None:
            start = fh.tell()
            delimiter = _sniff(fh.read(_SAMPLE))
            fh.seek(start)
        return csv.reader(fh, delimiter=delimiter, quotechar=spec.quotechar)

    def _csv_header(self, file: _File, spec: _Spec) -> list[str]:
        """Column names of a CSV file, reading only its beginning (for discover)."""
        encoding = spec.encoding or _detect(file.path, limit=_CHUNK)[0]
        with _open(file.path, encoding, newline="") as fh:
            reader = self._reader(fh, spec)
            try:
                for record in reader:
                    if record and (len(record) > 1 or record[0].strip()):
                        return _header(record)
            except csv.Error as exc:
                raise self._error(f"{file.name}: {exc}") from None
        return []

    def _fixed_rows(self, file: _File, spec: _Spec, need: Iterable[str], encoding: str,
                    clean: bool, label: str) -> Iterator[Row]:
        layout = spec.layout
        self._require_columns(file, [name for name, _, _ in layout], need)
        names = [name for name, _, _ in layout]
        length = max(end for _, _, end in layout)
        with _open(file.path, encoding, newline=None) as fh:
            numbered = enumerate(fh, start=1)
            for number, text in islice(numbered, spec.skip_rows, None):
                line = text.rstrip("\n")
                if not line.strip():
                    continue
                row: Row = {name: line[start:end].strip() for name, start, end in layout}
                errors: list[str] = []
                if len(line) < length:
                    errors.append(
                        f"{file.name} line {number}: {len(line)} characters, layout needs {length}"
                    )
                if not clean and _UNDECODED.search(line):
                    _undecoded(row, names, errors, f"{file.name} line {number}", label)
                if errors:
                    row[ROW_ERRORS_KEY] = errors
                yield row

    def _require_columns(self, file: _File, columns: Sequence[str], need: Iterable[str]) -> None:
        known = set(columns)
        missing = [p for p in dict.fromkeys(need) if p not in known]
        if missing:
            raise self._error(
                f"{file.name} has no column {', '.join(map(repr, missing))}; "
                f"columns: {', '.join(columns) or '(none)'}"
            )

    # --- requests --------------------------------------------------------------------------

    def _spec(self, origin: Mapping[str, Any], where: str) -> _Spec:
        try:
            parsed = _Origin.model_validate(dict(origin))
        except ValidationError as exc:
            raise self._error(f"{where}: invalid from: block {dict(origin)!r}: "
                              f"{invalid_block(exc)}") from None
        s = self.options
        layout = tuple((n, a, b) for n, (a, b) in (parsed.layout or {}).items())
        return _Spec(
            pattern=parsed.file if parsed.file is not None else str(parsed.files),
            is_glob=parsed.files is not None,
            fixed=parsed.format == "fixed",
            encoding=parsed.encoding or s.encoding,
            delimiter=parsed.delimiter or s.delimiter,
            quotechar=parsed.quotechar or s.quotechar,
            header=parsed.header,
            columns=tuple(parsed.columns) if parsed.columns is not None else None,
            skip_rows=parsed.skip_rows,
            layout=layout,
        )

    def _lines_spec(self, lines: LinesRequest | None) -> _Spec | None:
        return None if lines is None else self._spec(lines.origin, "lines")

    def _after(self, position: Position | None) -> tuple[tuple[str, str], int] | None:
        if position is None:
            return None
        if isinstance(position, Mapping) and set(position) == {"file", "row"}:
            name, row = position["file"], position["row"]
            if isinstance(name, str) and type(row) is int and row >= 0:
                return _order_key(name), row
        raise self._error(
            f"cannot resume from position {position!r}: expected {{'file': NAME, 'row': N}}"
        )

    # --- plumbing --------------------------------------------------------------------------

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
            except (IsADirectoryError, NotADirectoryError) as exc:
                raise self._error(f"cannot read {exc.filename}: {exc.strerror}") from None
            except OSError as exc:  # I/O errors: a network share gone, a disk failing
                raise self._unavailable(
                    f"cannot read {exc.filename or self.directory}: {exc.strerror or exc}"
                ) from None

        return guarded


# --- helpers -------------------------------------------------------------------------------


def _open(path: Path, encoding: str, *, newline: str | None) -> TextIO:
    return path.open(encoding=encoding, errors="surrogateescape", newline=newline)


def _detect(path: Path, limit: int | None = None) -> tuple[str, bool]:
    """The file's encoding, and whether every byte is known to decode in it.

    Streams the file once (or its first ``limit`` bytes) in chunks: never the whole file in memory.
    """
    utf8 = codecs.getincrementaldecoder("utf-8")()
    utf8_ok = cp1252_ok = True
    seen = 0
    with path.open("rb") as fh:
        chunk = fh.read(_CHUNK)
        bom = chunk.startswith(codecs.BOM_UTF8)
        while chunk:
            if utf8_ok:
                try:
                    utf8.decode(chunk)
                except UnicodeDecodeError:
                    utf8_ok = False
            if cp1252_ok and not bom and any(b in chunk for b in _CP1252_UNDEFINED):
                cp1252_ok = False
            seen += len(chunk)
            if (not utf8_ok and (bom or not cp1252_ok)) or (limit is not None and seen >= limit):
                break
            chunk = fh.read(_CHUNK)
        else:  # the whole file was seen: a sequence cut off at the end is invalid too
            if utf8_ok:
                try:
                    utf8.decode(b"", final=True)
                except UnicodeDecodeError:
                    utf8_ok = False
    if bom:
        return "utf-8-sig", utf8_ok
    if utf8_ok:
        return "utf-8", True
    if cp1252_ok:
        return "cp1252", True
    return "latin-1", True


def _sniff(sample: str) -> str:
    cut = sample.rfind("\n")
    if len(sample) >= _SAMPLE and cut > 0:
        sample = sample[: cut + 1]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:  # too few or too irregular lines: go by the header line
        first = sample.split("\n", 1)[0]
        counts = [(first.count(d), -rank) for rank, d in enumerate(_DELIMITERS)]
        count, rank = max(counts)
        return _DELIMITERS[-rank] if count else ","


def _header(record: Sequence[str]) -> list[str]:
    """Column names: stripped of whitespace and BOM; blanks and repeats named by position."""
    names: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(record, start=1):
        name = _escape(raw).strip().lstrip("\ufeff").strip()
        if not name:
            name = f"#{position}"
        elif name in seen:
            name = f"{name}#{position}"
        seen.add(name)
        names.append(name)
    return names


def _undecoded(row: Row, names: Sequence[str], errors: list[str], where: str, label: str
               ) -> None:
    """Report and escape undecodable bytes in ``row``'s values."""
    bad = []
    for name in names:
        value = row.get(name)
        if isinstance(value, str) and _UNDECODED.search(value):
            bad.append(name)
            row[name] = _escape(value)
    if bad:
        which = f"column {bad[0]!r}" if len(bad) == 1 else f"columns {', '.join(map(repr, bad))}"
        errors.append(f"{where}: invalid {label} bytes in {which}")


def _escape(text: str) -> str:
    """Undecodable bytes as the text ``\\xNN``: readable, and safe to store as UTF-8."""
    return _UNDECODED.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", text)


def _key(row: Mapping[str, Any], paths: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(row[p]).strip() for p in paths)


def _attach(header: Row, lines: list[Row]) -> None:
    header[LINES_KEY] = lines


def _order_key(name: str) -> tuple[str, str]:
    return PurePosixPath(name).name, name


def _positions(segments: list[tuple[int, str, int]]) -> Callable[[int], Position]:
    starts = [start for start, _, _ in segments]

    def position_after(index: int) -> dict[str, Any]:
        start, name, first = segments[bisect_right(starts, index) - 1]
        return {"file": name, "row": first + index - start}

    return position_after
