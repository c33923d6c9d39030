"""Consumer policies: what one consumer may read, enforced by the Hub for every front door.

A policy (``consumers:`` in ``patchbay.yaml``) lists, per entity, the operations allowed
(``query`` — which covers ``fetch`` and ``explain`` — and ``get``), the fields visible
(``fields: {allow: [...]}`` or ``{deny: [...]}``), a row filter (``where:``) and masks of string
fields (``mask: {email: partial}``). Rules, in the order the Hub applies them:

- an entity the policy does not list is refused (``AccessDenied``), and not in the catalog;
- a filter or ``order_by`` on a denied field is refused; so is one on a masked field, except
  ``isnull`` (a masked value is null exactly when the clear value is, so it tells nothing more).
  Hashed values cannot be filtered on either: a caller who wants to join on them does so on the
  records it receives;
- the row filter is ANDed into the query before planning (pushed down like any condition and
  re-checked in memory); a ``get`` of a record outside it is ``RecordNotFound``;
- records come out as a *view*: a pydantic model with only the visible fields (every one
  optional), masked strings masked. ``id`` is always visible. ``raw`` (the source row, in clear)
  is visible only when ``fields.allow`` lists it and nothing is masked.

Masks (string fields only; a nested value such as ``address`` masks every string in it, and a
list of lines such as ``lines`` or ``lines.description`` masks that in every line; ``extra`` or
``extra.NAME`` masks extra values, turning non-strings into text first):

- ``redact``: ``"[redacted]"``;
- ``hash``: ``"hash:" + HMAC-SHA256(key, value)`` truncated to 20 hex digits, the key derived
  from ``secret_key`` with HKDF; equal values hash equal, so masked ids still join;
- ``partial``: ``a***@acme.example`` for an e-mail address, else the first character + ``***``;
- ``last4``: ``***1234`` (just ``***`` for values of four characters or fewer).

``record_to_json`` is the one way a front door turns a record (canonical or view) into JSON.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pydantic_core
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from patchbay.core.consumers import AccessDenied
from patchbay.core.entities import Money, Record
from patchbay.core.errors import QueryError
from patchbay.core.filters import (
    BoolOp,
    Condition,
    FieldKind,
    Filter,
    Op,
    bind,
    field_catalog,
    lookup_field,
    parse,
    to_json,
)

__all__ = [
    "MASKS",
    "OPERATIONS",
    "EntityPolicy",
    "EntityPolicySpec",
    "EntityView",
    "FieldView",
    "FieldsSpec",
    "Masker",
    "Policy",
    "RateLimitSpec",
    "compile_policy",
    "json_bytes",
    "parse_row_filter",
    "record_to_json",
]

MaskKind = Literal["redact", "hash", "partial", "last4"]
Operation = Literal["query", "get"]
MASKS: tuple[str, ...] = get_args(MaskKind)
OPERATIONS: tuple[str, ...] = get_args(Operation)
HASH_SALT = b"patchbay.core.policy/v1"
HASH_INFO = b"patchbay field mask hash key"
_HIDDEN_UNLESS_ALLOWED = frozenset({"raw"})


# --- the config shapes (``consumers.NAME`` in patchbay.yaml) ---------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldsSpec(_Spec):
    """Either the fields a consumer sees (``allow``) or those it does not (``deny``)."""

    allow: list[str] | None = None
    deny: list[str] | None = None

    @model_validator(mode="after")
    def _one_of(self) -> FieldsSpec:
        if (self.allow is None) == (self.deny is None):
            raise ValueError("give either allow: [fields] or deny: [fields]")
        return self


def _all_operations() -> list[Operation]:
    return ["query", "get"]


class EntityPolicySpec(_Spec):
    operations: list[Operation] = Field(default_factory=lambda: _all_operations())
    fields: FieldsSpec | None = None
    # The filter grammar: "status != void", keywords {status__ne: void} or the JSON form.
    where: str | dict[str, Any] | None = None
    mask: dict[str, MaskKind] = Field(default_factory=dict)


class RateLimitSpec(_Spec):
    requests: int = Field(ge=1)
    per_seconds: float = Field(gt=0)

    @property
    def rate(self) -> float:
        return self.requests / self.per_seconds


# --- row filters in text form ----------------------------------------------------------------

_TEXT_OPS = {
    "=": Op.EQ,
    "==": Op.EQ,
    "!=": Op.NE,
    ">": Op.GT,
    ">=": Op.GTE,
    "<": Op.LT,
    "<=": Op.LTE,
    "in": Op.IN,
    "contains": Op.CONTAINS,
    "isnull": Op.ISNULL,
}
_CONDITION = re.compile(
    r"^\s*(?P<field>[A-Za-z_][\w.]*)\s*(?P<op>==|!=|>=|<=|=|>|<|\bin\b|\bcontains\b|\bisnull\b)"
    r"\s*(?P<value>.*?)\s*$"
)


def parse_row_filter(where: str | Mapping[str, Any]) -> Filter:
    """A row filter: ``"status != void and source in [crm, erp]"``, keywords or JSON."""
    if not isinstance(where, str):
        node = parse(where)
        if node is None:
            raise QueryError("an empty row filter: leave where out instead")
        return node
    parts: list[Filter] = []
    for text in re.split(r"\s+and\s+", where.strip(), flags=re.IGNORECASE):
        match = _CONDITION.match(text)
        if match is None or not match["value"]:
            raise QueryError(
                f"cannot read {text!r}: write FIELD OP VALUE with OP one of "
                f"{', '.join(_TEXT_OPS)}, conditions joined by 'and'"
            )
        op = _TEXT_OPS[match["op"]]
        raw = match["value"].strip()
        value: Any = _unquote(raw)
        if op is Op.IN:
            if not (raw.startswith("[") and raw.endswith("]")):
                raise QueryError(f"{text!r}: 'in' takes a list, as in source in [crm, erp]")
            value = [_unquote(v.strip()) for v in raw[1:-1].split(",") if v.strip()]
        parts.append(Condition(match["field"], op, value))
    return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


# --- masks -----------------------------------------------------------------------------------


class Masker:
    """Applies one mask kind to a string. The hash key never appears in a repr."""

    def __init__(self, secret_key: str | None) -> None:
        self._key = (
            None
            if secret_key is None
            else HKDF(algorithm=hashes.SHA256(), length=32, salt=HASH_SALT, info=HASH_INFO).derive(
                secret_key.encode("utf-8")
            )
        )

    def __repr__(self) -> str:
        return "Masker()"

    def __call__(self, kind: str, value: str) -> str:
        if kind == "redact":
            return "[redacted]"
        if kind == "hash":
            if self._key is None:
                raise QueryError("hash masking needs secret_key in the config")
            digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
            return f"hash:{digest[:20]}"
        if kind == "partial":
            local, at, domain = value.partition("@")
            if at and local and domain:
                return f"{local[0]}***@{domain}"
            return f"{value[0]}***" if value else value
        if kind == "last4":
            return f"***{value[-4:]}" if len(value) > 4 else "***"
        raise ValueError(f"unknown mask {kind!r}")


# A mask plan mirrors the record: a field maps to its mask kind, or to the plan of its parts
# (a nested value, or each element of a list of values).
MaskPlan = dict[str, "str | MaskPlan"]


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> X; ``Annotated[X, ...]`` -> X."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            annotation = args[0]
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _value_model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The nested value model of a field (and whether it is a list of them), if it has one."""
    inner = _unwrap(annotation)
    many = get_origin(inner) is list
    if many:
        inner = _unwrap(get_args(inner)[0])
    if isinstance(inner, type) and issubclass(inner, BaseModel) and inner is not Money:
        return inner, many
    return None, False


