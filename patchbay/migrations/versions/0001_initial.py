"""The tables of patchbay 0.1: quarantine and schema baseline.

Revision ID: 0001
Revises: (none)

These tables used to be created by ``metadata.create_all``; a database made that way has no
version table yet, so each table is created only when it is missing (the definitions are the
same, column for column and index for index, as ``patchbay.core.quarantine`` and
``patchbay.core.drift`` declare them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "patchbay_quarantine" not in existing:
        op.create_table(
            "patchbay_quarantine",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
            sa.Column("source", sa.String(200), nullable=False),
            sa.Column("entity", sa.String(200), nullable=False),
            sa.Column("remote_id", sa.String(500)),
            sa.Column("reasons", sa.Text, nullable=False),
            sa.Column("raw", sa.Text, nullable=False),
            sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
            sa.Column("times_seen", sa.Integer, nullable=False),
        )
        op.create_index("ix_patchbay_quarantine_source", "patchbay_quarantine", ["source"])
    if "patchbay_schema_baseline" not in existing:
        op.create_table(
            "patchbay_schema_baseline",
            sa.Column("source", sa.String(200), primary_key=True),
            sa.Column("origin", sa.String(500), primary_key=True),
            sa.Column("column", sa.String(500), primary_key=True),
            sa.Column("type", sa.String(200), nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("patchbay_schema_baseline")
    op.drop_index("ix_patchbay_quarantine_source", table_name="patchbay_quarantine")
    op.drop_table("patchbay_quarantine")
