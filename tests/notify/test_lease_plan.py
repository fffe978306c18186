"""PostgreSQL's lease reads the orders and merchants of its batch, whatever the statistics say.

The trap: the tables are analyzed while empty (every migration ends with ``ANALYZE``), the
orders arrive afterwards, and the planner, thinking the orders table holds next to nothing,
joins the leased notifications to every order of every merchant. The lease is run under
``EXPLAIN ANALYZE`` in a generic plan (what the driver's prepared statement comes to), and no
step of it that reads orders may handle more of them than the batch has notifications.
"""

from __future__ import annotations

import json
from datetime import timedelta

from openepay.db import Database
from openepay.db.types import utcnow
from openepay.notify import outbox
from tests.support.postgres import pg_url

MERCHANTS = 32
ORDERS = 4_000
BATCH = 32


async def _fill(db: Database) -> list[int]:
    """Merchants, paid orders round-robin over them, and one due notification per order: their ids."""
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO merchants (pid, name, key_sealed, status, refund_enabled, balance_fen, settle_type,"
            " settle_account, settle_name, created_at, rsa_only, mapi_answer)"
            " SELECT g, 'shop', 'sealed', 'active', false, 0, 1, '', '', now(), false, 'channel'"
            f" FROM generate_series(1000, {1000 + MERCHANTS - 1}) g"
        )
        await conn.exec_driver_sql(
            "INSERT INTO orders (trade_no, merchant_pid, dialect, out_trade_no, amount_fen, pay_amount_fen, money,"
            " name, notify_url, attrs, status, paid_late, qrcode_any_amount, refunded_fen, created_at, expires_at)"
            f" SELECT 'T' || g, 1000 + g % {MERCHANTS}, 'epay', 'O' || g, 100, 100, '1.00', 'n',"
            " 'http://shop.example/n', '{}', 'paid', false, false, 0, now(), now()"
            f" FROM generate_series(1, {ORDERS}) g"
        )
        result = await conn.exec_driver_sql(
            "INSERT INTO notify_tasks (order_id, merchant_pid, event, status, attempts, next_attempt_at, created_at)"
            " SELECT id, merchant_pid, 'paid', 'pending', 0, now(), now() FROM orders ORDER BY id RETURNING id"
        )
        return sorted(result.scalars())


def _most_orders(plan: dict) -> int:
    """The most rows any step of the plan that reads ``orders`` (or one of its indexes) handled, over all its loops."""
    reads_orders = plan.get("Relation Name") == "orders" or "orders" in plan.get("Index Name", "")
    rows = plan["Actual Rows"] * plan["Actual Loops"] if reads_orders else 0
    return max([rows, *(_most_orders(child) for child in plan.get("Plans", []))])


async def test_a_lease_reads_its_batchs_orders_not_the_orders_table_on_tables_analyzed_empty(pg_database: str):
    db = Database(pg_url(pg_database), pool_size=1)
    try:
        ids = await _fill(db)
        middle = len(ids) // 2
        params = {"chosen": ids[middle : middle + BATCH], "owner": "w", "until": utcnow() + timedelta(seconds=30)}
        assert db.direct is not None
        compiled = db.direct.compiled(outbox._LEASE_DELIVERIES, params)
        assert compiled is not None
        async with db.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.execute("SET plan_cache_mode = force_generic_plan")
            transaction = raw.transaction()
            await transaction.start()
            try:
                # The engine's connection reads json as Python objects.
                [[explained]] = await raw.fetch(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled.sql}", *compiled.args(params)
                )
            finally:
                await transaction.rollback()
        plan = explained[0]["Plan"]
        assert plan["Actual Rows"] == BATCH, json.dumps(plan, indent=1)
        assert _most_orders(plan) <= BATCH, json.dumps(plan, indent=1)
    finally:
        await db.dispose()
