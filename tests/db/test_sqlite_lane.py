"""SQLite's one-statement transactions on the event loop's thread: never a wait there, never a lost order."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest_asyncio
from sqlalchemy import bindparam, event, func, select

from openepay.core.ids import trade_numbers
from openepay.core.orders import find_merchant_order, insert_order, order_values
from openepay.db import migrate
from openepay.db.engine import TURN_WAIT_ON_LOOP, Database
from openepay.db.models import Merchant, Order
from openepay.db.sqlite_writes import CHECKPOINT_EVERY
from openepay.db.types import utcnow
from tests.support.orders import new_order
from tests.support.sqlite_writers import holding_the_turn, orders_written_by
from tests.support.waiting import eventually

PID = 1001


@pytest_asyncio.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'lane.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    database = Database(url)
    async with database.session() as session:
        session.add(Merchant(pid=PID, name="Lane Shop", key_sealed="sealed", created_at=utcnow()))
    yield database
    await database.dispose()


def _values(out_trade_no: str) -> dict[str, object]:
    return order_values(new_order(PID, out_trade_no), trade_numbers.next(), utcnow(), timedelta(minutes=30))


def _statements_on(database: Database) -> dict[str, list[str]]:
    """The statements each of the database's engines sends from now on, by engine ("main", "lane", "reads")."""
    sent: dict[str, list[str]] = {"main": [], "lane": [], "reads": []}
    for name, engine in zip(sent, database.engines, strict=True):
        event.listen(engine, "before_cursor_execute", lambda *args, into=sent[name]: into.append(args[2]))
    return sent