def _is_text(annotation: Any) -> bool:
    inner = _unwrap(annotation)
    return inner is str or get_origin(inner) is Literal


def _is_mapping(annotation: Any) -> bool:
    inner = _unwrap(annotation)
    return inner is dict or get_origin(inner) is dict


def _mask_plan(
    owner: type[BaseModel], masks: Mapping[str, str], prefix: str, inherited: str | None
) -> MaskPlan:
    plan: MaskPlan = {}
    for name, info in owner.model_fields.items():
        path = f"{prefix}{name}"
        kind = masks.get(path, inherited)
        nested, _ = _value_model(info.annotation)
        if nested is not None:
            sub = _mask_plan(nested, masks, f"{path}.", kind)
            if sub:
                plan[name] = sub
        elif _is_mapping(info.annotation):  # extra: values of any type
            keys = {k[len(path) + 1 :]: v for k, v in masks.items() if k.startswith(f"{path}.")}
            if kind is not None:
                plan[name] = kind
            elif keys:
                plan[name] = dict(keys)
        elif kind is not None and _is_text(info.annotation):
            plan[name] = kind
    return plan


def _check_mask_path(model: type[Record], path: str) -> str | None:
    """Why ``path`` cannot be masked, or None."""
    owner: type[BaseModel] = model
    parts = path.split(".")
    for i, part in enumerate(parts):
        info = owner.model_fields.get(part)
        if info is None:
            return f"{model.entity} has no field {'.'.join(parts[: i + 1])!r}"
        if _is_mapping(info.annotation):
            return None  # extra.NAME: any key
        nested, _ = _value_model(info.annotation)
        if nested is not None:
            owner = nested
            continue
        if i < len(parts) - 1:
            return f"{'.'.join(parts[: i + 1])} has no parts"
        if not _is_text(info.annotation):
            return f"{path} is not a string field: only strings can be masked"
        return None
    return None


