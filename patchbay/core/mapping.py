"""Mappings: how one source's rows become one entity's canonical records.

A mapping spec (the ``entities.<name>`` block of a source in ``patchbay.yaml``) is compiled ONCE
into a :class:`Mapping`, whose ``map_batch`` turns a batch of source rows into validated records,
quarantined rows with their reasons, and counts of nulled fields for the quality report:

* a field whose transform fails is nulled and counted, unless it is ``required`` (or the entity
  requires it): then the row is quarantined;
* a row without an id is quarantined;
* nothing is dropped silently.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from patchbay.core import normalise as n
from patchbay.core.entities import Record
from patchbay.core.filters import FieldInfo, FieldKind, field_catalog
from patchbay.core.ids import canonical_id, remote_id
from patchbay.core.transforms import SourceForm, Transform, TransformContext, compile_transform

__all__ = [
    "LINES_KEY",
    "ROW_ERRORS_KEY",
    "EntitySpec",
    "FieldSpec",
    "LinesSpec",
    "MappedBatch",
    "Mapping",
    "MappingError",
    "Quarantined",
    "compile_mapping",
]

# Connectors attach an entity's line rows to each header row under this key.
LINES_KEY = "__patchbay_lines__"
# A connector that could read a row only in part (undecodable bytes, a CSV line with too many
# fields) lists what is wrong under this key; the mapping quarantines the row with those reasons.
ROW_ERRORS_KEY = "__patchbay_errors__"

Path = str | list[str]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FieldSpec(_Spec):
    """``target: {path: COLUMN, transform: ..., required: true}``, or ``target: COLUMN``."""

    path: Path | None = None
    transform: Any = None
    required: bool = False
    pushdown: bool = True  # set false when the source compares differently from the canonical value

    @field_validator("path")
    @classmethod
    def _non_empty(cls, value: Path | None) -> Path | None:
        if value is not None and (value == "" or value == []):
            raise ValueError("path must name a column or field")
        return value


FieldEntry = FieldSpec | str


class LinesSpec(_Spec):
    origin: dict[str, Any] = Field(alias="from")
    key: Path  # the line table's columns holding the header's id, in the order of its id
    order_by: Path | None = None
    fields: dict[str, FieldEntry] = Field(default_factory=dict)


class EntitySpec(_Spec):
    origin: dict[str, Any] = Field(alias="from")
    id: Path
    updated_at: FieldEntry | None = None
    fields: dict[str, FieldEntry] = Field(default_factory=dict)
    lines: LinesSpec | None = None


class MappingError(ValueError):
    """A mapping spec that cannot compile. ``problems`` are (path in the spec, message) pairs."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.problems: list[tuple[str, str]] = [(path, message)]
        super().__init__(message)

    @classmethod
    def collected(cls, errors: list[MappingError]) -> MappingError:
        first = errors[0]
        for other in errors[1:]:
            first.problems.extend(other.problems)
        return first


@dataclass(frozen=True, slots=True)
class Quarantined:
    source: str
    entity: str
    remote_id: str | None
    reasons: tuple[str, ...]
    raw: dict[str, Any]


@dataclass(slots=True)
class MappedBatch:
    records: list[Record]
    quarantined: list[Quarantined]
    nulled: Counter[str]  # "field: reason kind" -> count
    # For each record, its index in the source batch (to find the resume position after it).
    indexes: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Pushable:
    """How a canonical field can be filtered at the source."""

    path: str
    form: SourceForm


# --- compilation -----------------------------------------------------------------------------


