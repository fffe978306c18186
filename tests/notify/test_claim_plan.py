"""PostgreSQL's claim reads a short run of rows per merchant, whatever the backlog and the statistics say.

The trap: the tables are analyzed while empty (every migration ends with ``ANALYZE``), a backlog
arrives afterwards, and the planner, thinking a merchant has one due notification at most,
reads and sorts all of them, or walks the whole table to count the leases. The claim's statement
is run under ``EXPLAIN ANALYZE`` in a generic plan (what the driver's prepared statement comes
to) and no step of it may handle more rows than the merchants' free slots (index entries: two
per row leased before).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from openepay.db import Database
from openepay.db.types import utcnow
from openepay.notify import outbox
from tests.support.postgres import pg_url

MERCHANTS = 4
CAP = 3
BACKLOG = 1_000  # per merchant


async def _fill(db: Database, due: datetime) -> None:
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
            f" FROM generate_series(1, {MERCHANTS * BACKLOG}) g"
        )
        await conn.exec_driver_sql(
            "INSERT INTO notify_tasks (order_id, merchant_pid, event, status, attempts, next_attempt_at, created_at)"
            " SELECT id, merchant_pid, 'paid', 'pending', 0, $1, now() FROM orders",
            (due,),
        )


def _most_rows(plan: dict) -> int:
    """The most rows any step of the plan handled (over all its loops)."""
    rows = plan["Actual Rows"] * plan["Actual Loops"]
    return max([rows, *(_most_rows(child) for child in plan.get("Plans", []))])


async def test_a_claim_reads_no_more_rows_than_the_merchants_free_slots_on_tables_analyzed_empty(pg_database: str):
    db = Database(pg_url(pg_database), pool_size=1)
    try:
        now = utcnow()
        await _fill(db, now - timedelta(seconds=1))
        # Earlier claims whose leases have run out: the rows they took are due again.
        for _ in range(3):
            await outbox.claim(
                db, "w", limit=8, lease=timedelta(seconds=1), merchant_cap=CAP, breaker_threshold=3, now=now
            )
        assert db.direct is not None
        params = {"now": now + timedelta(seconds=1), "threshold": 3, "cap": CAP, "limit": 8}
        compiled = db.direct.compiled(outbox._CHOOSE, params)
        assert compiled is not None
        async with db.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.execute("SET plan_cache_mode = force_generic_plan")
            async with raw.transaction():
                # The engine's connection reads json as Python objects.
                [[explained]] = await raw.fetch(
                    f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled.sql}", *compiled.args(params)
                )
        plan = explained[0]["Plan"]
        # An index hands over one entry per version of a row, and a row leased before has two.
        assert _most_rows(plan) <= 2 * MERCHANTS * CAP, json.dumps(plan, indent=1)
    finally:
        await db.dispose()
