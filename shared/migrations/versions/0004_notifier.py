"""Notifier: acknowledgements, silences, notifier secrets, deliveries by receiver,
notification groups.

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
    op.create_table(
        "notification_groups",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("receiver", sa.String(253), nullable=False),
        sa.Column("group_key", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("next_flush_at", sa.BigInteger, nullable=False),
        sa.Column("last_sent_at", sa.BigInteger),
        sa.Column("interval_ms", sa.BigInteger, nullable=False),
        sa.Column("repeat_ms", sa.BigInteger, nullable=False),
        sa.Column("repeats", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("receiver", "group_key", name="uq_notification_group"),
    )
    op.create_index("ix_notification_groups_due", "notification_groups", ["next_flush_at"])
    op.create_table(
        "notification_group_members",
        sa.Column(
            "group_id",
            sa.BigInteger,
            sa.ForeignKey("notification_groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("breach_id", sa.String(64), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("notification_group_members")
    op.drop_index("ix_notification_groups_due", table_name="notification_groups")
    op.drop_table("notification_groups")
    op.drop_index("ix_deliveries_receiver", table_name="deliveries")
    op.drop_table("notifier_secrets")
    op.drop_index("ix_notifier_silences_ends", table_name="notifier_silences")
    op.drop_table("notifier_silences")
    op.drop_table("breach_acks")
