"""patchbay's own tables in the ``state`` database, kept at the current schema by Alembic.

``upgrade(engine)`` brings a state database to the newest schema: it runs the migrations shipped
in ``patchbay/migrations`` programmatically (no ``alembic.ini`` is needed) and records the
revision in ``patchbay_alembic_version``, a version table of its own so that an application's
Alembic history in the same database is left alone. It is idempotent and safe when several
processes start at once:

- PostgreSQL: the migrations run in one transaction holding an advisory lock, so a second
  process waits, then finds the schema at head;
- SQLite: the migrations run in a ``BEGIN IMMEDIATE`` transaction, which takes the database's
  write lock for the same effect.

Databases whose tables were created by earlier versions with ``metadata.create_all`` (no version
table yet) upgrade cleanly: the first migration creates only the tables that are missing.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

__all__ = ["HEAD", "VERSION_TABLE", "current", "upgrade"]

VERSION_TABLE = "patchbay_alembic_version"
HEAD = "0003"
MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed 64-bit number: the key of the PostgreSQL advisory lock that serialises upgrades.
_ADVISORY_LOCK = 0x7061_7463_6862_6179  # "patchbay"

_upgraded: weakref.WeakSet[sa.Engine] = weakref.WeakSet()
_lock = threading.Lock()


def _config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = VERSION_TABLE
    return config


def upgrade(engine: sa.Engine, *, revision: str = "head") -> None:
    """Migrate the state database behind ``engine`` to ``revision`` (once per engine and process
    for ``head``; later calls return at once)."""
    if revision == "head" and engine in _upgraded:
        return
    with _lock:
        if revision == "head" and engine in _upgraded:
            return
        with engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            elif connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK}
                )
            command.upgrade(_config(connection), revision)
            connection.commit()
        if revision == "head":
            _upgraded.add(engine)


def current(engine: sa.Engine) -> str | None:
    """The revision the state database is at (None before the first upgrade)."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(VERSION_TABLE):
            return None
        return connection.execute(
            sa.text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608 (a constant)
        ).scalar()
