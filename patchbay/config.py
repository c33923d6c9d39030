"""``patchbay.yaml``: the config model, its loading, and secret references.

Loading validates everything that can be checked without touching a source — YAML syntax, the
shape, connector names (against the registry), each connector's settings model, entity names,
mapping targets and transforms — and compiles the mappings once. Every error names the file and
the path inside it. Secrets appear only as references: ``env:NAME``, ``file:PATH`` or
``store:NAME`` / ``store:NAME@TENANT`` (the encrypted credential store in the ``state`` database,
``patchbay.auth.store``, opened with ``[secret_key, *previous_secret_keys]`` only when a config
holds such a reference and secrets are resolved).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from patchbay.core import normalise
from patchbay.core.connector import Connector
from patchbay.core.errors import ConfigError, PatchbayError
from patchbay.core.mapping import EntitySpec, Mapping, MappingError, compile_mapping
from patchbay.core.policy import EntityPolicySpec, RateLimitSpec, compile_policy
from patchbay.core.registry import ConnectorRegistry, EntityRegistry
from patchbay.core.transforms import TransformContext
from patchbay.resilience import ResiliencePolicy

if TYPE_CHECKING:
    import sqlalchemy as sa

    from patchbay.auth.store import CredentialStore

__all__ = [
    "DEFAULT_STATE",
    "Config",
    "ConfigSpec",
    "SourceConfig",
    "StoreOpener",
    "for_tenant",
    "load_config",
    "load_config_data",
    "mask_url",
    "resolve_secret",
]

DEFAULT_STATE = "sqlite:///.patchbay/state.db"
_SOURCE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_REFERENCE = re.compile(r"^(env|file|store):(.+)$")
_UNLOCKS = "cannot come from the credential store it unlocks; use env: or file:"


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Defaults(_Spec):
    """Per-source defaults the transforms use when a field does not say otherwise."""

    phone_region: str | None = None
    timezone: str = "UTC"
    currency: str | None = None
    decimal: Literal["auto", "dot", "comma"] = "auto"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name such as Europe/London)"
            ) from None
        return value

    @field_validator("phone_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {value!r} (an ISO 3166 alpha-2 code)")
        return None if value is None else value.upper()

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        return None if value is None else normalise.currency(value)


class HttpSpec(_Spec):
    """How an HTTP source is reached: proxy, private CA, client certificate (mTLS), headers."""

    proxy: str | None = None
    ca_bundle: str | None = None  # a PEM file, relative to the config file
    client_cert: str | None = None  # PEM certificate (and key, unless client_key is given)
    client_key: str | None = None
    verify: bool = True
    max_connections: int = Field(default=20, ge=1)
    headers: dict[str, str] = Field(default_factory=dict)


class SourceSpec(_Spec):
    connector: str
    owner: str | None = None
    description: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    # HTTP sources: an auth scheme (patchbay.auth.AuthSpec), the resilience policy and transport.
    auth: dict[str, Any] | None = None
    resilience: ResiliencePolicy = Field(default_factory=ResiliencePolicy)
    http: HttpSpec = Field(default_factory=HttpSpec)
    # Entity bindings. A connector with a preset (hubspot, xero, ...) offers ready-made ones:
    # ``preset`` takes them all, ``contact: preset`` one, and a partial block overrides the
    # preset's field by field (``fields: {phone: null}`` drops one). None: the preset's, if any.
    entities: Literal["preset"] | dict[str, Literal["preset"] | dict[str, Any]] | None = None


class ConsumerSpec(_Spec):
    """One consumer's policy (``patchbay.core.policy``): entities, fields, rows, masks."""

    trusted: bool = False
    description: str | None = None
    tenant: str | None = None  # bound: every request runs for this tenant, no other
    rate_limit: RateLimitSpec | None = None
    entities: dict[str, EntityPolicySpec] = Field(default_factory=dict)


