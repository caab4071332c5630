"""Evaluator: per-minute SLI rollups.

Revision ID: 0002_evaluator
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_evaluator"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluator_sli_rollups",
        sa.Column("objective_id", sa.String(512), primary_key=True),
        sa.Column("group_key", sa.String(2048), primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("group", JSONB, nullable=False),
        sa.Column("good", sa.BigInteger, nullable=False),
        sa.Column("valid", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_evaluator_sli_rollups_minute", "evaluator_sli_rollups", ["objective_id", "minute"]
    )


def downgrade() -> None:
    op.drop_index("ix_evaluator_sli_rollups_minute", table_name="evaluator_sli_rollups")
    op.drop_table("evaluator_sli_rollups")
