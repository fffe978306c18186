"""The orders' partial indexes serve the queries they were made for, on a table that holds many orders.

The sweeper and the reconciliation look for the few unpaid orders among all of them, the
dashboard for one day's payments: each must reach them through its index, not by reading the
table, and the planner only uses a partial index when it can prove the query's rows are in it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest_asyncio
from alembic import command
from sqlalchemy import event, func, insert, inspect, select

from openepay.admin import dashboard
from openepay.core.ids import trade_numbers
from openepay.core.orders import close_expired, order_values
from openepay.core.reconciliation import reconcile
from openepay.core.states import OrderStatus
from openepay.db import Database, migrate
from openepay.db.models import Order
from openepay.db.types import utcnow
from openepay.db.urls import sqlite_file
from openepay.gateway import Gateway
from tests.support.orders import new_order
from tests.support.postgres import PG_DSN
from tests.support.settings import make_settings

ORDERS = 10_000
# One order in this many is still unpaid; of the others every second one was paid.
UNPAID_EVERY = 1_000
UNPAID_INDEX = "ix_orders_unpaid_expires_at"
PAID_AT_INDEX = "ix_orders_paid_at"


def _order(pid: int, n: int) -> dict[str, object]:
    """Order ``n``, made ``n`` minutes ago with five minutes to pay: paid, closed, or still paying."""
    made = utcnow() - timedelta(minutes=n)
    values = order_values(new_order(pid, f"CROWD-{n}"), trade_numbers.next(), made, timedelta(minutes=5))
    if n % UNPAID_EVERY == 0:
        values.update(status=OrderStatus.PAYING, channel="sandbox")
    elif n % 2 == 0:
        values.update(status=OrderStatus.PAID, paid_fen=values["amount_fen"], paid_at=made + timedelta(minutes=1))
    else:
        values.update(status=OrderStatus.CLOSED, closed_at=made + timedelta(minutes=5))
    return values


@pytest_asyncio.fixture
async def crowded(empty_database_url: str) -> AsyncIterator[Gateway]:
    """A gateway on a database of its own holding ``ORDERS`` orders, analyzed as after a bulk load."""
    await asyncio.to_thread(migrate.upgrade, empty_database_url)
    gateway = await Gateway.open(make_settings(empty_database_url))
    try:
        merchant = await gateway.merchants.create("Crowded Shop")
        async with gateway.db.session() as session:
            await session.execute(insert(Order), [_order(merchant.pid, n) for n in range(1, ORDERS + 1)])
        await migrate.analyze(empty_database_url)
        yield gateway
    finally:
        await gateway.aclose()


def _sent_by(db: Database) -> list[tuple[str, tuple[object, ...]]]:
    """Every statement the database's engines send from now on, with its parameters as the driver got them."""
    sent: list[tuple[str, tuple[object, ...]]] = []
    for engine in db.engines:
        event.listen(engine, "before_cursor_execute", lambda _c, _k, sql, params, *_: sent.append((sql, params)))
    return sent


async def _plan(db: Database, sql: str, params: tuple[object, ...]) -> str:
    """The plan the database makes for the statement with these parameters (it is not run)."""
    if db.dialect == "sqlite":
        path = sqlite_file(db.url)
        assert path is not None
        with sqlite3.connect(path) as conn:
            return "\n".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    conn = await asyncpg.connect(f"{PG_DSN.rsplit('/', 1)[0]}/{db.engine.url.database}")
    try:
        return "\n".join(row[0] for row in await conn.fetch(f"EXPLAIN {sql}", *params))
    finally:
        await conn.close()


async def test_the_sweeper_closes_the_expired_unpaid_orders_found_through_their_own_index(crowded: Gateway):
    sent = _sent_by(crowded.db)

    closed = await close_expired(crowded.db)

    assert len(closed) == ORDERS // UNPAID_EVERY
    assert all(order.status == OrderStatus.CLOSED for order in closed)
    (sql, params), *_ = [(sql, params) for sql, params in sent if sql.startswith("UPDATE orders")]
    assert UNPAID_INDEX in await _plan(crowded.db, sql, params)


async def test_the_reconciliation_finds_the_paying_orders_through_the_unpaid_index(crowded: Gateway):
    sent = _sent_by(crowded.db)

    # A channel no order is on: the reconciliation looks, and has nobody to ask.
    await reconcile(crowded.db, crowded, ["alipay"], crowded.settings, utcnow())

    (sql, params), *_ = [(sql, params) for sql, params in sent if "FROM orders" in sql]
    assert UNPAID_INDEX in await _plan(crowded.db, sql, params)


async def test_the_dashboard_sums_each_day_of_payments_through_the_paid_at_index(crowded: Gateway):
    sent = _sent_by(crowded.db)

    board = await dashboard.load(crowded.db, ZoneInfo("Asia/Shanghai"))

    assert sum(day.paid_count for day in board.days) > 0
    daily = [(sql, params) for sql, params in sent if "paid_at >=" in sql]
    assert daily
    for sql, params in daily:
        assert PAID_AT_INDEX in await _plan(crowded.db, sql, params)


async def test_the_lean_indexes_go_back_to_the_full_ones_and_forth_keeping_every_order(crowded: Gateway):
    config = migrate.alembic_config(crowded.db.url)

    await asyncio.to_thread(command.downgrade, config, "0012_merchant_portal")
    before = await _order_indexes(crowded.db)
    await asyncio.to_thread(migrate.upgrade, crowded.db.url)
    after = await _order_indexes(crowded.db)

    assert {"ix_orders_status_expires_at", PAID_AT_INDEX} <= before and UNPAID_INDEX not in before
    assert {UNPAID_INDEX, PAID_AT_INDEX} <= after and "ix_orders_status_expires_at" not in after
    async with crowded.db.reading() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == ORDERS


async def _order_indexes(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        indexes = await conn.run_sync(lambda sync: inspect(sync).get_indexes("orders"))
    return {index["name"] for index in indexes}
