"""card attempt returns

Revision ID: 9239e385bcd9
Revises: d4e5f6a7b8c9
Create Date: 2026-11-28 10:00:00

A card payment that Stripe took for an order that no longer takes it (cancelled, or less is due
now) goes back to the buyer by a Stripe refund: the attempt keeps that refund's id, and when a
call to make it started. Its new statuses, returning and returned, fit the status column as it
is (a VARCHAR(20) without a CHECK constraint).
"""

import sqlalchemy as sa
from alembic import op

revision = "9239e385bcd9"
down_revision = "d4e5f6a7b8c9"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("card_attempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refund_id", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("return_started_at", sa.DateTime(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_card_attempt_refund_id"), ["refund_id"])


def downgrade():
    with op.batch_alter_table("card_attempt", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_card_attempt_refund_id"), type_="unique")
        batch_op.drop_column("return_started_at")
        batch_op.drop_column("refund_id")
