"""Epay V2: merchants' RSA public keys, the gateway's own key pairs, seen request nonces.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rsa_public_key", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rsa_only", sa.Boolean(), nullable=False, server_default=sa.false()))

    op.create_table(
        "platform_keys",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("public_pem", sa.Text(), nullable=False),
        sa.Column("private_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_platform_keys")),
    )
    op.create_table(
        "request_nonces",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "nonce", name=op.f("pk_request_nonces")),
    )
    with op.batch_alter_table("request_nonces", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_nonces_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("request_nonces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_nonces_expires_at"))
    op.drop_table("request_nonces")
    op.drop_table("platform_keys")
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_column("rsa_only")
        batch_op.drop_column("rsa_public_key")