def _hold_write_lock(database: Database) -> sqlite3.Connection:
    """Another writer (a CLI command, another gateway process) in the middle of a write transaction."""
    assert database.lane is not None
    holder = sqlite3.connect(database.lane.engine.url.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def test_an_order_is_written_and_read_back_on_the_lane_without_the_main_connection(db: Database):
    sent = _statements_on(db)
    stored = await insert_order(db, _values("LANE-1"))
    found = await find_merchant_order(db, PID, out_trade_no="LANE-1")

    assert stored is not None and found is not None and found.trade_no == stored.trade_no
    assert found.created_at == stored.created_at and found.attrs == {}
    assert sent["main"] == []
    assert [sql.split()[0] for sql in sent["lane"]] == ["INSERT", "SELECT"]


async def test_a_write_that_finds_the_lock_taken_waits_off_the_loop_and_is_stored_once(db: Database):
    holder = _hold_write_lock(db)
    assert db.lane is not None and db.lane.one(Order.__table__.delete(), None) is None

    write = asyncio.create_task(insert_order(db, _values("LOCKED-1")))
    ticks = 0
    while not write.done() and ticks < 20:
        # The loop keeps running other work while the write waits for the lock.
        await asyncio.sleep(0.01)
        ticks += 1
    holder.commit()
    holder.close()
    stored = await write

    assert ticks == 20 and stored is not None
    async with db.session() as session:
        assert await session.scalar(select(func.count()).where(Order.out_trade_no == "LOCKED-1")) == 1


async def test_reads_go_on_while_another_writer_holds_the_lock(db: Database):
    stored = await insert_order(db, _values("READ-1"))
    holder = _hold_write_lock(db)
    try:
        found = await find_merchant_order(db, PID, out_trade_no="READ-1")
    finally:
        holder.rollback()
        holder.close()

    assert stored is not None and found is not None and found.trade_no == stored.trade_no


async def test_a_refused_write_on_the_lane_leaves_nothing_behind(db: Database):
    values = _values("DUP-1")
    assert await insert_order(db, values) is not None
    # Same trade_no, another out_trade_no: the unique trade_no refuses it.
    again = {**values, "out_trade_no": "DUP-2"}
    try:
        await insert_order(db, again)
    except Exception as error:
        refused = type(error).__name__
    else:
        refused = None
    after = await insert_order(db, _values("DUP-3"))

    assert refused == "IntegrityError" and after is not None
    async with db.session() as session:
        numbers = (await session.scalars(select(Order.out_trade_no).order_by(Order.out_trade_no))).all()
    assert numbers == ["DUP-1", "DUP-3"]


async def test_a_write_waits_its_turn_behind_another_process_however_long_and_is_still_written_on_the_lane(
    db: Database, tmp_path: Path
):
    sent = _statements_on(db)
    async with holding_the_turn(tmp_path / "lane.db"):
        write = asyncio.create_task(insert_order(db, _values("TURN-1")))
        ticks = 0
        while not write.done() and ticks < 20:
            # Longer than all the lane's tries: the write neither gives up nor takes another way.
            await asyncio.sleep(0.01)
            ticks += 1
    stored = await write

    assert ticks == 20 and stored is not None and stored.out_trade_no == "TURN-1"
    assert sent["main"] == []
    assert [sql.split()[0] for sql in sent["lane"]] == ["INSERT"]


async def test_a_write_that_finds_the_turn_taken_waits_for_it_on_the_loop_only_briefly(db: Database, tmp_path: Path):
    # Blocked in flock, the kernel hands the turn over the moment it is free; past the bound (a turn
    # held through a checkpoint or a time slice) the write waits off the loop, which goes on.
    assert db.lane is not None
    turn = db.lane.turn
    waits: list[tuple[float, bool]] = []
    take_within = turn.take_within

    def counted_take_within(timeout: float) -> bool:
        waits.append((timeout, take_within(timeout)))
        return waits[-1][1]

    turn.take_within = counted_take_within  # type: ignore[method-assign]
    async with holding_the_turn(tmp_path / "lane.db"):
        write = asyncio.create_task(insert_order(db, _values("TURN-2")))
        await asyncio.sleep(0.1)
        waited_while_held = list(waits)
        written_while_held = write.done()
    stored = await write

    assert waited_while_held == [(TURN_WAIT_ON_LOOP, False)] and not written_while_held
    assert stored is not None and stored.out_trade_no == "TURN-2"


async def test_processes_creating_orders_at_once_store_every_one_each_on_its_lane(db: Database, tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'lane.db'}"
    first, second = await asyncio.gather(
        orders_written_by(url, PID, "P1-", 150, 8), orders_written_by(url, PID, "P2-", 150, 8)
    )

    assert first == {"stored": 150, "main_engine": []} and second == {"stored": 150, "main_engine": []}
    async with db.session() as session:
        numbers = set((await session.scalars(select(Order.out_trade_no))).all())
    assert numbers == {f"P{p}-{n}" for p in (1, 2) for n in range(150)}


async def test_the_write_turns_lock_file_is_private(db: Database, tmp_path: Path):
    previous = os.umask(0o022)
    try:
        assert await insert_order(db, _values("PRIVATE-1")) is not None
    finally:
        os.umask(previous)

    assert stat.S_IMODE((tmp_path / "lane.db-lock").stat().st_mode) == 0o600


async def test_orders_written_on_the_lane_are_copied_into_the_database_file_by_its_checkpoints(
    db: Database, tmp_path: Path
):
    """The lane's connection leaves the WAL to a thread's checkpoints: they must still come."""
    for n in range(CHECKPOINT_EVERY):
        assert await insert_order(db, _values(f"CKPT-{n}")) is not None

    def orders_in_the_file_itself() -> int:
        # ``immutable``: the database file alone, without what is still only in the WAL.
        conn = sqlite3.connect(f"file:{tmp_path / 'lane.db'}?immutable=1", uri=True)
        try:
            return conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        finally:
            conn.close()

    assert await eventually(lambda: orders_in_the_file_itself() == CHECKPOINT_EVERY)


async def test_a_row_read_in_column_order_holds_what_the_read_by_name_holds(db: Database):
    await insert_order(db, _values("LANE-ROW"))
    sent = _statements_on(db)
    by_number = select(Order.trade_no, Order.created_at, Order.paid_at, Order.attrs).where(
        Order.out_trade_no == bindparam("out_trade_no")
    )

    row = await db.row(by_number, {"out_trade_no": "LANE-ROW"})
    named = await db.one(by_number, {"out_trade_no": "LANE-ROW"})

    assert named is not None and row == tuple(named.values())
    assert row[1].tzinfo is not None and row[2] is None and row[3] == {}
    assert await db.row(by_number, {"out_trade_no": "NO-SUCH-ORDER"}) is None
    assert sent["main"] == [] and len(sent["lane"]) == 3
