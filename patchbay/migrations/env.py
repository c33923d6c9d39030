"""Alembic environment: migrations run on the connection ``patchbay.state.upgrade`` hands over.

There is no offline (SQL script) mode and no ``alembic.ini``: patchbay runs its migrations itself.
"""

from __future__ import annotations

from alembic import context

config = context.config
if context.is_offline_mode():
    raise RuntimeError("patchbay's migrations run online, through patchbay.state.upgrade")

context.configure(
    connection=config.attributes["connection"],
    version_table=config.attributes["version_table"],
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
