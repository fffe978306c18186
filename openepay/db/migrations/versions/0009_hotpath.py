"""A version token for the merchants each process keeps in memory, written by triggers.

Every insert, delete and update of ``merchants`` (except of the balance, which payments change
all the time and no cache holds) writes a new random token to ``cache_versions``; a process
that sees the token change drops its copy of the merchants (``openepay.core.merchant_cache``).
A trigger catches every writer, the CLI and an operator's SQL included. A column added to
``merchants`` later must be added to ``WATCHED`` in a migration of its own.

Revision ID: 0009_hotpath
Revises: 0008_admin
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_hotpath"
down_revision = "0008_admin"
branch_labels = None
depends_on = None

WATCHED = (
    "pid",
    "name",
    "key_sealed",
    "status",
    "refund_enabled",
    "settle_type",
    "settle_account",
    "settle_name",
    "notify_retry_delays",
    "rsa_public_key",
    "rsa_only",
    "dialects",
    "pay_types",
    "channel_accounts",
    "mapi_answer",
    "created_at",
)
PG_BUMP = """
CREATE FUNCTION openepay_merchants_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cache_versions (name, token) VALUES ('merchants', (random() * 9e15)::bigint)
    ON CONFLICT (name) DO UPDATE SET token = excluded.token;
    RETURN NULL;
END $$
"""
SQLITE_BUMP = (
    "INSERT INTO cache_versions (name, token) VALUES ('merchants', random())"
    " ON CONFLICT (name) DO UPDATE SET token = excluded.token;"
)


def upgrade() -> None:
    op.create_table(
        "cache_versions",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cache_versions")),
    )
    columns = ", ".join(WATCHED)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_BUMP)
        op.execute(
            f"CREATE TRIGGER merchants_changed AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF {columns}"
            " ON merchants FOR EACH STATEMENT EXECUTE FUNCTION openepay_merchants_changed()"
        )
        return
    for event, name in (("INSERT", "inserted"), ("DELETE", "deleted"), (f"UPDATE OF {columns}", "updated")):
        op.execute(f"CREATE TRIGGER merchants_{name} AFTER {event} ON merchants BEGIN {SQLITE_BUMP} END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER merchants_changed ON merchants")
        op.execute("DROP FUNCTION openepay_merchants_changed()")
    else:
        for name in ("inserted", "deleted", "updated"):
            op.execute(f"DROP TRIGGER merchants_{name}")
    op.drop_table("cache_versions")
