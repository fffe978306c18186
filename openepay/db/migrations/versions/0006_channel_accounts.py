"""Channel accounts with routing rules and health, their daily usage; orders remember their account.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

USAGE_TO_RELEASE = sa.text("usage_day IS NOT NULL AND status = 'closed'")


def upgrade() -> None:
    op.create_table(
        "channel_accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.JSON(), nullable=False),
        sa.Column("pay_types", sa.JSON(), nullable=True),
        sa.Column("devices", sa.JSON(), nullable=True),
        sa.Column("min_fen", sa.BigInteger(), nullable=True),
        sa.Column("max_fen", sa.BigInteger(), nullable=True),
        sa.Column("daily_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("daily_count", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_accounts")),
        sa.UniqueConstraint("name", name=op.f("uq_channel_accounts_name")),
    )
    op.create_table(
        "channel_account_usage",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_channel_account_usage_account_id_channel_accounts"),
        ),
        sa.PrimaryKeyConstraint("account_id", "day", name=op.f("pk_channel_account_usage")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel_account_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("routing", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("usage_day", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("qrcode_any_amount", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_orders_channel_account_id_channel_accounts"),
            "channel_accounts",
            ["channel_account_id"],
            ["id"],
        )
        batch_op.create_index(
            "ix_orders_usage_to_release",
            ["id"],
            unique=False,
            sqlite_where=USAGE_TO_RELEASE,
            postgresql_where=USAGE_TO_RELEASE,
        )
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pay_types", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("channel_accounts", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("mapi_answer", sa.String(length=16), nullable=False, server_default="channel"))


def downgrade() -> None:
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_column("mapi_answer")
        batch_op.drop_column("channel_accounts")
        batch_op.drop_column("pay_types")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_usage_to_release")
        batch_op.drop_constraint(batch_op.f("fk_orders_channel_account_id_channel_accounts"), type_="foreignkey")
        batch_op.drop_column("checked_at")
        batch_op.drop_column("qrcode_any_amount")
        batch_op.drop_column("usage_day")
        batch_op.drop_column("routing")
        batch_op.drop_column("channel_account_id")
    op.drop_table("channel_account_usage")
    op.drop_table("channel_accounts")