def _path_getter(path: Path) -> Callable[[MappingABC[str, Any]], Any]:
    if isinstance(path, list):
        if not any("." in p for p in path):  # flat columns, the common case: one C-level pass
            names = tuple(path)
            return lambda row: tuple(map(row.get, names))
        getters = [_path_getter(p) for p in path]
        return lambda row: tuple(g(row) for g in getters)
    if "." not in path:
        def flat(row: MappingABC[str, Any]) -> Any:
            return row.get(path)

        flat.flat_path = path  # type: ignore[attr-defined]
        return flat
    parts = path.split(".")

    def nested(row: MappingABC[str, Any]) -> Any:
        value: Any = row
        for part in parts:
            if not isinstance(value, MappingABC):
                return None
            value = value.get(part)
        return value

    # A flat column whose name contains a dot still wins over a nested lookup.
    return lambda row: row[path] if path in row else nested(row)


def _chain(transforms: Sequence[Transform], multi: bool) -> Callable[[Any], Any] | None:
    if not transforms:
        return None
    fns = [t.fn for t in transforms]
    if multi and not transforms[0].takes_tuple:
        first = fns[0]
        fns[0] = lambda value: first(" ".join(str(v) for v in value if v not in (None, "")) or None)
    if len(fns) == 1:
        return fns[0]
    steps = [(fn, t.on_null) for fn, t in zip(fns, transforms, strict=True)]

    def chained(value: Any) -> Any:
        for fn, on_null in steps:
            if value is not None or on_null:  # null passes through, except into const/default
                value = fn(value)
        return value

    return chained


def _implicit(kind: FieldKind, ctx: TransformContext) -> Transform | None:
    """What a plain path gets for free so canonical types hold (aware UTC datetimes)."""
    if kind is FieldKind.DATETIME:
        return Transform("datetime", n.compile_datetime(None, ctx.timezone), SourceForm.EXACT)
    if kind is FieldKind.EMAIL:
        return Transform("email", n.email, SourceForm.FOLD)
    return None


def _form(transforms: Sequence[Transform]) -> SourceForm | None:
    if not transforms:
        return SourceForm.EXACT
    forms = {t.form for t in transforms}
    if None in forms:
        return None
    if SourceForm.REF in forms:
        return SourceForm.REF if len(transforms) == 1 else None
    return SourceForm.FOLD if SourceForm.FOLD in forms else SourceForm.EXACT


@dataclass(frozen=True, slots=True)
class _Step:
    target: str  # the canonical path, for reasons
    get: Callable[[MappingABC[str, Any]], Any]
    fn: Callable[[Any], Any] | None
    required: bool
    container: str | None  # "address", "extra" or None for a top-level field
    key: str
    cacheable: bool = False  # every transform is a pure function of one text value
    on_null: bool = False  # the transforms run on a null value too (const, default)


def _field_steps(
    model: type[BaseModel],
    catalog: dict[str, FieldInfo] | None,
    fields: MappingABC[str, FieldEntry],
    ctx: TransformContext,
    required: frozenset[str],
    where: str,
    pushables: dict[str, Pushable] | None,
) -> list[_Step]:
    steps: list[_Step] = []
    errors: list[MappingError] = []
    for target, entry in fields.items():
        try:
            step = _field_step(model, catalog, target, entry, ctx, required, where, pushables)
        except MappingError as exc:
            errors.append(exc)
            continue
        steps.append(step)
    if errors:
        raise MappingError.collected(errors)
    return steps


