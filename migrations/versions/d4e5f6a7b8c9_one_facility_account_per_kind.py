"""one facility account per kind

Revision ID: d4e5f6a7b8c9
Revises: c3d4e5f6a7b8
Create Date: 2026-11-22 22:00:00

The unique constraint on (kind, facility_id, wbp_id) does not stop two facility accounts of one
kind, whose wbp_id is NULL: the soak found two checkouts opening a facility's accounts at once.
"""

import sqlalchemy as sa
from alembic import op

revision = "d4e5f6a7b8c9"
down_revision = "c3d4e5f6a7b8"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "uq_ledger_account_facility_own",
        "ledger_account",
        ["kind", "facility_id"],
        unique=True,
        postgresql_where=sa.text("wbp_id IS NULL"),
        sqlite_where=sa.text("wbp_id IS NULL"),
    )


def downgrade():
    op.drop_index("uq_ledger_account_facility_own", table_name="ledger_account")
