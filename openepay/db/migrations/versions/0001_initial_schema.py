"""Initial schema: merchants, orders, the notification outbox, attempts, breakers, workers, refunds, balances.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_callbacks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("trade_no", sa.String(length=32), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_callbacks")),
    )
    with op.batch_alter_table("channel_callbacks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_channel_callbacks_trade_no"), ["trade_no"], unique=False)

    op.create_table(
        "merchants",
        sa.Column("pid", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_sealed", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("refund_enabled", sa.Boolean(), nullable=False),
        sa.Column("balance_fen", sa.BigInteger(), nullable=False),
        sa.Column("settle_type", sa.Integer(), nullable=False),
        sa.Column("settle_account", sa.String(length=128), nullable=False),
        sa.Column("settle_name", sa.String(length=128), nullable=False),
        sa.Column("notify_retry_delays", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pid", name=op.f("pk_merchants")),
    )
    op.create_table(
        "notify_breakers",
        sa.Column("merchant_pid", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("open_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cooldown_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("merchant_pid", name=op.f("pk_notify_breakers")),
    )
    op.create_table(
        "notify_workers",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notify_workers")),
    )
    with op.batch_alter_table("notify_workers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_workers_last_seen_at"), ["last_seen_at"], unique=False)

    op.create_table(
        "balance_entries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("merchant_pid", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ref", sa.String(length=64), nullable=False),
        sa.Column("delta_fen", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_pid"], ["merchants.pid"], name=op.f("fk_balance_entries_merchant_pid_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_entries")),
        sa.UniqueConstraint("kind", "ref", name=op.f("uq_balance_entries_kind_ref")),
    )
    with op.batch_alter_table("balance_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_balance_entries_merchant_pid"), ["merchant_pid"], unique=False)

    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("trade_no", sa.String(length=32), nullable=False),
        sa.Column("merchant_pid", sa.Integer(), nullable=False),
        sa.Column("dialect", sa.String(length=16), nullable=False),
        sa.Column("out_trade_no", sa.String(length=64), nullable=False),
        sa.Column("pay_type", sa.String(length=16), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("pay_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("money", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("notify_url", sa.Text(), nullable=False),
        sa.Column("return_url", sa.Text(), nullable=True),
        sa.Column("param", sa.Text(), nullable=True),
        sa.Column("sitename", sa.Text(), nullable=True),
        sa.Column("clientip", sa.String(length=64), nullable=True),
        sa.Column("device", sa.String(length=16), nullable=True),
        sa.Column("attrs", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("paid_late", sa.Boolean(), nullable=False),
        sa.Column("pay_url", sa.Text(), nullable=True),
        sa.Column("qrcode", sa.Text(), nullable=True),
        sa.Column("urlscheme", sa.Text(), nullable=True),
        sa.Column("channel_trade_no", sa.String(length=64), nullable=True),
        sa.Column("buyer", sa.String(length=128), nullable=True),
        sa.Column("paid_fen", sa.BigInteger(), nullable=True),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["merchant_pid"], ["merchants.pid"], name=op.f("fk_orders_merchant_pid_merchants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("merchant_pid", "out_trade_no", name=op.f("uq_orders_merchant_pid_out_trade_no")),
        sa.UniqueConstraint("trade_no", name=op.f("uq_orders_trade_no")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_merchant_pid_created_at", ["merchant_pid", "created_at"], unique=False)
        batch_op.create_index("ix_orders_status_expires_at", ["status", "expires_at"], unique=False)

    op.create_table(
        "settlements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("merchant_pid", sa.Integer(), nullable=False),
        sa.Column("settle_type", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=128), nullable=False),
        sa.Column("username", sa.String(length=128), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["merchant_pid"], ["merchants.pid"], name=op.f("fk_settlements_merchant_pid_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlements")),
    )
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_settlements_merchant_pid"), ["merchant_pid"], unique=False)

    op.create_table(
        "notify_tasks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("merchant_pid", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_notify_tasks_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_tasks")),
        sa.UniqueConstraint("order_id", "event", name=op.f("uq_notify_tasks_order_id_event")),
    )
    with op.batch_alter_table("notify_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_notify_tasks_lease_expires_at", ["lease_expires_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notify_tasks_merchant_pid"), ["merchant_pid"], unique=False)
        batch_op.create_index("ix_notify_tasks_order_id_status", ["order_id", "status"], unique=False)
        batch_op.create_index("ix_notify_tasks_status_failed_at", ["status", "failed_at"], unique=False)
        batch_op.create_index("ix_notify_tasks_status_next_attempt_at", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "refunds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("refund_no", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("merchant_pid", sa.Integer(), nullable=False),
        sa.Column("out_refund_no", sa.String(length=64), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("merchant_pid", "out_refund_no", name=op.f("uq_refunds_merchant_pid_out_refund_no")),
        sa.UniqueConstraint("refund_no", name=op.f("uq_refunds_refund_no")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refunds_order_id"), ["order_id"], unique=False)

    op.create_table(
        "notify_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("target_host", sa.String(length=255), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("body_head", sa.Text(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("error_class", sa.String(length=32), nullable=True),
        sa.Column("error_detail", sa.Text(), nullable=True),
        sa.Column("delivered", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["task_id"], ["notify_tasks.id"], name=op.f("fk_notify_attempts_task_id_notify_tasks")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_attempts")),
    )
    with op.batch_alter_table("notify_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_attempts_started_at"), ["started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notify_attempts_task_id"), ["task_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notify_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_attempts_task_id"))
        batch_op.drop_index(batch_op.f("ix_notify_attempts_started_at"))

    op.drop_table("notify_attempts")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_order_id"))

    op.drop_table("refunds")
    with op.batch_alter_table("notify_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_notify_tasks_status_next_attempt_at")
        batch_op.drop_index("ix_notify_tasks_status_failed_at")
        batch_op.drop_index("ix_notify_tasks_order_id_status")
        batch_op.drop_index(batch_op.f("ix_notify_tasks_merchant_pid"))
        batch_op.drop_index("ix_notify_tasks_lease_expires_at")

    op.drop_table("notify_tasks")
    with op.batch_alter_table("settlements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlements_merchant_pid"))

    op.drop_table("settlements")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_status_expires_at")
        batch_op.drop_index("ix_orders_merchant_pid_created_at")

    op.drop_table("orders")
    with op.batch_alter_table("balance_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_balance_entries_merchant_pid"))

    op.drop_table("balance_entries")
    with op.batch_alter_table("notify_workers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_workers_last_seen_at"))

    op.drop_table("notify_workers")
    op.drop_table("notify_breakers")
    op.drop_table("merchants")
    with op.batch_alter_table("channel_callbacks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channel_callbacks_trade_no"))

    op.drop_table("channel_callbacks")
