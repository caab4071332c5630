"""Definitions: a version's document keeps its keys in the order they were applied
(``json``, stored as written) instead of ``jsonb``'s own order, so ``history`` prints
and diffs a version as its author wrote it. Rows from before keep jsonb's order.

Revision ID: 0012_definition_key_order
Revises: 0003_definitions
"""

from alembic import op

revision = "0012_definition_key_order"
down_revision = "0003_definitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE definition_versions ALTER COLUMN document TYPE json USING document::json"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE definition_versions ALTER COLUMN document TYPE jsonb USING document::jsonb"
    )
