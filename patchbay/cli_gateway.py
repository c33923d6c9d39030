"""``patchbay serve`` (the REST gateway) and ``patchbay keys`` (its API keys).

``serve`` runs uvicorn with the app factory ``patchbay.gateway.app:app_from_env``; the config path
and the gateway settings reach each worker through environment variables, so ``--workers N``
starts N independent processes that share only what the config shares (Redis, PostgreSQL).
Uvicorn's access log is off: it prints query strings, which may hold filter values a policy
masks; the gateway logs one line per request (method, path, status, time, request id) instead.

``keys create`` prints the key once, on stdout; only a keyed hash of it is stored.
Exit codes are those of ``patchbay`` (``patchbay.cli``): 2 when the config or the command is
wrong, 4 when the key does not exist.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.table import Table

from patchbay.config import Config, StoreOpener, load_config, resolve_sqlite_path
from patchbay.core.errors import ConfigError, PatchbayError

__all__ = ["gateway_app"]

EXIT_USER, EXIT_NOT_FOUND = 2, 4
T = TypeVar("T")

gateway_app = typer.Typer()
keys_app = typer.Typer(help="API keys of the REST gateway (patchbay serve).", no_args_is_help=True)
gateway_app.add_typer(keys_app, name="keys")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _friendly(fn: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except PatchbayError as exc:
            label = "config error" if isinstance(exc, ConfigError) else "error"
            err.print(f"[bold red]{label}:[/] {exc}", markup=True, highlight=False)
            raise typer.Exit(EXIT_USER) from None

    return wrapper


def _config_path(given: Path | None) -> Path:
    from patchbay.cli import state  # the --config option of the main command

    return given or state.config_path


@contextlib.contextmanager
def _keys(config: Config) -> Iterator[Any]:
    """The key store of ``config``'s state database, its engine disposed afterwards."""
    from patchbay.gateway.keys import ApiKeys

    opener = StoreOpener(config.spec, base_dir=config.base_dir, file=config.file)
    url = resolve_sqlite_path(config.spec.state, config.base_dir)
    if url.startswith("sqlite:///") and ":memory:" not in url:
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        yield ApiKeys(engine, opener.keys("secret_key"))
    finally:
        engine.dispose()


@keys_app.command("create")
@_friendly
def keys_create(
    consumer: Annotated[str, typer.Argument(help="The consumer the key acts as.")],
    name: Annotated[str, typer.Option("--name", "-n", help="What the key is for.")] = "",
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", "-s", help="Narrow the key: read:ENTITY, read:*, metrics:read."),
    ] = None,
) -> None:
    """Create a key for CONSUMER and print it, once (only a hash is kept)."""
    config = load_config(_config_path(None), resolve_secrets=False)
    if consumer not in config.spec.consumers:
        raise ConfigError(
            f"no consumer {consumer!r} in the config; consumers: "
            f"{', '.join(config.spec.consumers)}",
            file=config.file,
            path="consumers",
        )
    with _keys(config) as store:
        key, token = store.create(consumer, name or consumer, scope or None)
    err.print(
        f"created key {key.id} for consumer {consumer!r}; it is shown this once:",
        highlight=False,
    )
    out.print(token, highlight=False, markup=False)


@keys_app.command("list")
@_friendly
def keys_list() -> None:
    """List keys: id, consumer, name, scopes, created, last used, revoked (never a secret)."""
    from patchbay.cli import out as table_out  # wide when piped, as every patchbay table

    config = load_config(_config_path(None), resolve_secrets=False)
    with _keys(config) as store:
        keys = store.list()
    table = Table("id", "consumer", "name", "scopes", "created", "last used", "revoked")

    def when(value: Any) -> str:
        return value.isoformat(timespec="seconds") if value else ""

    for key in keys:
        scopes = "(all)" if key.scopes is None else " ".join(sorted(key.scopes))
        table.add_row(key.id, key.consumer, key.name, scopes, when(key.created_at),
                      when(key.last_used_at), when(key.revoked_at))
    table_out.print(table)
    err.print(f"{len(keys)} keys", highlight=False)


@keys_app.command("revoke")
@_friendly
def keys_revoke(key_id: Annotated[str, typer.Argument(metavar="ID")]) -> None:
    """Revoke the key ID: every worker refuses it within a second."""
    config = load_config(_config_path(None), resolve_secrets=False)
    with _keys(config) as store:
        revoked = store.revoke(key_id)
    if not revoked:
        err.print(f"error: no live key {key_id!r}", highlight=False)
        raise typer.Exit(EXIT_NOT_FOUND)
    err.print(f"revoked key {key_id}", highlight=False)


def _log_config(level: str) -> dict[str, Any]:
    fmt = "%(asctime)s %(process)d %(levelname)s %(name)s [%(request_id)s] %(message)s"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "patchbay.gateway.app.RequestIdFilter"}},
        "formatters": {"default": {"format": fmt}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "patchbay": {"handlers": ["default"], "level": level.upper(), "propagate": False},
        },
    }


@gateway_app.command()
@_friendly
def serve(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="The config file.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    max_limit: Annotated[int, typer.Option(min=1, help="Largest page size served.")] = 1000,
    metrics_consumer: Annotated[
        list[str] | None,
        typer.Option("--metrics-consumer", help="A consumer that may read /metrics."),
    ] = None,
    jwt: Annotated[
        Path | None,
        typer.Option(
            "--jwt", help="A JSON or YAML file of JWT settings: jwks, issuer, audience, claim, "
            "consumers (claim value -> consumer)."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Serve the REST gateway (FastAPI + uvicorn)."""
    import uvicorn
    import yaml

    from patchbay.gateway.app import CONFIG_ENV, SETTINGS_ENV, GatewaySettings

    path = _config_path(config).resolve()
    loaded = load_config(path)  # fail here, once, rather than in every worker
    consumers = set(loaded.spec.consumers)
    settings = GatewaySettings(
        max_limit=max_limit,
        default_limit=min(100, max_limit),
        metrics_consumers=list(metrics_consumer or []),
        jwt=yaml.safe_load(jwt.read_text()) if jwt else None,
    )
    unknown = sorted(
        {*settings.metrics_consumers, *(settings.jwt.consumers.values() if settings.jwt else ())}
        - consumers
    )
    if unknown:
        raise ConfigError(
            f"unknown consumers {unknown}; consumers: {', '.join(sorted(consumers))}",
            file=str(path),
            path="consumers",
        )
    os.environ[CONFIG_ENV] = str(path)
    os.environ[SETTINGS_ENV] = json.dumps(settings.model_dump(mode="json"))
    err.print(f"serving {path} on http://{host}:{port} ({workers} workers)", highlight=False)
    uvicorn.run(
        "patchbay.gateway.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=_log_config(log_level),
        log_level=log_level,
    )