class ConfigSpec(_Spec):
    version: Literal[1]
    state: str = DEFAULT_STATE
    secret_key: str | None = None
    previous_secret_keys: list[str] = Field(default_factory=list)  # rotation: still decrypt
    redis: str | None = None  # shares token refreshes, rate limits and breakers across processes
    sources: dict[str, SourceSpec] = Field(default_factory=dict)
    consumers: dict[str, ConsumerSpec] = Field(
        default_factory=lambda: {"local": ConsumerSpec(trusted=True)}
    )

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, SourceSpec]) -> dict[str, SourceSpec]:
        for name in value:
            if not _SOURCE_NAME.match(name):
                raise ValueError(
                    f"source name {name!r} must start with a letter and hold only letters, "
                    "digits, '_' and '-' (it prefixes every canonical id)"
                )
        return value


@dataclass
class SourceConfig:
    name: str
    spec: SourceSpec
    connector: type[Connector]
    # Resolved settings and auth hold secrets: kept out of reprs (and so out of logs).
    settings: BaseModel = field(repr=False)
    mappings: dict[str, Mapping] = field(repr=False)
    auth: Any = field(default=None, repr=False)  # patchbay.auth.AuthSpec, secrets resolved

    @property
    def owner(self) -> str | None:
        return self.spec.owner


@dataclass
class Config:
    spec: ConfigSpec
    file: str
    base_dir: Path
    sources: dict[str, SourceConfig]
    entities: EntityRegistry
    connectors: ConnectorRegistry
    secret_key: str | None = field(default=None, repr=False)

    @property
    def state_url(self) -> str:
        return resolve_sqlite_path(self.spec.state, self.base_dir)

    def sources_for(self, entity: str) -> list[SourceConfig]:
        return [s for s in self.sources.values() if entity in s.mappings]


