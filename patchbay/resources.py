"""Resources the Hub builds and injects into connectors (connectors never build their own).

SQL engines are opened read-only where the database allows it, with pre-ping so a connection the
server dropped is replaced instead of failing the read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from patchbay.config import resolve_sqlite_path
from patchbay.core.connector import SqlSettings

__all__ = ["build_sql_engine"]


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
