"""API keys: name, SHA-256 digest of the key (never the key), scopes, optional
expiry and rate limit, who created / revoked it, and when it was last used.

On its own branch on top of 0001 (``db.migrate`` upgrades to "heads").

Revision ID: 0010_api_keys
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010_api_keys"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", JSONB, nullable=False),
        sa.Column("rate_per_s", sa.Float),
        sa.Column("burst", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", sa.String(256)),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