def resolve_sqlite_path(url: str, base_dir: Path) -> str:
    """A relative SQLite path is relative to the config file, not to the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str((base_dir / url[len(prefix) :]).resolve())
    return url


def mask_url(url: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``, for messages and logs."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


class StoreOpener:
    """Opens the credential store of a config on first use, so that a config without ``store:``
    references (or loaded without resolving secrets) never touches it; ``close`` disposes of it.

    The store lives in the ``state`` database and is opened with ``[secret_key,
    *previous_secret_keys]``, both resolved here (they may be ``env:`` or ``file:``, not
    ``store:``).
    """

    def __init__(self, spec: ConfigSpec, *, base_dir: Path, file: str) -> None:
        self.spec = spec
        self.base_dir = base_dir
        self.file = file
        self._engine: sa.Engine | None = None
        self._store: CredentialStore | None = None

    def __repr__(self) -> str:
        return f"StoreOpener({mask_url(self.spec.state)!r})"

    def keys(self, where: str) -> list[str]:
        """The resolved ``[secret_key, *previous_secret_keys]``; ``where`` is the path that needs
        them, named in the error when ``secret_key`` is missing."""
        if self.spec.secret_key is None:
            raise ConfigError(
                "the credential store needs secret_key, the key its credentials are encrypted "
                "with: add 'secret_key: env:PATCHBAY_SECRET_KEY' (or file:PATH) to the config",
                file=self.file,
                path=where,
            )
        refs = [("secret_key", self.spec.secret_key)] + [
            (f"previous_secret_keys[{i}]", ref)
            for i, ref in enumerate(self.spec.previous_secret_keys)
        ]
        keys = []
        for path, ref in refs:
            if ref.startswith("store:"):
                raise ConfigError(
                    _UNLOCKS,
                    file=self.file,
                    path=path,
                )
            keys.append(resolve_secret(ref, base_dir=self.base_dir, where=path, file=self.file))
        return keys

    def __call__(self, where: str) -> CredentialStore:
        if self._store is None:
            import sqlalchemy as sa

            from patchbay.auth.store import CredentialStore, StoreError

            keys = self.keys(where)
            url = resolve_sqlite_path(self.spec.state, self.base_dir)
            if url.startswith("sqlite:///") and ":memory:" not in url:
                Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
            self._engine = sa.create_engine(url, pool_pre_ping=True)
            try:
                self._store = CredentialStore(self._engine, keys)
            except StoreError as exc:
                raise ConfigError(str(exc), file=self.file, path=where) from None
        return self._store

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        self._engine = self._store = None

    def __enter__(self) -> StoreOpener:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def resolve_secret(
    value: str,
    *,
    base_dir: Path,
    where: str,
    file: str,
    store: StoreOpener | None = None,
    tenant: str = "",
) -> str:
    """The secret a reference names; other strings are returned as they are.

    ``store:NAME`` (default tenant) and ``store:NAME@TENANT`` are read through ``store``; without
    one they are refused.
    """
    match = _REFERENCE.match(value)
    if not match:
        return value
    scheme, name = match.groups()
    if scheme == "env":
        secret = os.environ.get(name)
        if secret is None:
            raise ConfigError(f"environment variable {name} is not set", file=file, path=where)
        return secret
    if scheme == "file":
        path = (base_dir / name).expanduser()
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(
                f"cannot read secret file {str(path)!r}: {exc.strerror}", file=file, path=where
            ) from None
    if store is None:
        raise ConfigError(
            f"{value!r} is a credential store reference, which is resolved only when the "
            "config is loaded (load_config); use env: or file: here",
            file=file,
            path=where,
        )
    from patchbay.auth.store import CredentialNotFound, StoreError

    # store:NAME@TENANT names its tenant; store:NAME is the tenant the query runs for.
    credential, _, explicit = name.partition("@")
    tenant = explicit or tenant
    opened = store(where)
    try:
        return opened.get(credential, tenant)
    except CredentialNotFound:
        option = f" --tenant {tenant}" if tenant else ""
        raise ConfigError(
            f"{value!r}: no such credential in the credential store ({mask_url(store.spec.state)});"
            f" add it with: patchbay creds set {credential}{option}",
            file=file,
            path=where,
        ) from None
    except StoreError as exc:
        raise ConfigError(f"{value!r}: {exc}", file=file, path=where) from None


def _resolve_tree(
    value: Any,
    *,
    resolve: bool,
    base_dir: Path,
    where: str,
    file: str,
    store: StoreOpener | None = None,
    tenant: str = "",
) -> Any:
    if isinstance(value, str):
        if not _REFERENCE.match(value):
            return value
        if not resolve:
            return "<secret>"
        return resolve_secret(
            value, base_dir=base_dir, where=where, file=file, store=store, tenant=tenant
        )
    if isinstance(value, MappingABC):
        return {
            k: _resolve_tree(
                v,
                resolve=resolve,
                base_dir=base_dir,
                where=f"{where}.{k}",
                file=file,
                store=store,
                tenant=tenant,
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            _resolve_tree(
                v,
                resolve=resolve,
                base_dir=base_dir,
                where=f"{where}[{i}]",
                file=file,
                store=store,
                tenant=tenant,
            )
            for i, v in enumerate(value)
        ]
    return value


def _store_references(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith("store:") and "@" not in value
    if isinstance(value, MappingABC):
        return any(_store_references(v) for v in value.values())
    if isinstance(value, list):
        return any(_store_references(v) for v in value)
    return False


def for_tenant(config: Config, source: SourceConfig, tenant: str) -> SourceConfig:
    """The source with its ``store:NAME`` references resolved for ``tenant``.

    One source definition serves every tenant: only the credentials differ. A source without
    such references is the same for all tenants and is returned as it is.
    """
    spec = source.spec
    if not (_store_references(spec.settings) or _store_references(spec.auth)):
        return source
    opener = StoreOpener(config.spec, base_dir=config.base_dir, file=config.file)
    at = f"sources.{source.name}"
    try:
        raw = _resolve_tree(
            spec.settings,
            resolve=True,
            base_dir=config.base_dir,
            where=f"{at}.settings",
            file=config.file,
            store=opener,
            tenant=tenant,
        )
        settings = source.connector.Settings.model_validate(raw)
        auth = source.auth
        if spec.auth is not None:
            from patchbay.auth import parse_auth_spec

            auth = parse_auth_spec(
                _resolve_tree(
                    spec.auth,
                    resolve=True,
                    base_dir=config.base_dir,
                    where=f"{at}.auth",
                    file=config.file,
                    store=opener,
                    tenant=tenant,
                )
            )
    finally:
        opener.close()
    return dataclasses.replace(source, settings=settings, auth=auth)


def _format_validation(exc: ValidationError, prefix: str = "") -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error["loc"])
        path = ".".join(part for part in (prefix, loc) if part)
        msg = error["msg"]
        if error["type"] == "extra_forbidden":
            msg = "unknown key"
        problems.append(f"{path or '(top)'}: {msg}")
    return problems


def load_config(
    path: str | os.PathLike[str],
    *,
    connectors: ConnectorRegistry | None = None,
    entities: EntityRegistry | None = None,
    resolve_secrets: bool = True,
) -> Config:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "config file not found (give --config PATH, or create ./patchbay.yaml)", file=file
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config: {exc}", file=file) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", file=file, path=where) from None
    return load_config_data(
        data,
        file=file,
        base_dir=Path(path).resolve().parent,
        connectors=connectors,
        entities=entities,
        resolve_secrets=resolve_secrets,
    )


def load_config_data(
    data: Any,
    *,
    file: str = "<config>",
    base_dir: Path | None = None,
    connectors: ConnectorRegistry | None = None,
    entities: EntityRegistry | None = None,
    resolve_secrets: bool = True,
) -> Config:
    """Validate and compile a config given as data (what ``load_config`` does after parsing)."""
    base_dir = base_dir or Path.cwd()
    connectors = connectors or ConnectorRegistry()
    entities = entities or EntityRegistry()
    if not isinstance(data, MappingABC):
        raise ConfigError("the config must be a mapping with 'version: 1' and 'sources'", file=file)
    try:
        spec = ConfigSpec.model_validate(data)
    except ValidationError as exc:
        raise _config_error(file, _format_validation(exc)) from None

    problems: list[str] = []
    sources: dict[str, SourceConfig] = {}
    with StoreOpener(spec, base_dir=base_dir, file=file) as store:
        for name, source in spec.sources.items():
            built = _build_source(
                name, source, file, base_dir, connectors, entities, resolve_secrets, problems, store
            )
            if built is not None:
                sources[name] = built
    secret_key = None
    if spec.secret_key is not None:
        try:
            if spec.secret_key.startswith("store:"):
                raise ConfigError(_UNLOCKS)
            secret_key = _resolve_tree(
                spec.secret_key,
                resolve=resolve_secrets,
                base_dir=base_dir,
                where="secret_key",
                file=file,
            )
        except ConfigError as exc:
            problems.append(f"secret_key: {exc.message}")
    for i, ref in enumerate(spec.previous_secret_keys):
        try:
            if ref.startswith("store:"):
                raise ConfigError(_UNLOCKS)
            if resolve_secrets:
                resolve_secret(
                    ref, base_dir=base_dir, where=f"previous_secret_keys[{i}]", file=file
                )
        except ConfigError as exc:
            problems.append(f"previous_secret_keys[{i}]: {exc.message}")
    problems.extend(_policy_problems(spec, entities))
    if problems:
        raise _config_error(file, problems)
    return Config(spec, file, base_dir, sources, entities, connectors, secret_key)


def _policy_problems(spec: ConfigSpec, entities: EntityRegistry) -> list[str]:
    """Consumer policies checked against the entity models (compiled again by the Hub)."""
    problems = []
    for name, consumer in spec.consumers.items():
        unknown = [e for e in consumer.entities if e not in entities]
        if unknown:
            problems.append(
                f"consumers.{name}.entities.{unknown[0]}: unknown entity; entities: "
                f"{', '.join(entities.names())}"
            )
            continue
        try:
            compile_policy(
                name,
                trusted=consumer.trusted,
                tenant=consumer.tenant,
                rate_limit=consumer.rate_limit,
                entities=consumer.entities,
                models={e: entities.get(e) for e in consumer.entities},
                secret_key=None if spec.secret_key is None else "<checked>",
            )
        except ValueError as exc:
            problems.append(f"consumers.{name}.{exc}")
    return problems


def _config_error(file: str, problems: list[str]) -> ConfigError:
    if len(problems) == 1:
        path, _, message = problems[0].partition(": ")
        return ConfigError(message, file=file, path=path)
    error = ConfigError(
        f"{len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems), file=file
    )
    error.problems = problems  # type: ignore[attr-defined]
    return error


def _entity_blocks(
    name: str,
    source: SourceSpec,
    connector: type[Connector],
    settings: BaseModel,
    problems: list[str],
) -> dict[str, dict[str, Any]]:
    """The source's entity bindings with the connector's preset applied (see SourceSpec)."""
    at = f"sources.{name}.entities"
    preset = {k: dict(v) for k, v in connector.preset_entities(settings).items()}
    if source.entities is None or source.entities == "preset":
        if source.entities == "preset" and not preset:
            problems.append(f"{at}: connector {source.connector!r} has no preset entities")
        return preset
    blocks: dict[str, dict[str, Any]] = {}
    for entity, block in source.entities.items():
        base = preset.get(entity)
        if block == "preset" or (base is not None and isinstance(block, dict)):
            if base is None:
                offered = ", ".join(sorted(preset)) or "none"
                problems.append(
                    f"{at}.{entity}: connector {source.connector!r} has no preset for "
                    f"{entity!r} (its presets: {offered})"
                )
                continue
            blocks[entity] = base if block == "preset" else _override(base, block)
        else:
            blocks[entity] = dict(block)
    return blocks


def _override(base: dict[str, Any], block: MappingABC[str, Any]) -> dict[str, Any]:
    """``block`` over ``base``: ``fields`` merge by name (null drops one), other keys replace."""
    merged = {**base, **{k: v for k, v in block.items() if k != "fields"}}
    if "fields" in block:
        fields = {**base.get("fields", {}), **(block["fields"] or {})}
        merged["fields"] = {k: v for k, v in fields.items() if v is not None}
    return merged


def _build_source(
    name: str,
    source: SourceSpec,
    file: str,
    base_dir: Path,
    connectors: ConnectorRegistry,
    entities: EntityRegistry,
    resolve_secrets: bool,
    problems: list[str],
    store: StoreOpener | None = None,
) -> SourceConfig | None:
    """Build one source, adding what is wrong to ``problems`` (None when it cannot be built)."""
    at = f"sources.{name}"
    try:
        connector = connectors.get(source.connector)
    except PatchbayError as exc:  # ConnectorNotFound, PluginError
        problems.append(f"{at}.connector: {exc}")
        return None
    try:
        raw_settings = _resolve_tree(
            source.settings,
            resolve=resolve_secrets,
            base_dir=base_dir,
            where=f"{at}.settings",
            file=file,
            store=store,
        )
        settings = connector.Settings.model_validate(raw_settings)
    except ConfigError as exc:
        problems.append(f"{exc.path}: {exc.message}")
        return None
    except ValidationError as exc:
        problems.extend(_format_validation(exc, f"{at}.settings"))
        return None
    auth = None
    if source.auth is not None:
        from patchbay.auth import parse_auth_spec

        try:
            resolved = _resolve_tree(
                source.auth,
                resolve=resolve_secrets,
                base_dir=base_dir,
                where=f"{at}.auth",
                file=file,
                store=store,
            )
            auth = parse_auth_spec(resolved)
        except ConfigError as exc:
            problems.append(f"{exc.path}: {exc.message}")
            return None
        except ValidationError as exc:
            problems.extend(_format_validation(exc, f"{at}.auth"))
            return None
    defaults = source.defaults
    ctx = TransformContext(
        source=name,
        phone_region=defaults.phone_region,
        timezone=defaults.timezone,
        currency=defaults.currency,
        decimal=defaults.decimal,
    )
    mappings: dict[str, Mapping] = {}
    for entity_name, block in _entity_blocks(name, source, connector, settings, problems).items():
        where = f"{at}.entities.{entity_name}"
        if entity_name not in entities:
            problems.append(
                f"{where}: unknown entity {entity_name!r}; entities: {', '.join(entities.names())}"
            )
            continue
        try:
            entity_spec = EntitySpec.model_validate(block)
        except ValidationError as exc:
            problems.extend(_format_validation(exc, where))
            continue
        try:
            connector.check_origin(settings, entity_name, entity_spec.origin)
        except ValueError as exc:
            problems.append(f"{where}.from: {exc}")
            continue
        try:
            mappings[entity_name] = compile_mapping(
                name, entities.get(entity_name), entity_spec, ctx
            )
        except MappingError as exc:
            problems.extend(f"{where}.{path}: {message}" for path, message in exc.problems)
        except ValueError as exc:  # bad defaults such as an unknown time zone
            problems.append(f"{at}.defaults: {exc}")
    return SourceConfig(name, source, connector, settings, mappings, auth)
