"""Indexes of the outbox that hold only the notifications their queries look for.

Every update of a notification changes an indexed column (the lease its end, the record its
status), so it is never a heap-only update: each version of the row was written to every index
of ``notify_tasks``, seven of them, three versions per notification delivered (queued, leased,
delivered). The due indexes and the one the claim's "no earlier pending notification for this
order" check reads now hold only the pending notifications, the lease index only the leased ones,
the failed one only those that gave up (the unique ``(order_id, event)`` finds every notification
of an order for the console). A delivered notification's final version is written to the primary
key and the unique constraint only. The queries repeat the conditions with literals
(``models.PENDING_NOTIFICATION``...), so that PostgreSQL's generic plans can prove the indexes apply.

Revision ID: 0015_notify_partial_indexes
Revises: 0014_notify_merchant_due
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_notify_partial_indexes"
down_revision = "0014_notify_merchant_due"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
FAILED = sa.text("status = 'failed'")
LEASED = sa.text("lease_expires_at IS NOT NULL")


def upgrade() -> None:
    for name in (
        "ix_notify_tasks_due",
        "ix_notify_tasks_merchant_due",
        "ix_notify_tasks_lease_expires_at",
        "ix_notify_tasks_order_id_status",
        "ix_notify_tasks_status_failed_at",
    ):
        op.drop_index(name, table_name="notify_tasks")
    op.create_index(
        "ix_notify_tasks_due", "notify_tasks", ["next_attempt_at", "id"], sqlite_where=PENDING, postgresql_where=PENDING
    )
    op.create_index(
        "ix_notify_tasks_merchant_due",
        "notify_tasks",
        ["merchant_pid", "next_attempt_at", "id"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index(
        "ix_notify_tasks_pending_order_id",
        "notify_tasks",
        ["order_id", "id"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )
    op.create_index(
        "ix_notify_tasks_lease_expires_at",
        "notify_tasks",
        ["lease_expires_at"],
        sqlite_where=LEASED,
        postgresql_where=LEASED,
    )
    op.create_index(
        "ix_notify_tasks_failed_at", "notify_tasks", ["failed_at"], sqlite_where=FAILED, postgresql_where=FAILED
    )


def downgrade() -> None:
    for name in (
        "ix_notify_tasks_due",
        "ix_notify_tasks_merchant_due",
        "ix_notify_tasks_pending_order_id",
        "ix_notify_tasks_lease_expires_at",
        "ix_notify_tasks_failed_at",
    ):
        op.drop_index(name, table_name="notify_tasks")
    op.create_index("ix_notify_tasks_due", "notify_tasks", ["status", "next_attempt_at", "id"])
    op.create_index("ix_notify_tasks_merchant_due", "notify_tasks", ["merchant_pid", "status", "next_attempt_at", "id"])
    op.create_index("ix_notify_tasks_lease_expires_at", "notify_tasks", ["lease_expires_at"])
    op.create_index("ix_notify_tasks_order_id_status", "notify_tasks", ["order_id", "status"])
    op.create_index("ix_notify_tasks_status_failed_at", "notify_tasks", ["status", "failed_at"])
