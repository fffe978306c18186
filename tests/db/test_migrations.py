"""The migrations build exactly the schema the models describe, and upgrade a database that has data."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from openepay.db import migrate
from openepay.db.engine import build_engine
from openepay.db.models import Base


async def _run(url: str, work):  # type: ignore[no-untyped-def]
    engine = build_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def schema_drift(url: str) -> list[object]:
    return asyncio.run(_run(url, lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)))


def test_migrated_schema_matches_the_models(empty_database_url):
    migrate.upgrade(empty_database_url)
    assert schema_drift(empty_database_url) == []
    assert asyncio.run(migrate.current_revision(empty_database_url)) == migrate.head_revision()


def test_a_database_of_the_first_release_keeps_its_merchants_and_gains_the_v2_columns(empty_database_url):
    config = migrate.alembic_config(empty_database_url)
    command.upgrade(config, "0001")
    insert = text(
        "INSERT INTO merchants (pid, name, key_sealed, status, notify_retry_delays, refund_enabled,"
        " balance_fen, settle_type, settle_account, settle_name, created_at)"
        " VALUES (1001, 'Old Shop', 'sealed', 'active', NULL, false, 0, 1, '', '', CURRENT_TIMESTAMP)"
    )
    asyncio.run(_run(empty_database_url, lambda sync: sync.execute(insert)))
    migrate.upgrade(empty_database_url)
    rows = asyncio.run(
        _run(
            empty_database_url,
            lambda sync: sync.execute(text("SELECT pid, name, rsa_public_key, rsa_only FROM merchants")).all(),
        )
    )
    assert [tuple(row) for row in rows] == [(1001, "Old Shop", None, False)]
    assert schema_drift(empty_database_url) == []


def test_the_newest_revision_downgrades_cleanly(empty_database_url):
    config = migrate.alembic_config(empty_database_url)
    migrate.upgrade(empty_database_url)
    command.downgrade(config, "-1")
    command.upgrade(config, "head")
    assert schema_drift(empty_database_url) == []
