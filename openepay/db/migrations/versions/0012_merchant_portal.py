"""The merchant portal's accounts: its users, their sessions and sign-in attempts.

Revision ID: 0012_merchant_portal
Revises: 0011_notify_rate
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_merchant_portal"
down_revision = "0011_notify_rate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "merchant_users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("merchant_pid", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("totp_sealed", sa.Text(), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_pid"], ["merchants.pid"], name=op.f("fk_merchant_users_merchant_pid_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_users")),
        sa.UniqueConstraint("username", name=op.f("uq_merchant_users_username")),
    )
    op.create_index(op.f("ix_merchant_users_merchant_pid"), "merchant_users", ["merchant_pid"])
    op.create_table(
        "merchant_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=8), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["merchant_users.id"], name=op.f("fk_merchant_sessions_user_id_merchant_users")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_merchant_sessions")),
    )
    op.create_index(op.f("ix_merchant_sessions_user_id"), "merchant_sessions", ["user_id"])
    op.create_index(op.f("ix_merchant_sessions_expires_at"), "merchant_sessions", ["expires_at"])
    op.create_table(
        "merchant_login_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchant_login_attempts")),
    )
    op.create_index("ix_merchant_login_attempts_address_at", "merchant_login_attempts", ["address", "at"])
    op.create_index("ix_merchant_login_attempts_username_at", "merchant_login_attempts", ["username", "at"])


def downgrade() -> None:
    op.drop_index("ix_merchant_login_attempts_username_at", table_name="merchant_login_attempts")
    op.drop_index("ix_merchant_login_attempts_address_at", table_name="merchant_login_attempts")
    op.drop_table("merchant_login_attempts")
    op.drop_index(op.f("ix_merchant_sessions_expires_at"), table_name="merchant_sessions")
    op.drop_index(op.f("ix_merchant_sessions_user_id"), table_name="merchant_sessions")
    op.drop_table("merchant_sessions")
    op.drop_index(op.f("ix_merchant_users_merchant_pid"), table_name="merchant_users")
    op.drop_table("merchant_users")
