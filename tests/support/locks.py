"""Many transactions meeting at one row: the way concurrency tests make a race really happen.

On PostgreSQL the row is held locked (``SELECT ... FOR UPDATE``) until every attempt is waiting
on it, so each has read what it reads before any of them writes. SQLite takes its write lock at
``BEGIN IMMEDIATE``, so attempts there queue one after another whatever the test does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from sqlalchemy import Executable, Select, Table, text

from openepay.gateway import Gateway
from tests.support.waiting import eventually

T = TypeVar("T")


async def lock_waiters(gateway: Gateway) -> int:
    """How many of the database's sessions wait on a lock just now (PostgreSQL)."""
    async with gateway.db.session() as session:
        return await session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )


async def meeting_at(
    gateway: Gateway, locked_row: Select, attempts: Iterable[Coroutine[Any, Any, T]]
) -> list[asyncio.Task[T]]:
    """Start ``attempts`` at once; on PostgreSQL ``locked_row`` stays locked until all of them wait on it."""
    if gateway.db.dialect != "postgresql":
        return [asyncio.create_task(attempt) for attempt in attempts]
    async with gateway.db.session() as session:
        await session.execute(locked_row.with_for_update())
        tasks = [asyncio.create_task(attempt) for attempt in attempts]

        async def all_waiting() -> bool:
            return await lock_waiters(gateway) >= len(tasks)

        await eventually(all_waiting)
    return tasks


async def waiting_to_insert(gateway: Gateway, table: Table) -> int:
    """How many sessions wait just now for their turn to add rows to ``table`` (PostgreSQL)."""
    async with gateway.db.session() as session:
        return await session.scalar(
            text("SELECT count(*) FROM pg_locks WHERE relation = CAST(:table AS regclass) AND NOT granted"),
            {"table": table.name},
        )


async def no_inserts_until_waiting(
    gateway: Gateway, table: Table, attempts: Iterable[Coroutine[Any, Any, T]]
) -> list[asyncio.Task[T]]:
    """Start ``attempts`` at once; on PostgreSQL none adds a row to ``table`` until all of them wait to.

    The table is held in ``SHARE`` mode (reads go on, inserts wait) until every attempt waits on
    it, so each has read what it checks before it writes (a "taken yet?" read that a concurrent
    attempt's insert would have answered). SQLite's writers queue at ``BEGIN IMMEDIATE``, so
    there the attempts simply run at once.
    """
    if gateway.db.dialect != "postgresql":
        return [asyncio.create_task(attempt) for attempt in attempts]
    async with gateway.db.session() as session:
        await session.execute(text(f"LOCK TABLE {table.name} IN SHARE MODE"))
        tasks = [asyncio.create_task(attempt) for attempt in attempts]

        async def all_waiting() -> bool:
            return await waiting_to_insert(gateway, table) >= len(tasks)

        await eventually(all_waiting)
    return tasks


async def committed_after_it_waits(gateway: Gateway, write: Executable, attempt: Coroutine[Any, Any, T]) -> T:
    """``attempt``, having read the rows ``write`` changes before the change and written after it.

    On PostgreSQL ``write`` runs first and stays uncommitted (its rows locked) until ``attempt``
    waits on them, so the attempt's own update meets rows that changed since it read them: what
    a concurrent sweeper or operator does between a read and a write. SQLite's writers queue at
    ``BEGIN IMMEDIATE``, so there the attempt runs after the write and reads the changed rows.
    """
    async with gateway.db.session() as session:
        await session.execute(write)
        task = asyncio.create_task(attempt)
        if gateway.db.dialect == "postgresql":

            async def waiting() -> bool:
                return await lock_waiters(gateway) >= 1

            await eventually(waiting)
    return await task


async def changed_while_it_waits(
    gateway: Gateway, locked_row: Select, change: Executable, attempt: Coroutine[Any, Any, T]
) -> T:
    """``attempt``, having read the rows of ``locked_row`` as they were and written after ``change``.

    On PostgreSQL the rows are only locked (``FOR UPDATE``), which neither a plain read nor an
    ``INSERT ... ON CONFLICT DO NOTHING`` waits for: the attempt reads them unchanged and goes
    on until its own update waits on them; only then is ``change`` made and committed, so that
    update meets rows changed since they were read (where ``committed_after_it_waits`` would
    hold the attempt back at its first statement that meets the changed row). SQLite's writers
    queue at ``BEGIN IMMEDIATE``, so there the attempt runs after the change.
    """
    async with gateway.db.session() as session:
        await session.execute(locked_row.with_for_update())
        task = asyncio.create_task(attempt)
        if gateway.db.dialect == "postgresql":

            async def waiting() -> bool:
                return await lock_waiters(gateway) >= 1

            await eventually(waiting)
        await session.execute(change)
    return await task
