"""Definitions: version history (author, time, reason; deletions included).

Existing definitions get their current version recorded as created by "migration".

Revision ID: 0003_definitions
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003_definitions"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "definition_versions",
        sa.Column("kind", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("document", JSONB),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.execute(
        "INSERT INTO definition_versions (kind, name, version, change, document, author, created_at) "
        "SELECT kind, name, version, 'created', document, 'migration', updated_at FROM definitions"
    )


def downgrade() -> None:
    op.drop_table("definition_versions")