def _apply(plan: MaskPlan, data: dict[str, Any], masker: Masker) -> None:
    for name, item in plan.items():
        value = data.get(name)
        if value is None:
            continue
        if isinstance(item, str):
            data[name] = _mask_all(value, item, masker)
        elif isinstance(value, list):
            for element in value:
                if isinstance(element, dict):
                    _apply(item, element, masker)
        elif isinstance(value, dict):
            _apply(item, value, masker)


def _mask_all(value: Any, kind: str, masker: Masker) -> Any:
    """Mask a string; inside ``extra``, every value (non-strings as text)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: _mask_all(v, kind, masker) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_all(v, kind, masker) for v in value]
    return masker(kind, value if isinstance(value, str) else str(value))


# --- the views a consumer receives -----------------------------------------------------------


def _view_annotation(annotation: Any, item: str | MaskPlan | None) -> Any:
    if item is None:
        return annotation
    if isinstance(item, str):
        return dict[str, Any] if _is_mapping(annotation) else str
    nested, many = _value_model(annotation)
    if nested is None:  # extra with masked keys
        return dict[str, Any]
    view = _nested_view(nested, item)
    return list[view] if many else view  # type: ignore[valid-type]


def _nested_view(model: type[BaseModel], plan: MaskPlan) -> type[BaseModel]:
    fields: dict[str, Any] = {
        name: (_view_annotation(info.annotation, plan.get(name)) | None, None)
        for name, info in model.model_fields.items()
    }
    return create_model(f"{model.__name__}View", __config__=ConfigDict(extra="forbid"), **fields)


def _record_view(
    model: type[Record], visible: tuple[str, ...], plan: MaskPlan, name: str
) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for field_name in visible:
        info = model.model_fields[field_name]
        annotation = _view_annotation(info.annotation, plan.get(field_name))
        fields[field_name] = (annotation | None, Field(default=None, description=info.description))
    view: type[BaseModel] = create_model(name, __config__=ConfigDict(extra="forbid"), **fields)
    view.entity = model.entity  # type: ignore[attr-defined]
    return view


@dataclass(frozen=True)
class FieldView:
    """One field a consumer can see, as the catalog describes it."""

    name: str
    kind: str  # a patchbay.core.filters.FieldKind value ("text", "email", ...); "list" for lines
    masked: str | None  # the mask kind, or None when the value is in clear
    filterable: bool
    sortable: bool


@dataclass(frozen=True)
class EntityView:
    """An entity as one consumer sees it (``Hub.catalog``)."""

    name: str
    description: str
    operations: tuple[str, ...]
    fields: tuple[FieldView, ...]
    json_schema: dict[str, Any]


@dataclass
class EntityPolicy:
    """The compiled rules of one consumer for one entity."""

    entity: str
    model: type[Record]
    operations: frozenset[str]
    visible: tuple[str, ...]  # top-level fields, in model order
    masks: dict[str, str]  # path -> mask kind, as configured
    row_filter: Filter | None
    masker: Masker = field(repr=False)
    plan: MaskPlan = field(default_factory=dict)
    view: type[BaseModel] | None = None  # None: records go out as they are
    row_predicate: Callable[[Record], bool] | None = field(default=None, repr=False)
    _schema: dict[str, Any] | None = field(default=None, init=False, repr=False)

    @classmethod
    def everything(cls, model: type[Record]) -> EntityPolicy:
        """What a trusted consumer has: every field, every operation, nothing masked."""
        return cls(
            model.entity,
            model,
            frozenset(OPERATIONS),
            tuple(model.model_fields),
            {},
            None,
            Masker(None),
        )

    def allows(self, operation: str) -> bool:
        return ("query" if operation in ("fetch", "explain") else operation) in self.operations

    def masked(self, path: str) -> str | None:
        """The mask kind covering ``path`` (or a part of it), or None."""
        for key, kind in self.masks.items():
            if path == key or path.startswith(f"{key}.") or key.startswith(f"{path}."):
                return kind
        return None

    def is_visible(self, path: str) -> bool:
        return path.split(".", 1)[0] in self.visible

    def check_filter(self, node: Filter | None, consumer: str) -> None:
        """Refuse a filter on a denied field, or on a masked one (isnull aside). The message
        names the field, never the value."""
        if node is None:
            return
        if isinstance(node, BoolOp):
            for item in node.items:
                self.check_filter(item, consumer)
            return
        path = node.field
        catalog = field_catalog(self.model)
        if path not in catalog and not (path.startswith("extra.") and len(path) > 6):
            # Unknown, named without listing the fields the consumer may not see.
            visible = [p for p in catalog if self.is_visible(p)]
            raise QueryError(
                f"unknown field {path!r} for {self.entity}; fields: {', '.join(visible)}"
            )
        if not self.is_visible(path):
            raise AccessDenied(
                f"consumer {consumer!r} may not filter {self.entity} on {path}: "
                "the field is not visible to it"
            )
        if node.op is not Op.ISNULL and self.masked(path) is not None:
            raise AccessDenied(
                f"consumer {consumer!r} may not filter {self.entity} on {path}: the field is "
                "masked for it (only isnull is allowed on a masked field)"
            )

    def check_order(self, name: str, consumer: str) -> None:
        if not self.is_visible(name) or self.masked(name) is not None:
            state = "not visible" if not self.is_visible(name) else "masked"
            raise AccessDenied(
                f"consumer {consumer!r} may not order {self.entity} by {name}: the field is "
                f"{state} to it"
            )

    def apply(self, record: Record) -> BaseModel:
        """The record as this consumer may see it."""
        if self.view is None:
            return record
        # The visible values as they are (no dump): the view declares an unmasked field with the
        # record's own annotation, so validating a nested value (an address, lines) takes the
        # instance as it is. Only values with a mask inside are dumped, to be masked.
        values = record.__dict__
        data = {name: values[name] for name in self.visible}
        for name, item in self.plan.items():
            value = data[name]
            if value is None:
                continue
            if isinstance(item, str) and isinstance(value, str):
                data[name] = self.masker(item, value)
            else:
                data[name] = record.model_dump(include={name})[name]
                _apply({name: item}, data, self.masker)
        return self.view.model_validate(data)

    def mask_filter(self, node: Filter | None) -> Any:
        """The JSON form of a filter with the values of masked fields masked (for the audit)."""
        return to_json(self._mask_node(node)) if node is not None else None

    def _mask_node(self, node: Filter) -> Filter:
        if isinstance(node, BoolOp):
            return BoolOp(node.op, tuple(self._mask_node(item) for item in node.items))
        kind = self.masked(node.field)
        if kind is None or node.op is Op.ISNULL or node.value is None:
            return node
        value = node.value
        if isinstance(value, list | tuple | set | frozenset):
            return Condition(node.field, node.op, [self.masker(kind, str(v)) for v in value])
        return Condition(node.field, node.op, self.masker(kind, str(value)))

    def describe(self, sortable: frozenset[str], sources: list[str]) -> EntityView:
        fields: list[FieldView] = []
        for path, info in field_catalog(self.model).items():
            if not self.is_visible(path):
                continue
            masked = self.masked(path)
            fields.append(
                FieldView(
                    path,
                    str(info.kind),
                    masked,
                    filterable=masked is None,
                    sortable=masked is None and path in sortable,
                )
            )
        for name in self.visible:
            if name in field_catalog(self.model):
                continue
            nested, many = _value_model(self.model.model_fields[name].annotation)
            if nested is not None and not many:
                continue  # its parts are listed above
            kind = "list" if many else str(FieldKind.ANY)
            fields.append(FieldView(name, kind, self.masked(name), name == "extra", False))
        if self._schema is None:
            view = self.view or _record_view(
                self.model, self.visible, self.plan, f"{self.model.__name__}View"
            )
            self._schema = view.model_json_schema(mode="serialization")
        served = ", ".join(sources) or "no source"
        return EntityView(
            self.entity,
            f"{self.entity} records, from {served}",
            tuple(op for op in OPERATIONS if op in self.operations),
            tuple(fields),
            copy.deepcopy(self._schema),
        )


@dataclass
class Policy:
    """One consumer's compiled policy. ``trusted``: everything, unmasked, no row filter."""

    consumer: str
    trusted: bool
    tenant: str | None = None
    rate_limit: RateLimitSpec | None = None
    entities: dict[str, EntityPolicy] = field(default_factory=dict)

    def for_entity(self, entity: str, operation: str) -> EntityPolicy | None:
        """The rules for ``operation`` on ``entity`` (None for a trusted consumer); raises
        AccessDenied when the consumer may not."""
        if self.trusted:
            return None
        rules = self.entities.get(entity)
        if rules is None:
            if not self.entities:
                raise AccessDenied(
                    f"consumer {self.consumer!r} has no policy allowing {operation} on {entity}; "
                    "it sees nothing"
                )
            raise AccessDenied(
                f"consumer {self.consumer!r} may not read {entity}; it may read: "
                f"{', '.join(sorted(self.entities))}"
            )
        if not rules.allows(operation):
            raise AccessDenied(
                f"consumer {self.consumer!r} may not {operation} {entity}; allowed: "
                f"{', '.join(sorted(rules.operations))}"
            )
        return rules

    def check_tenant(self, tenant: str | None) -> str | None:
        """The tenant a request runs for: the bound one, refusing any other."""
        if self.tenant is None:
            return tenant
        if tenant is not None and tenant != self.tenant:
            raise AccessDenied(
                f"consumer {self.consumer!r} is bound to one tenant and may not read tenant "
                f"{tenant!r}; leave tenant out"
            )
        return self.tenant


