"""The encrypted credential store (``patchbay.auth.store``).

Revision ID: 0002
Revises: 0001

``secret`` holds a Fernet token (AES-128-CBC + HMAC-SHA256, base64): never the plaintext.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "patchbay_credentials",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("tenant", sa.String(200), primary_key=True),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("patchbay_credentials")