def _field_step(
    model: type[BaseModel],
    catalog: dict[str, FieldInfo] | None,
    target: str,
    entry: FieldEntry,
    ctx: TransformContext,
    required: frozenset[str],
    where: str,
    pushables: dict[str, Pushable] | None,
) -> _Step:
    nested_models = _nested_models(model)
    spec = FieldSpec(path=entry) if isinstance(entry, str) else entry
    at = f"{where}.{target}"
    if spec.path is None:
        if spec.transform is None:
            raise MappingError(at, "a field needs a path (or a const transform)")
        getter: Callable[[MappingABC[str, Any]], Any] = lambda row: None  # noqa: E731
    else:
        getter = _path_getter(spec.path)
    container, _, key = target.rpartition(".")
    if container == "extra" and "extra" not in model.model_fields:
        raise MappingError(at, f"{target!r}: lines have no extra fields; targets: "
                               f"{', '.join(sorted(model.model_fields))}")
    if container == "extra":
        kind = FieldKind.ANY
    elif container:
        if container not in nested_models or key not in nested_models[container].model_fields:
            raise MappingError(at, _unknown_target(target, model))
        kind = FieldKind.TEXT if catalog is None else catalog[target].kind
    else:
        if key not in model.model_fields or key in ("id", "source", "remote_id", "extra", "raw"):
            raise MappingError(at, _unknown_target(target, model))
        if key == "lines" or key == "updated_at":
            raise MappingError(at, f"{key} is mapped in its own block, not under fields")
        kind = catalog[target].kind if catalog is not None and target in catalog else FieldKind.ANY
    try:
        transforms = compile_transform(spec.transform, ctx)
    except (ValueError, LookupError) as exc:
        raise MappingError(f"{at}.transform", str(exc)) from None
    multi = isinstance(spec.path, list)
    if not transforms:
        implicit = _implicit(kind, ctx)
        transforms = [implicit] if implicit else []
        if multi:
            raise MappingError(at, "a path list needs a transform that combines the values")
    if pushables is not None and spec.pushdown and isinstance(spec.path, str):
        form = _form(transforms)
        if form is not None:
            pushables[target] = Pushable(spec.path, form)
    return _Step(
        target=target,
        get=getter,
        fn=_chain(transforms, multi),
        required=spec.required or target in required,
        container=container or None,
        key=key,
        cacheable=bool(transforms) and not multi and all(t.cacheable for t in transforms),
        on_null=any(t.on_null for t in transforms),
    )


