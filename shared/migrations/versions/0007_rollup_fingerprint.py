"""Evaluator: per-minute SLI rollups carry what their objective measured (a fingerprint
of selection, good rule and grouping), part of the key, so a window rebuilt after a
definition change reads only rows that counted the same thing. Rows written before
have the fingerprint "" and are never used for a rebuild.

The key is (objective_id, fingerprint, minute, group_key): a rebuild reads one
objective and fingerprint over a range of minutes, which the key's index serves.

On the evaluator's own branch (each component keeps its branch on top of 0001;
``db.migrate`` upgrades to "heads").

Revision ID: 0007_rollup_fingerprint
Revises: 0002_evaluator
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_rollup_fingerprint"
down_revision = "0002_evaluator"
branch_labels = None
depends_on = None

TABLE = "evaluator_sli_rollups"
PRIMARY_KEY = "evaluator_sli_rollups_pkey"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("fingerprint", sa.String(64), nullable=False, server_default=""))
    op.drop_constraint(PRIMARY_KEY, TABLE, type_="primary")
    op.create_primary_key(
        PRIMARY_KEY, TABLE, ["objective_id", "fingerprint", "minute", "group_key"]
    )


def downgrade() -> None:
    # Rows of one (objective, group, minute) under several fingerprints merge into one.
    op.execute(
        """CREATE TEMPORARY TABLE merged_rollups ON COMMIT DROP AS
           SELECT objective_id, group_key, minute, (array_agg("group"))[1] AS "group",
                  sum(good)::bigint AS good, sum(valid)::bigint AS valid
             FROM evaluator_sli_rollups GROUP BY objective_id, group_key, minute"""
    )
    op.execute("DELETE FROM evaluator_sli_rollups")
    op.drop_constraint(PRIMARY_KEY, TABLE, type_="primary")
    op.drop_column(TABLE, "fingerprint")
    op.create_primary_key(PRIMARY_KEY, TABLE, ["objective_id", "group_key", "minute"])
    op.execute(
        """INSERT INTO evaluator_sli_rollups (objective_id, group_key, minute, "group", good, valid)
           SELECT objective_id, group_key, minute, "group", good, valid FROM merged_rollups"""
    )
