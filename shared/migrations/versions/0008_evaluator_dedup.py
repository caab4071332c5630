"""Evaluator: the event ids seen within the dedup horizon, in slices beside the
checkpoint (each slice written once, deleted once past the horizon), instead of all
of them inside every state snapshot. Each row keeps the offset of the checkpoint that
wrote it: rows of a checkpoint that did not stand (a fenced-out owner's) are ignored
until the partition's checkpoint has passed that offset.

On the evaluator's own branch (``db.migrate`` upgrades to "heads").

Revision ID: 0008_evaluator_dedup
Revises: 0007_rollup_fingerprint
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_evaluator_dedup"
down_revision = "0007_rollup_fingerprint"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluator_dedup_slices",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("consumer_group", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("bound", sa.BigInteger, nullable=False),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        sa.Column("ids", sa.LargeBinary, nullable=False),
    )
    op.create_index(
        "ix_evaluator_dedup_slices_partition",
        "evaluator_dedup_slices",
        ["consumer_group", "topic", "partition", "bound"],
    )


def downgrade() -> None:
    # Snapshots written since hold no ids: dedup restarts empty after a downgrade.
    op.drop_index("ix_evaluator_dedup_slices_partition", table_name="evaluator_dedup_slices")
    op.drop_table("evaluator_dedup_slices")
