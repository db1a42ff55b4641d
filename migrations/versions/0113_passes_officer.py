"""passes: officer edits of watch and trust entries; events get their jurisdiction

Adds ``pass_watch_entries.revised_at`` (an entry made stricter re-screens the trust list
as a new one would), ``pass_trust_entries.ended_at`` / ``ended_by_id`` (an officer ends
trust early), and gives every event without a jurisdiction the unit of its creator's
officer grant, since alerts are now pushed only to officers whose jurisdiction covers
the event.

Revision ID: 0113_passes_officer
Revises: 0112_role_grants_index
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0113_passes_officer"
down_revision = "0112_role_grants_index"
branch_labels = None
# The passes tables live on the "passes" branch; this revision needs them too.
depends_on = ("0107_passes_visit_index",)


def upgrade() -> None:
    with op.batch_alter_table("pass_watch_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revised_at", core.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("pass_trust_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ended_at", core.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ended_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_pass_trust_entries_ended_by_id_persons"), "persons", ["ended_by_id"], ["id"]
        )
    op.execute(
        """
        UPDATE pass_events SET org_unit_id = (
            SELECT MIN(rg.org_unit_id) FROM role_grants rg
            WHERE rg.person_id = pass_events.created_by_id AND rg.role = 'officer'
              AND rg.org_unit_id IS NOT NULL
        )
        WHERE org_unit_id IS NULL AND created_by_id IS NOT NULL
        """
    )


def downgrade() -> None:
    # The backfilled jurisdictions stay: they are correct data, not schema.
    with op.batch_alter_table("pass_trust_entries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_pass_trust_entries_ended_by_id_persons"), type_="foreignkey")
        batch_op.drop_column("ended_by_id")
        batch_op.drop_column("ended_at")
    with op.batch_alter_table("pass_watch_entries", schema=None) as batch_op:
        batch_op.drop_column("revised_at")
