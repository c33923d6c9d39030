"""Resources the Hub builds and injects into connectors (connectors never build their own).

SQL engines are opened read-only where the database allows it, with pre-ping so a connection the
server dropped is replaced instead of failing the read. HTTP clients carry the source's TLS and
proxy settings, its auth, and the resilience transport, all from config.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import sqlalchemy as sa
from redis.asyncio import Redis

from patchbay.auth import TokenStore, build_auth, install_redactor
from patchbay.auth._redact import install_cookie_redactor
from patchbay.config import HttpSpec, SourceConfig, resolve_sqlite_path
from patchbay.core.connector import SqlSettings
from patchbay.resilience import (
    CircuitBreaker,
    Clock,
    Events,
    RedisTokenBucket,
    ResilientTransport,
    SystemClock,
)

__all__ = ["build_http_client", "build_sql_engine"]


def build_sql_engine(settings: SqlSettings, base_dir: Path) -> sa.Engine:
    url = sa.make_url(resolve_sqlite_path(settings.url, base_dir))
    backend = url.get_backend_name()
    if settings.password is not None and backend != "sqlite":  # a file has no password
        url = url.set(password=settings.password.get_secret_value())
    connect_args: dict[str, Any] = dict(settings.connect_args)
    if backend == "sqlite" and url.database and url.database != ":memory:":
        # A URI with mode=ro: the file must exist (no empty database is created by a typo'd
        # path) and nothing can write to it through patchbay.
        url = url.set(
            database="file:" + quote(url.database), query={**url.query, "mode": "ro", "uri": "true"}
        )
    elif backend == "postgresql":
        # Keep the options the URL or settings give (a search_path, say) and add read-only.
        given = [connect_args.get("options"), url.query.get("options")]
        options = " ".join(o for o in given if isinstance(o, str) and o)
        connect_args["options"] = f"{options} -c default_transaction_read_only=on".strip()
        url = url.difference_update_query(["options"])
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)
    if backend in ("mysql", "mariadb"):

        @sa.event.listens_for(engine, "connect")
        def _read_only(dbapi_connection: Any, record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")

    return engine


def build_http_client(
    conf: SourceConfig,
    *,
    base_dir: Path,
    token_store: TokenStore,
    events: Events,
    redis: Redis | None = None,
    clock: Clock | None = None,
    opened: list[httpx.AsyncClient] | None = None,
) -> httpx.AsyncClient:
    """The client an HTTP connector receives: TLS (private CA, mTLS), proxy, limits, timeouts,
    the resilience transport (retries, rate limit, breaker) and the source's auth.

    Every client built (the connector's, and the one the auth uses for its token endpoint) is
    appended to ``opened``: the caller closes them.
    """
    opened = opened if opened is not None else []
    install_cookie_redactor()  # session cookies never reach a log, whatever the scheme
    for param in conf.connector.redact_params:
        install_redactor(param)
    spec, policy = conf.spec.http, conf.spec.resilience
    tls = _tls(spec, base_dir)
    limits = httpx.Limits(max_connections=spec.max_connections)

    def transport() -> ResilientTransport:
        inner = httpx.AsyncHTTPTransport(verify=tls, proxy=spec.proxy, limits=limits)
        limiter: Any = None
        rate = policy.rate_limit
        if rate is not None and rate.shared and redis is not None:
            limiter = RedisTokenBucket(
                redis, f"patchbay:limit:{conf.name}", rate.rate, rate.burst, clock or SystemClock()
            )
        breaker = CircuitBreaker(
            conf.name,
            conf.owner,
            policy.breaker,
            clock or SystemClock(),
            events=events,
            redis=redis,
            key=f"patchbay:breaker:{conf.name}" if redis is not None else None,
        )
        return ResilientTransport(
            inner,
            policy,
            source=conf.name,
            owner=conf.owner,
            clock=clock,
            limiter=limiter,
            breaker=breaker,
            events=events,
        )

    auth: httpx.Auth | None = None
    if conf.auth is not None:
        token_client = httpx.AsyncClient(transport=transport(), timeout=policy.timeout)
        opened.append(token_client)
        auth = build_auth(
            conf.auth,
            source=conf.name,
            owner=conf.owner,
            store=token_store,
            token_client=token_client,
            redis=redis,
        )
    client = httpx.AsyncClient(
        transport=transport(), auth=auth, timeout=policy.timeout, headers=spec.headers
    )
    opened.append(client)
    return client


def _tls(spec: HttpSpec, base_dir: Path) -> ssl.SSLContext | bool:
    if not spec.verify:
        return False
    if spec.ca_bundle is None and spec.client_cert is None:
        return True
    context = ssl.create_default_context(
        cafile=str(base_dir / spec.ca_bundle) if spec.ca_bundle else None
    )
    if spec.client_cert is not None:
        context.load_cert_chain(
            str(base_dir / spec.client_cert),
            str(base_dir / spec.client_key) if spec.client_key else None,
        )
    return context
