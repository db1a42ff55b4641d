"""quiz: quarterly level snapshots; competition notice stage and start-time index

Revision ID: 0111_quiz_levels
Revises: 0110_quiz
Create Date: 2026-11-28 21:58:55.049868
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import core.db

revision = "0111_quiz_levels"
down_revision = "0110_quiz"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quiz_level_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("quarter", sa.String(length=8), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("previous_level", sa.Integer(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("rules_version", sa.String(length=32), nullable=False),
        sa.Column("computed_at", core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["persons.id"], name=op.f("fk_quiz_level_snapshots_person_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_level_snapshots")),
        sa.UniqueConstraint("person_id", "quarter", name=op.f("uq_quiz_level_snapshots_person_id_quarter")),
    )
    with op.batch_alter_table("quiz_competitions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notified_minutes", sa.Integer(), nullable=True))
        batch_op.create_index("ix_quiz_competitions_status_starts", ["status", "starts_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("quiz_competitions", schema=None) as batch_op:
        batch_op.drop_index("ix_quiz_competitions_status_starts")
        batch_op.drop_column("notified_minutes")

    op.drop_table("quiz_level_snapshots")
