"""passes: index for the day-before-visit reminder

Revision ID: 0107_passes_visit_index
Revises: 0105_passes
"""

from __future__ import annotations

from alembic import op

revision = "0107_passes_visit_index"
down_revision = "0105_passes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_pass_applications_visit_from", "pass_applications", ["visit_from", "status"])


def downgrade() -> None:
    op.drop_index("ix_pass_applications_visit_from", table_name="pass_applications")
