"""Indexes of the orders table that hold only the orders their queries look for.

``(status, expires_at)`` held every order ever made, to find the few unpaid ones past their
expiry; ``paid_at`` held a NULL for every order never paid. Each new order wrote both. Partial
indexes hold the unpaid orders (gone from the index once paid or closed) and the paid ones: a
million orders cost the sweeper and the reconciliation no more than a thousand, and a create
writes one index entry fewer. The queries repeat the condition (``models.UNPAID_ORDER``) so
that the planners can prove the index applies.

Revision ID: 0013_lean_order_indexes
Revises: 0012_merchant_portal
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_lean_order_indexes"
down_revision = "0012_merchant_portal"
branch_labels = None
depends_on = None

UNPAID = sa.text("status IN ('created', 'paying')")
PAID = sa.text("paid_at IS NOT NULL")


def upgrade() -> None:
    op.drop_index("ix_orders_status_expires_at", table_name="orders")
    op.create_index(
        "ix_orders_unpaid_expires_at", "orders", ["expires_at"], sqlite_where=UNPAID, postgresql_where=UNPAID
    )
    op.drop_index("ix_orders_paid_at", table_name="orders")
    op.create_index("ix_orders_paid_at", "orders", ["paid_at"], sqlite_where=PAID, postgresql_where=PAID)


def downgrade() -> None:
    op.drop_index("ix_orders_paid_at", table_name="orders")
    op.create_index("ix_orders_paid_at", "orders", ["paid_at"])
    op.drop_index("ix_orders_unpaid_expires_at", table_name="orders")
    op.create_index("ix_orders_status_expires_at", "orders", ["status", "expires_at"])