def _nested_models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    out: dict[str, type[BaseModel]] = {}
    for name, info in model.model_fields.items():
        for candidate in (info.annotation, *getattr(info.annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                from patchbay.core.entities import Money

                if candidate is not Money:
                    out[name] = candidate
    return out


def _unknown_target(target: str, model: type[BaseModel]) -> str:
    names = sorted(
        set(field_catalog(model) if issubclass(model, Record) else model.model_fields)
        - {"id", "source", "remote_id", "updated_at"}
    )
    return f"unknown target {target!r}; targets: {', '.join(names)}, extra.<name>"


class Mapping:
    """One source+entity mapping, compiled. Call :meth:`map_batch` on batches of source rows."""

    def __init__(
        self,
        *,
        source: str,
        model: type[Record],
        spec: EntitySpec,
        id_paths: tuple[str, ...],
        steps: list[_Step],
        updated_at: _Step | None,
        lines: _Lines | None,
        pushables: dict[str, Pushable],
    ) -> None:
        self.source = source
        self.model = model
        self.entity = model.entity
        self.spec = spec
        self.id_paths = id_paths
        self.steps = steps
        self.updated_at = updated_at
        self.lines = lines
        self.pushables = pushables
        self._id_getters = [_path_getter(p) for p in id_paths]
        self._prefix = f"{source}:"
        self._apply = compile_steps([*steps, *([updated_at] if updated_at else [])])
        self._run = compile_batch(self)

    @property
    def source_paths(self) -> tuple[str, ...]:
        """Every source path the mapping reads (ids first), for connectors that select columns."""
        paths: list[str] = list(self.id_paths)
        for path in _spec_paths(self.spec.fields):
            if path not in paths:
                paths.append(path)
        if self.spec.updated_at is not None:
            for path in _spec_paths({"updated_at": self.spec.updated_at}):
                if path not in paths:
                    paths.append(path)
        return tuple(paths)

    def reads(self) -> list[tuple[str, str, MappingABC[str, Any]]]:
        """What the mapping reads: (path in the spec, source path, the ``from:`` it reads in)."""
        spec = self.spec
        out: list[tuple[str, str, MappingABC[str, Any]]] = []
        for path in _as_tuple(spec.id):
            out.append(("id", path, spec.origin))
        entries: dict[str, FieldEntry] = dict(spec.fields)
        if spec.updated_at is not None:
            entries = {**entries, "updated_at": spec.updated_at}
        for target, entry in entries.items():
            where = "updated_at" if target == "updated_at" else f"fields.{target}"
            for path in _spec_paths({target: entry}):
                out.append((where, path, spec.origin))
        if spec.lines is not None:
            for path in _as_tuple(spec.lines.key):
                out.append(("lines.key", path, spec.lines.origin))
            for target, entry in spec.lines.fields.items():
                for path in _spec_paths({target: entry}):
                    out.append((f"lines.fields.{target}", path, spec.lines.origin))
        return out

    def map_batch(self, rows: Sequence[MappingABC[str, Any]], *, raw: bool = False) -> MappedBatch:
        # The cyclic GC would walk the batch's fresh records again and again while they are
        # held (see ../shared/notes/performance.md); records hold no cycles, so pause it for
        # the batch and let it run after.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._map_batch(rows, raw)
        finally:
            if collecting:
                gc.enable()

    def _map_batch(self, rows: Sequence[MappingABC[str, Any]], raw: bool) -> MappedBatch:
        records: list[Record] = []
        quarantined: list[Quarantined] = []
        indexes: list[int] = []
        nulled: Counter[str] = Counter()
        validate = self.model.model_validate
        source = self.source
        if self._run is not None and not raw:

            def quarantine(
                row: MappingABC[str, Any], data: dict[str, Any] | None, reasons: list[str]
            ) -> None:
                rid = data["remote_id"] if data is not None else None
                quarantined.append(
                    Quarantined(source, self.entity, rid, tuple(reasons), _plain(row))
                )

            def recover(
                row: MappingABC[str, Any], data: dict[str, Any], exc: ValidationError,
                reasons: list[str],
            ) -> Record | None:
                record = self._revalidate(data, exc, reasons, nulled)
                if record is None:
                    quarantine(row, data, reasons)
                return record

            self._run(rows, nulled, records, indexes, validate, quarantine, recover)
            return MappedBatch(records, quarantined, nulled, indexes)
        for index, row in enumerate(rows):
            data, reasons = self._map_row(row, nulled)
            if data is not None and not reasons:
                if raw:
                    data["raw"] = _plain(row)
                record: Record | None
                try:
                    record = validate(data)
                except ValidationError as exc:
                    record = self._revalidate(data, exc, reasons, nulled)
                if record is not None:
                    records.append(record)
                    indexes.append(index)
                    continue
            rid = data["remote_id"] if data is not None else None
            quarantined.append(Quarantined(source, self.entity, rid, tuple(reasons), _plain(row)))
        return MappedBatch(records, quarantined, nulled, indexes)

    def _map_row(
        self, row: MappingABC[str, Any], nulled: Counter[str]
    ) -> tuple[dict[str, Any] | None, list[str]]:
        errors = row.get(ROW_ERRORS_KEY)
        reasons: list[str] = list(errors) if errors else []
        if len(self._id_getters) == 1:
            # One key column, the common case: no lists, and integers need no encoding.
            key = self._id_getters[0](row)
            if key is None or (key.__class__ is str and not key.strip()):
                return None, [*reasons, f"id: missing ({self.id_paths[0]})"]
            if key.__class__ is int:
                rid = str(key)
                data: dict[str, Any] = {
                    "id": self._prefix + rid, "source": self.source, "remote_id": rid
                }
            else:
                data = {
                    "id": canonical_id(self.source, (key,)),
                    "source": self.source,
                    "remote_id": remote_id((key,)),
                }
        else:
            ids = [g(row) for g in self._id_getters]
            if any(v is None or (isinstance(v, str) and not v.strip()) for v in ids):
                return None, [*reasons, f"id: missing ({', '.join(self.id_paths)})"]
            data = {
                "id": canonical_id(self.source, ids),
                "source": self.source,
                "remote_id": remote_id(ids),
            }
        self._apply(row, data, reasons, nulled)
        if self.lines is not None:
            line_rows = row.get(LINES_KEY) or ()
            lines: list[dict[str, Any]] = []
            for number, line_row in enumerate(line_rows, start=1):
                line: dict[str, Any] = {}
                line_reasons: list[str] = list(line_row.get(ROW_ERRORS_KEY) or ())
                self.lines.apply(line_row, line, line_reasons, nulled)
                reasons.extend(f"lines[{number}].{r}" for r in line_reasons)
                lines.append(line)
            data["lines"] = lines
        return data, reasons

    def _revalidate(
        self, data: dict[str, Any], exc: ValidationError, reasons: list[str], nulled: Counter[str]
    ) -> Record | None:
        """Null the optional fields pydantic rejected and try once more; quarantine otherwise."""
        required = self.model.required | {"id", "source", "remote_id"}
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            top = str(loc[0]) if loc else ""
            target = ".".join(str(part) for part in loc)
            message = f"{target}: {error['msg']} (got {_short(error.get('input'))})"
            if top in required or top == "lines" or top not in data:
                reasons.append(message)
            else:
                data.pop(top, None)
                nulled[f"{top}: {error['type']}"] += 1
        if reasons:
            return None
        try:
            return self.model.model_validate(data)
        except ValidationError as again:
            reasons.extend(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in again.errors()
            )
            return None


@dataclass(frozen=True, slots=True)
class _Lines:
    key: tuple[str, ...]
    steps: list[_Step]
    apply: _Apply


_Apply = Callable[[MappingABC[str, Any], dict[str, Any], list[str], Counter[str]], None]


def compile_steps(steps: Sequence[_Step]) -> _Apply:
    """Compile a list of field steps into one plain function (generated once per mapping).

    The function reads each path, applies its transform, nulls and counts failures of optional
    fields, records reasons for required ones, and assigns into ``data`` (nested containers such
    as ``address`` and ``extra`` included). Generating the code removes the per-field loop and
    attribute lookups from the per-row path: it is several times faster than interpreting the
    steps one by one, which matters at a million rows.
    """
    namespace = _namespace()
    lines = ["def apply(row, data, reasons, nulled):", "    get = row.get"]
    lines += _field_code(steps, namespace)
    return _define(lines, namespace, "apply")  # type: ignore[no-any-return]


def _namespace() -> dict[str, Any]:
    return {
        "ValueError": ValueError, "ArithmeticError": ArithmeticError, "kind": _reason_kind,
        "MISS": _MISS, "CACHE_SIZE": _CACHE_SIZE,
    }


def _define(lines: list[str], namespace: dict[str, Any], name: str) -> Any:
    exec("\n".join(lines), namespace)  # noqa: S102 - code built from our own templates only
    return namespace[name]


def _field_code(steps: Sequence[_Step], namespace: dict[str, Any]) -> list[str]:
    """The statements (indented one level) that map ``row`` into ``data`` for these steps."""
    lines: list[str] = []
    containers: list[str] = []
    for i, step in enumerate(steps):
        namespace[f"g{i}"] = step.get
        namespace[f"f{i}"] = step.fn
        path = _plain_path(step)
        read = f"get({path!r})" if path is not None else f"g{i}(row)"
        lines.append(f"    v = {read}")
        if step.fn is not None:
            failure = (
                f"reasons.append({step.target + ': '!r} + str(e))"
                if step.required
                else f"nulled[{step.target + ': '!r} + kind(e)] += 1"
            )
            call = [
                "        try:",
                f"            v = f{i}(v)",
                "        except (ValueError, ArithmeticError) as e:",
                f"            v = {'False' if step.required else 'None'}",
                f"            {failure}",
            ]
            if step.cacheable:
                # Results of text values are remembered (failures are not), up to a bound.
                namespace[f"c{i}"] = {}
                lines += [
                    "    if v.__class__ is str:",
                    f"        r = c{i}.get(v, MISS)",
                    "        if r is not MISS:",
                    "            v = r",
                    "        else:",
                    "            k = v",
                    *("    " + line for line in call),
                    "            else:",
                    f"                if len(c{i}) < CACHE_SIZE: c{i}[k] = v",
                    "    elif v is not None:",
                    *call,
                ]
            elif step.on_null:
                lines += ["    if True:", *call]
            else:
                lines += ["    if v is not None:", *call]
        else:
            lines.append("    if v.__class__ is str and not v.strip(): v = None")
        target = "data" if step.container is None else f"c_{step.container}"
        if step.container is not None and step.container not in containers:
            containers.append(step.container)
        if step.required:
            lines += [
                "    if v is None:",
                f"        reasons.append({step.target + ': required, but missing'!r})",
                "    elif v is not False:" if step.fn is not None else "    else:",
                f"        {target}[{step.key!r}] = v",
            ]
        else:
            lines += ["    if v is not None:", f"        {target}[{step.key!r}] = v"]
    for name in containers:
        lines += [f"    if c_{name}:", f"        data[{name!r}] = c_{name}"]
    return [f"    c_{name} = {{}}" for name in containers] + lines


def compile_batch(mapping: Mapping) -> Callable[..., None] | None:
    """The whole per-row loop of a single-key mapping without lines, as one generated function.

    Rows whose fields fail go to ``quarantine``; pydantic's rejections to ``recover``: both rare,
    so they stay plain Python. None when the mapping needs the general path.
    """
    if len(mapping.id_paths) != 1 or mapping.lines is not None:
        return None
    namespace = _namespace()
    namespace.update(
        ERRORS=ROW_ERRORS_KEY, PREFIX=f"{mapping.source}:", SOURCE=mapping.source,
        canonical_id=canonical_id, remote_id=remote_id, ValidationError=ValidationError,
        g_id=mapping._id_getters[0],
    )
    id_path = mapping.id_paths[0]
    missing = f"id: missing ({id_path})"
    body = _field_code(mapping.steps + ([mapping.updated_at] if mapping.updated_at else []),
                       namespace)
    lines = [
        "def run(rows, nulled, records, indexes, validate, quarantine, recover):",
        "    for index, row in enumerate(rows):",
        "        get = row.get",
        "        errors = get(ERRORS)",
        "        reasons = list(errors) if errors else []",
        "        key = g_id(row)",
        "        if key is None or (key.__class__ is str and not key.strip()):",
        f"            reasons.append({missing!r})",
        "            quarantine(row, None, reasons)",
        "            continue",
        "        if key.__class__ is int:",
        "            rid = str(key)",
        "            data = {'id': PREFIX + rid, 'source': SOURCE, 'remote_id': rid}",
        "        else:",
        "            data = {'id': canonical_id(SOURCE, (key,)), 'source': SOURCE,",
        "                    'remote_id': remote_id((key,))}",
        *("    " + line for line in body),
        "        if reasons:",
        "            quarantine(row, data, reasons)",
        "            continue",
        "        try:",
        "            record = validate(data)",
        "        except ValidationError as exc:",
        "            record = recover(row, data, exc, reasons)",
        "            if record is None:",
        "                continue",
        "        records.append(record)",
        "        indexes.append(index)",
    ]
    return _define(lines, namespace, "run")  # type: ignore[no-any-return]


_MISS = object()
_CACHE_SIZE = 16384  # distinct values remembered per field and mapping (dates of 40 years)


def _plain_path(step: _Step) -> str | None:
    """The column name when the step reads one flat column (read inline, not via a getter)."""
    return getattr(step.get, "flat_path", None)


def _spec_paths(fields: MappingABC[str, FieldEntry]) -> Iterable[str]:
    for entry in fields.values():
        path = entry if isinstance(entry, str) else entry.path
        if isinstance(path, list):
            yield from path
        elif path is not None:
            yield path


def _reason_kind(exc: BaseException) -> str:
    """The reason without the offending value, so counts group by kind of failure."""
    text = str(exc)
    if not isinstance(exc, n.NormaliseError):
        return type(exc).__name__
    head, sep, tail = text.rpartition(": ")
    return head if sep and tail[:1] in ("'", '"') else text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _plain(row: MappingABC[str, Any]) -> dict[str, Any]:
    """The raw row as JSON-friendly data, for quarantine and ``raw``."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key == LINES_KEY:
            out["lines"] = [_plain(line) for line in value]
        elif key == ROW_ERRORS_KEY:
            continue
        elif value is None or isinstance(value, str | int | float | bool):
            out[key] = value
        elif isinstance(value, Decimal):
            out[key] = str(value)
        elif isinstance(value, date | datetime):
            out[key] = value.isoformat()
        elif isinstance(value, bytes):
            out[key] = value.decode("utf-8", "replace")
        elif isinstance(value, MappingABC):
            out[key] = _plain(value)
        else:
            out[key] = str(value)
    return out


def _as_tuple(path: Path) -> tuple[str, ...]:
    return tuple(path) if isinstance(path, list) else (path,)


def compile_mapping(
    source: str, model: type[Record], spec: EntitySpec, ctx: TransformContext
) -> Mapping:
    """Compile a spec; raises :class:`MappingError` naming the spec path that is wrong."""
    from patchbay.core.entities import Line

    catalog = field_catalog(model)
    pushables: dict[str, Pushable] = {}
    steps = _field_steps(model, catalog, spec.fields, ctx, model.required, "fields", pushables)
    missing = sorted(model.required - {s.target for s in steps})
    if missing:
        raise MappingError("fields", f"{model.entity} requires {', '.join(missing)}: map them")
    updated_at = None
    if spec.updated_at is not None:
        [updated_at] = _updated_at_steps(spec.updated_at, ctx, pushables)
    lines = None
    if spec.lines is not None:
        if "lines" not in model.model_fields:
            raise MappingError("lines", f"{model.entity} has no lines")
        line_steps = _field_steps(
            Line, None, spec.lines.fields, ctx, frozenset(), "lines.fields", None
        )
        lines = _Lines(_as_tuple(spec.lines.key), line_steps, compile_steps(line_steps))
    if isinstance(spec.id, str):
        pushables["id"] = Pushable(spec.id, SourceForm.REF)
    return Mapping(
        source=source,
        model=model,
        spec=spec,
        id_paths=_as_tuple(spec.id),
        steps=steps,
        updated_at=updated_at,
        lines=lines,
        pushables=pushables,
    )


def _updated_at_steps(
    entry: FieldEntry, ctx: TransformContext, pushables: dict[str, Pushable]
) -> list[_Step]:
    spec = FieldSpec(path=entry) if isinstance(entry, str) else entry
    if spec.path is None:
        raise MappingError("updated_at", "updated_at needs a path")
    try:
        transforms = compile_transform(spec.transform, ctx) or [
            Transform(
                "datetime", n.compile_datetime(None, ctx.timezone), SourceForm.EXACT,
                cacheable=True,
            )
        ]
    except (ValueError, LookupError) as exc:
        raise MappingError("updated_at.transform", str(exc)) from None
    if isinstance(spec.path, str) and spec.pushdown:
        form = _form(transforms)
        if form is not None:
            pushables["updated_at"] = Pushable(spec.path, form)
    return [
        _Step(
            "updated_at",
            _path_getter(spec.path),
            _chain(transforms, False),
            False,
            None,
            "updated_at",
            cacheable=isinstance(spec.path, str) and all(t.cacheable for t in transforms),
        )
    ]
