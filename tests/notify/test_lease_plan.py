"""PostgreSQL's lease reads the orders and merchants of its batch, whatever the statistics say.

The trap: the tables are analyzed while empty (every migration ends with ``ANALYZE``), the
orders arrive afterwards, and the planner, thinking the orders table holds next to nothing,
joins the leased notifications to every order of every merchant. The lease is run under
``EXPLAIN ANALYZE``, planned for its values as the gateway's connections plan it, and no
step of it that reads orders may handle more of them than the batch has notifications.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from openepay.db import Database
from openepay.db.types import utcnow
from openepay.notify import outbox
from tests.support.plans import executed_plan, fill_orders, most_rows
from tests.support.postgres import pg_url

MERCHANTS = 32
ORDERS = 4_000
BATCH = 32


async def _fill(db: Database, *, merchants: int = MERCHANTS, analyzed: bool = False) -> list[int]:
    """Merchants, paid orders round-robin over them, and one due notification per order: their ids.
    With ``analyzed``, the statistics are refreshed afterwards (as autovacuum does on a live database)."""
    async with db.engine.begin() as conn:
        await fill_orders(conn, merchants=merchants, orders=ORDERS, status="paid")
        result = await conn.exec_driver_sql(
            "INSERT INTO notify_tasks (order_id, merchant_pid, event, status, attempts, next_attempt_at, created_at)"
            " SELECT id, merchant_pid, 'paid', 'pending', 0, now(), now() FROM orders ORDER BY id RETURNING id"
        )
        ids = sorted(result.scalars())
        if analyzed:
            await conn.exec_driver_sql("ANALYZE")
        return ids


def _reads(table: str) -> Callable[[dict], bool]:
    """Whether a plan step reads ``table``, by itself or through one of its indexes."""
    return lambda step: step.get("Relation Name") == table or table in step.get("Index Name", "")


async def _lease_reads_only_its_batch(pg_database: str, *, merchants: int, analyzed: bool) -> None:
    """The lease of a batch from the middle of the notifications leases the whole batch, and no step
    of its plan reads more orders or merchants than the batch has notifications."""
    db = Database(pg_url(pg_database), pool_size=1)
    try:
        ids = await _fill(db, merchants=merchants, analyzed=analyzed)
        middle = len(ids) // 2
        params = {"chosen": ids[middle : middle + BATCH], "owner": "w", "until": utcnow() + timedelta(seconds=30)}
        plan = await executed_plan(db, outbox._LEASE_DELIVERIES, params)
        assert plan["Actual Rows"] == BATCH, json.dumps(plan, indent=1)
        assert most_rows(plan, _reads("orders")) <= BATCH, json.dumps(plan, indent=1)
        assert most_rows(plan, _reads("merchants")) <= BATCH, json.dumps(plan, indent=1)
    finally:
        await db.dispose()


async def test_a_lease_reads_its_batchs_orders_not_the_orders_table_on_tables_analyzed_empty(pg_database: str):
    await _lease_reads_only_its_batch(pg_database, merchants=MERCHANTS, analyzed=False)


@pytest.mark.parametrize("merchants", [4, MERCHANTS])
async def test_a_lease_reads_its_batchs_orders_not_the_orders_table_on_tables_analyzed_full(
    pg_database: str, merchants: int
):
    """Knowing the orders table is large and shared by a few merchants, a planner joining on primary
    keys alone (or reaching the orders through the batch's merchants) reads the whole orders table
    into a hash; naming the batch's orders by key (``= ANY(ARRAY(...))``) keeps the read to them."""
    await _lease_reads_only_its_batch(pg_database, merchants=merchants, analyzed=True)
