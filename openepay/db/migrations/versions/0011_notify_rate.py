"""Due notifications are read in claim order straight from an index: (status, next_attempt_at, id).

The claim walks the due notifications in that order and stops as soon as it has enough, so its
cost follows the size of a batch, not of the backlog. The index it replaces was a prefix of it.

Revision ID: 0011_notify_rate
Revises: 0010_channel_pay_info
Create Date: 2026-12-03
"""

from alembic import op

revision = "0011_notify_rate"
down_revision = "0010_channel_pay_info"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notify_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_notify_tasks_due", ["status", "next_attempt_at", "id"], unique=False)
        batch_op.drop_index("ix_notify_tasks_status_next_attempt_at")


def downgrade() -> None:
    with op.batch_alter_table("notify_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_notify_tasks_status_next_attempt_at", ["status", "next_attempt_at"], unique=False)
        batch_op.drop_index("ix_notify_tasks_due")
