"""The audit log (``patchbay.core.audit``) and the gateway's API keys.

Revision ID: 0003
Revises: 0002

``patchbay_audit``: one row per request a consumer made through any front door (written off the
read path by ``patchbay.core.audit.AuditWriter``). Filter values of masked fields are stored
masked; ``record_ids`` holds at most 100 ids, ``record_count`` the total.

``api_keys``: the REST gateway's API keys. ``id`` is the public key id; ``secret_hash`` is a hash of
the secret part, never the secret; ``scopes`` a JSON list (NULL: the consumer's whole policy).

A table is created only when it is missing, so a database whose version table was lost (or a
schema shared by test runs) upgrades cleanly.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "patchbay_audit" not in existing:
        op.create_table(
            "patchbay_audit",
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("consumer", sa.String(200), nullable=False),
            sa.Column("via", sa.String(20), nullable=False),
            sa.Column("request_id", sa.String(200)),
            sa.Column("tenant", sa.String(200)),
            sa.Column("operation", sa.String(20), nullable=False),
            sa.Column("entity", sa.String(200), nullable=False),
            sa.Column("filters", sa.Text),
            sa.Column("sources", sa.Text, nullable=False),
            sa.Column("record_count", sa.Integer, nullable=False),
            sa.Column("record_ids", sa.Text, nullable=False),
            sa.Column("outcome", sa.String(20), nullable=False),
            sa.Column("error", sa.String(200)),
            sa.Column("duration_ms", sa.Float, nullable=False),
        )
        op.create_index("ix_patchbay_audit_at", "patchbay_audit", ["at"])
        op.create_index("ix_patchbay_audit_consumer", "patchbay_audit", ["consumer", "at"])
        op.create_index("ix_patchbay_audit_entity", "patchbay_audit", ["entity", "at"])
    if "api_keys" not in existing:
        op.create_table(
            "api_keys",
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("consumer", sa.String(200), nullable=False),
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("secret_hash", sa.String(500), nullable=False),
            sa.Column("scopes", sa.Text),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("revoked_at", sa.DateTime(timezone=True)),
            sa.Column("last_used_at", sa.DateTime(timezone=True)),
        )
        op.create_index("ix_api_keys_consumer", "api_keys", ["consumer"])


def downgrade() -> None:
    op.drop_index("ix_api_keys_consumer", table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index("ix_patchbay_audit_entity", table_name="patchbay_audit")
    op.drop_index("ix_patchbay_audit_consumer", table_name="patchbay_audit")
    op.drop_index("ix_patchbay_audit_at", table_name="patchbay_audit")
    op.drop_table("patchbay_audit")
