"""``Database.one`` on PostgreSQL: lone statements on the ``DirectStatements``' own few connections.

What the hot paths rely on: a burst of requests larger than those connections is answered in
full, on no more connections than that, and a connection the server cut fails one statement, as
the engine's would (a ``DBAPIError`` saying the connection was invalidated), never the next one.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import Integer, column, exc, text

from openepay.db import Database
from openepay.db.engine import DIRECT_CONNECTIONS
from tests.support.postgres import PG_DSN, pg_url

pytestmark = pytest.mark.postgresql

BACKEND = text("SELECT pg_backend_pid() AS backend FROM pg_sleep(:pause)").columns(column("backend", Integer))


@pytest.fixture
async def db(pg_database: str):  # type: ignore[no-untyped-def]
    database = Database(pg_url(pg_database), pool_size=DIRECT_CONNECTIONS, max_overflow=0)
    yield database
    await database.dispose()


async def test_a_burst_larger_than_the_connections_is_answered_in_full_on_that_many(db: Database):
    rows = await asyncio.gather(*(db.one(BACKEND, {"pause": 0.05}) for _ in range(3 * DIRECT_CONNECTIONS)))

    backends = {row["backend"] for row in rows if row is not None}
    assert len(rows) == 3 * DIRECT_CONNECTIONS
    assert 1 < len(backends) <= DIRECT_CONNECTIONS


async def test_a_process_with_a_smaller_pool_keeps_as_few_direct_connections(pg_database: str):
    """A command or a test that keeps its pool to one connection is not given four more."""
    small = Database(pg_url(pg_database), pool_size=1, max_overflow=0)
    try:
        rows = await asyncio.gather(*(small.one(BACKEND, {"pause": 0.02}) for _ in range(DIRECT_CONNECTIONS)))
    finally:
        await small.dispose()

    assert len({row["backend"] for row in rows if row is not None}) == 1
    assert len(rows) == DIRECT_CONNECTIONS


async def test_a_connection_the_server_cut_fails_one_statement_and_the_next_one_answers(db: Database):
    first = await db.one(BACKEND, {"pause": 0})
    assert first is not None
    admin = await asyncpg.connect(PG_DSN)
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", first["backend"])
    finally:
        await admin.close()

    with pytest.raises(exc.DBAPIError) as failed:
        await db.one(BACKEND, {"pause": 0})
    assert failed.value.connection_invalidated

    again = await db.one(BACKEND, {"pause": 0})
    assert again is not None and again["backend"] != first["backend"]
