"""Personal QR codes matched by amount: accounts, codes, devices, amount reservations, payment events; the audit log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("trade_no", sa.String(length=32), nullable=True),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_trade_no"), ["trade_no"], unique=False)

    op.create_table(
        "qrpool_accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("pay_type", sa.String(length=16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qrpool_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_qrpool_accounts_name")),
    )
    op.create_table(
        "qrpool_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["qrpool_accounts.id"], name=op.f("fk_qrpool_codes_account_id_qrpool_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qrpool_codes")),
        sa.UniqueConstraint("account_id", "amount_fen", name=op.f("uq_qrpool_codes_account_id_amount_fen")),
    )
    with op.batch_alter_table("qrpool_codes", schema=None) as batch_op:
        batch_op.create_index(
            "uq_qrpool_codes_generic",
            ["account_id"],
            unique=True,
            sqlite_where=sa.text("amount_fen IS NULL"),
            postgresql_where=sa.text("amount_fen IS NULL"),
        )

    op.create_table(
        "qrpool_devices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("key_sealed", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_push_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["qrpool_accounts.id"], name=op.f("fk_qrpool_devices_account_id_qrpool_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qrpool_devices")),
    )
    with op.batch_alter_table("qrpool_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qrpool_devices_account_id"), ["account_id"], unique=False)

    op.create_table(
        "qrpool_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("event_key", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("pay_type", sa.String(length=16), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("amount_text", sa.String(length=32), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["qrpool_accounts.id"], name=op.f("fk_qrpool_events_account_id_qrpool_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["qrpool_devices.id"], name=op.f("fk_qrpool_events_device_id_qrpool_devices")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_qrpool_events_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qrpool_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_qrpool_events_event_key")),
    )
    with op.batch_alter_table("qrpool_events", schema=None) as batch_op:
        batch_op.create_index("ix_qrpool_events_decision_received_at", ["decision", "received_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_qrpool_events_order_id"), ["order_id"], unique=False)

    op.create_table(
        "qrpool_reservations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("hold_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["qrpool_accounts.id"], name=op.f("fk_qrpool_reservations_account_id_qrpool_accounts")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_qrpool_reservations_order_id_orders")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qrpool_reservations")),
    )
    with op.batch_alter_table("qrpool_reservations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_qrpool_reservations_order_id"), ["order_id"], unique=False)
        batch_op.create_index("ix_qrpool_reservations_state_hold_until", ["state", "hold_until"], unique=False)
        batch_op.create_index(
            "uq_qrpool_reservations_account_id_amount_fen",
            ["account_id", "amount_fen"],
            unique=True,
            sqlite_where=sa.text("state != 'released'"),
            postgresql_where=sa.text("state != 'released'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("qrpool_reservations", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_qrpool_reservations_account_id_amount_fen",
            sqlite_where=sa.text("state != 'released'"),
            postgresql_where=sa.text("state != 'released'"),
        )
        batch_op.drop_index("ix_qrpool_reservations_state_hold_until")
        batch_op.drop_index(batch_op.f("ix_qrpool_reservations_order_id"))

    op.drop_table("qrpool_reservations")
    with op.batch_alter_table("qrpool_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qrpool_events_order_id"))
        batch_op.drop_index("ix_qrpool_events_decision_received_at")

    op.drop_table("qrpool_events")
    with op.batch_alter_table("qrpool_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_qrpool_devices_account_id"))

    op.drop_table("qrpool_devices")
    with op.batch_alter_table("qrpool_codes", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_qrpool_codes_generic",
            sqlite_where=sa.text("amount_fen IS NULL"),
            postgresql_where=sa.text("amount_fen IS NULL"),
        )

    op.drop_table("qrpool_codes")
    op.drop_table("qrpool_accounts")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_trade_no"))
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))

    op.drop_table("audit_log")
