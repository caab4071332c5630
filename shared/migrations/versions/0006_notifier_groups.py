"""Notifier: one stored snapshot per group flush (the alerts a grouped notification
carries), so a retried group delivery sends the same content.

Revision ID: 0006_notifier_groups
Revises: 0004_notifier
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006_notifier_groups"
down_revision = "0004_notifier"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_group_flushes",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("receiver", sa.String(253), nullable=False),
        sa.Column("group_key", sa.String(1024), nullable=False),
        sa.Column("flush_at", sa.BigInteger, nullable=False),
        sa.Column("document", JSONB, nullable=False),
        sa.UniqueConstraint(
            "receiver", "group_key", "flush_at", name="uq_notification_group_flush"
        ),
    )


def downgrade() -> None:
    op.drop_table("notification_group_flushes")
