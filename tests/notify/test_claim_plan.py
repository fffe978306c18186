"""PostgreSQL's claim reads a short run of rows per merchant, whatever the backlog and the statistics say.

The trap: the tables are analyzed while empty (every migration ends with ``ANALYZE``), a backlog
arrives afterwards, and the planner, thinking a merchant has one due notification at most,
reads and sorts all of them, or walks the whole table to count the leases. The claim's statement
is run under ``EXPLAIN ANALYZE``, planned for its values as the gateway's connections plan it,
and no step of it may handle more rows than the merchants' free slots (index entries: two
per row leased before).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from openepay.db import Database
from openepay.db.types import utcnow
from openepay.notify import outbox
from tests.support.plans import executed_plan, fill_orders, most_rows
from tests.support.postgres import pg_url

MERCHANTS = 4
CAP = 3
BACKLOG = 1_000  # per merchant


async def _fill(db: Database, due: datetime) -> None:
    async with db.engine.begin() as conn:
        await fill_orders(conn, merchants=MERCHANTS, orders=MERCHANTS * BACKLOG, status="paid")
        await conn.exec_driver_sql(
            "INSERT INTO notify_tasks (order_id, merchant_pid, event, status, attempts, next_attempt_at, created_at)"
            " SELECT id, merchant_pid, 'paid', 'pending', 0, $1, now() FROM orders",
            (due,),
        )


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
        params = {"now": now + timedelta(seconds=1), "threshold": 3, "cap": CAP, "limit": 8}
        plan = await executed_plan(db, outbox._CHOOSE, params)
        # An index hands over one entry per version of a row, and a row leased before has two.
        assert most_rows(plan) <= 2 * MERCHANTS * CAP, json.dumps(plan, indent=1)
    finally:
        await db.dispose()