def compile_policy(
    consumer: str,
    *,
    trusted: bool,
    tenant: str | None,
    rate_limit: RateLimitSpec | None,
    entities: Mapping[str, EntityPolicySpec],
    models: Mapping[str, type[Record]],
    secret_key: str | None,
) -> Policy:
    """Check a consumer's rules against the entity models and compile them.

    Raises ValueError naming the path (``entities.contact.mask.email``) of the first problem.
    """
    masker = Masker(secret_key)
    compiled: dict[str, EntityPolicy] = {}
    for entity, spec in entities.items():
        at = f"entities.{entity}"
        model = models.get(entity)
        if model is None:
            raise ValueError(f"{at}: unknown entity; entities: {', '.join(sorted(models))}")
        names = list(model.model_fields)
        rules = spec.fields
        listed = (rules.allow if rules and rules.allow is not None else rules.deny) if rules else []
        for name in listed or []:
            if name not in model.model_fields:
                raise ValueError(
                    f"{at}.fields: {entity} has no field {name!r}; fields: {', '.join(names)}"
                )
        if rules is not None and rules.allow is not None:
            allowed = {"id", *rules.allow}
            visible = tuple(n for n in names if n in allowed)
        else:
            denied = set(rules.deny or []) if rules is not None else set()
            if "id" in denied:
                raise ValueError(f"{at}.fields.deny: id is always visible (get needs it)")
            visible = tuple(n for n in names if n not in denied and n not in _HIDDEN_UNLESS_ALLOWED)
        for path, kind in spec.mask.items():
            problem = _check_mask_path(model, path)
            if path == "id":
                problem = "id cannot be masked: get and cursors need it (mask a reference instead)"
            if problem is not None:
                raise ValueError(f"{at}.mask.{path}: {problem}")
            if path.split(".", 1)[0] not in visible:
                raise ValueError(f"{at}.mask.{path}: the field is not visible, nothing to mask")
            if kind == "hash" and secret_key is None:
                raise ValueError(
                    f"{at}.mask.{path}: hash masking needs secret_key (the hash key is derived "
                    "from it); add 'secret_key: env:PATCHBAY_SECRET_KEY'"
                )
        if spec.mask and "raw" in visible:
            raise ValueError(
                f"{at}.fields.allow: raw holds the source row in clear, so it cannot be visible "
                "when fields are masked"
            )
        row_filter = None
        if spec.where is not None:
            try:
                row_filter = parse_row_filter(spec.where)
                bind(model, row_filter)
            except QueryError as exc:
                raise ValueError(f"{at}.where: {exc}") from None
        plan = _mask_plan(model, dict(spec.mask), "", None) if spec.mask else {}
        plain = not plan and set(visible) >= set(names) - _HIDDEN_UNLESS_ALLOWED
        view = (
            None
            if plain
            else _record_view(model, visible, plan, f"{model.__name__}View_{_ident(consumer)}")
        )
        compiled[entity] = EntityPolicy(
            entity,
            model,
            frozenset(spec.operations),
            visible,
            dict(spec.mask),
            row_filter,
            masker,
            plan,
            view,
            None if row_filter is None else bind(model, row_filter).predicate,
        )
    return Policy(consumer, trusted, tenant, rate_limit, compiled)


def _ident(name: str) -> str:
    return re.sub(r"\W", "_", name)


def sortable_fields(model: type[Record], pushable: list[set[str]]) -> frozenset[str]:
    """Fields every serving source maps from a plain column (the ones ``order_by`` accepts)."""
    if not pushable:
        return frozenset()
    common = set.intersection(*pushable)
    return frozenset(
        p
        for p in common
        if p in field_catalog(model) and lookup_field(model, p).kind is not FieldKind.BOOL
    )


def record_to_json(record: BaseModel) -> dict[str, Any]:
    """A record a consumer received (canonical or its view), as JSON-ready values: the one
    serialization every front door uses. Decimals are strings, dates ISO 8601."""
    return record.model_dump(mode="json")


def json_bytes(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON, records in it (canonical or views) serialized as
    :func:`record_to_json` does, without the detour through dicts: pydantic's serializer writes
    a page of records several times faster than ``model_dump`` + ``json.dumps`` (it matters on
    the gateway's page path). The same JSON as ``json.dumps(..., ensure_ascii=False)`` of the
    ``record_to_json`` form (floats may be spelled differently: ``1e16`` for ``1e+16``)."""
    return pydantic_core.to_json(body)
