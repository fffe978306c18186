"""Each merchant's due notifications, in claim order: (merchant_pid, status, next_attempt_at, id).

PostgreSQL's claim reads, for each merchant with a free slot, only its own earliest due
notifications, so a merchant at its cap (however long its backlog) costs a claim nothing, and
the read stays an index scan in claim order whatever the planner's statistics say. The
``merchant_pid`` index it replaces was a prefix of it.

Revision ID: 0014_notify_merchant_due
Revises: 0013_lean_order_indexes
Create Date: 2026-12-04
"""

from alembic import op

revision = "0014_notify_merchant_due"
down_revision = "0013_lean_order_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notify_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notify_tasks_merchant_due", ["merchant_pid", "status", "next_attempt_at", "id"], unique=False
        )
        batch_op.drop_index("ix_notify_tasks_merchant_pid")


def downgrade() -> None:
    with op.batch_alter_table("notify_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_notify_tasks_merchant_pid", ["merchant_pid"], unique=False)
        batch_op.drop_index("ix_notify_tasks_merchant_due")
