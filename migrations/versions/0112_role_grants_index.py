"""identity: role_grants (role, person_id) index for listing everyone with a role

Revision ID: 0112_role_grants_index
Revises: 0111_quiz_levels
Create Date: 2026-11-28 22:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0112_role_grants_index"
down_revision = "0111_quiz_levels"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_role_grants_role_person", "role_grants", ["role", "person_id"])


def downgrade() -> None:
    op.drop_index("ix_role_grants_role_person", table_name="role_grants")
