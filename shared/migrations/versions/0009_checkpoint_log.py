"""Evaluator: every checkpoint records the log its offset belongs to (the broker's
cluster id and the topic id, see shared.logid), so an offset of another log (an
embedded broker that restarted empty, a topic recreated) is never used silently.
Checkpoints written before have none and are trusted.

On the evaluator's own branch (``db.migrate`` upgrades to "heads").

Revision ID: 0009_checkpoint_log
Revises: 0008_evaluator_dedup
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_checkpoint_log"
down_revision = "0008_evaluator_dedup"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("evaluator_checkpoints", sa.Column("log_identity", sa.String(600)))


def downgrade() -> None:
    op.drop_column("evaluator_checkpoints", "log_identity")
