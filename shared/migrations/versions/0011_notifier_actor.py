"""Notifier: acknowledgements and silences record the API key that made them
(``actor``; ``ack link`` for a signed link), beside the name the caller gave.
Rows from before have none.

On the notifier's branch (``db.migrate`` upgrades to "heads").

Revision ID: 0011_notifier_actor
Revises: 0006_notifier_groups
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_notifier_actor"
down_revision = "0006_notifier_groups"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("breach_acks", sa.Column("actor", sa.String(256)))
    op.add_column("notifier_silences", sa.Column("actor", sa.String(256)))


def downgrade() -> None:
    op.drop_column("notifier_silences", "actor")
    op.drop_column("breach_acks", "actor")
