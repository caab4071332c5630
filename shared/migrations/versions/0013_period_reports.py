"""Notifier: reports of record. A closed period's report is built once, at or after
its close, and kept in every format, so it never changes when definitions or rollups
do (re-reading it gives the same bytes).

On the notifier's branch (``db.migrate`` upgrades to "heads").

Revision ID: 0013_period_reports
Revises: 0011_notifier_actor
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_period_reports"
down_revision = "0011_notifier_actor"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "period_reports",
        sa.Column("agreement", sa.String(253), primary_key=True),
        sa.Column("period_start", sa.BigInteger, primary_key=True),
        sa.Column("period_end", sa.BigInteger, nullable=False),
        sa.Column("label", sa.String(32), nullable=False),
        sa.Column("built_at", sa.BigInteger, nullable=False),
        sa.Column("json", sa.Text, nullable=False),
        sa.Column("csv", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("period_reports")
