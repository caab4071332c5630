"""Notifier: acknowledgements, silences, notifier secrets, deliveries by receiver.

Revision ID: 0004_notifier
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0004_notifier"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breach_acks",
        sa.Column("breach_id", sa.String(64), primary_key=True),
        sa.Column("acked_by", sa.String(256), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "notifier_silences",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("matchers", JSONB, nullable=False),
        sa.Column("starts_at", sa.BigInteger, nullable=False),
        sa.Column("ends_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_notifier_silences_ends", "notifier_silences", ["ends_at"])
    op.create_table(
        "notifier_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_index("ix_deliveries_receiver", "deliveries", ["receiver", "id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_receiver", table_name="deliveries")
    op.drop_table("notifier_secrets")
    op.drop_index("ix_notifier_silences_ends", table_name="notifier_silences")
    op.drop_table("notifier_silences")
    op.drop_table("breach_acks")
