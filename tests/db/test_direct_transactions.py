"""``DirectStatements.transaction``: several statements straight to asyncpg, in one transaction (PostgreSQL).

What the notification worker's claim relies on: everything in the block commits together or not
at all, the opening statement (the claim's advisory lock) belongs to the transaction, a failed
statement raises what SQLAlchemy would raise, and the pooled connection is fit for the next user
whatever happened.
"""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import Integer, any_, bindparam, column, event, exc, insert, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from openepay.db import Database
from openepay.db.models import NotifyBreaker
from tests.conftest import pg_url

pytestmark = pytest.mark.postgresql

BREAKERS = NotifyBreaker.__table__
NEW_BREAKER = insert(BREAKERS).values(
    merchant_pid=bindparam("pid"), consecutive_failures=bindparam("failures"), cooldown_seconds=0.0
)
FAILURES_OF = select(BREAKERS.c.merchant_pid, BREAKERS.c.consecutive_failures).where(
    BREAKERS.c.merchant_pid == any_(bindparam("pids", type_=ARRAY(Integer)))
)
LOCK = 0x7465737473
PREPARED_LIKE = text("SELECT count(*) AS prepared FROM pg_prepared_statements WHERE statement LIKE :pattern").columns(
    column("prepared", Integer)
)


async def breakers(db: Database) -> list[tuple[int, int]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(select(BREAKERS.c.merchant_pid, BREAKERS.c.consecutive_failures))
        return sorted(tuple(row) for row in rows)


@pytest.fixture
async def db(pg_database: str):  # type: ignore[no-untyped-def]
    # One connection: whatever a transaction leaves on it, the next one meets.
    database = Database(pg_url(pg_database), pool_size=1, max_overflow=0)
    yield database
    await database.dispose()


async def test_every_statement_of_a_block_commits_when_the_block_ends(db: Database):
    assert db.direct is not None
    async with db.direct.transaction("SELECT 1") as transaction:
        await transaction.rows(NEW_BREAKER, {"pid": 1, "failures": 2})
        await transaction.rows(NEW_BREAKER, {"pid": 2, "failures": 3})
        # The block sees its own writes; the lists go as arrays.
        assert sorted(await transaction.rows(FAILURES_OF, {"pids": [1, 2, 3]})) == [(1, 2), (2, 3)]

    assert await breakers(db) == [(1, 2), (2, 3)]


async def test_a_block_that_raises_leaves_nothing_written_and_the_connection_clean(db: Database):
    assert db.direct is not None
    with pytest.raises(RuntimeError, match="changed my mind"):
        async with db.direct.transaction("SELECT 1") as transaction:
            await transaction.rows(NEW_BREAKER, {"pid": 1, "failures": 2})
            raise RuntimeError("changed my mind")

    assert await breakers(db) == []
    async with db.direct.transaction("SELECT 1") as transaction:
        await transaction.rows(NEW_BREAKER, {"pid": 1, "failures": 5})
    assert await breakers(db) == [(1, 5)]


async def test_a_failed_statement_raises_as_sqlalchemy_and_undoes_the_block(db: Database):
    assert db.direct is not None
    with pytest.raises(exc.IntegrityError) as raised:
        async with db.direct.transaction("SELECT 1") as transaction:
            await transaction.rows(NEW_BREAKER, {"pid": 7, "failures": 1})
            await transaction.rows(NEW_BREAKER, {"pid": 7, "failures": 1})
    assert isinstance(raised.value.orig.__cause__, asyncpg.UniqueViolationError)

    assert await breakers(db) == []
    # The same (only) connection again: not left inside the aborted transaction.
    async with db.direct.transaction("SELECT 1") as transaction:
        await transaction.rows(NEW_BREAKER, {"pid": 7, "failures": 1})
    assert await breakers(db) == [(7, 1)]


async def test_the_opening_statement_holds_its_lock_until_the_block_ends(db: Database, pg_database: str):
    assert db.direct is not None
    other = await asyncpg.connect(pg_url(pg_database).replace("+asyncpg", ""))
    try:
        async with db.direct.transaction(f"SELECT pg_advisory_xact_lock({LOCK})") as transaction:
            assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK) is False
            await transaction.rows(NEW_BREAKER, {"pid": 1, "failures": 1})
            assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK) is False
        assert await other.fetchval("SELECT pg_try_advisory_lock($1)", LOCK) is True
    finally:
        await other.close()


async def test_a_value_written_into_the_statement_is_sent_as_it_is(db: Database):
    assert db.direct is not None
    five_failures = update(BREAKERS).where(BREAKERS.c.merchant_pid == bindparam("pid")).values(consecutive_failures=5)
    async with db.direct.transaction("SELECT 1") as transaction:
        await transaction.rows(NEW_BREAKER, {"pid": 1, "failures": 0})
        await transaction.rows(NEW_BREAKER, {"pid": 2, "failures": 0})
        await transaction.rows(five_failures, {"pid": 2})
    assert await breakers(db) == [(1, 0), (2, 5)]


async def test_lists_of_any_length_are_one_prepared_statement(db: Database):
    assert db.direct is not None
    async with db.direct.transaction("SELECT 1") as transaction:
        for pid in range(1, 6):
            await transaction.rows(NEW_BREAKER, {"pid": pid, "failures": pid})
        for length in range(1, 6):
            found = await transaction.rows(FAILURES_OF, {"pids": list(range(1, length + 1))})
            assert sorted(found) == [(pid, pid) for pid in range(1, length + 1)]
        prepared = await transaction.rows(PREPARED_LIKE, {"pattern": "%consecutive_failures%ANY%"})
    assert prepared == [(1,)]


async def test_a_statement_that_needs_the_engine_is_refused_before_anything_is_sent(db: Database):
    assert db.direct is not None
    expanding = select(BREAKERS.c.merchant_pid).where(BREAKERS.c.merchant_pid.in_(bindparam("pids", expanding=True)))
    with pytest.raises(ValueError, match="not a statement asyncpg can run"):
        async with db.direct.transaction("SELECT 1") as transaction:
            await transaction.rows(NEW_BREAKER, {"pid": 1, "failures": 1})
            await transaction.rows(expanding, {"pids": [1]})
    assert await breakers(db) == []


async def test_the_engine_listeners_see_each_statement_of_a_block(db: Database):
    assert db.direct is not None
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", listen)
    try:
        async with db.direct.transaction(f"SELECT pg_advisory_xact_lock({LOCK})") as transaction:
            await transaction.rows(NEW_BREAKER, {"pid": 1, "failures": 1})
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", listen)
    assert len(seen) == 3
    assert "pg_advisory_xact_lock" in seen[0] and "INSERT INTO notify_breakers" in seen[1] and seen[2] == "COMMIT"
