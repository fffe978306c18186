"""The operator's views of the outbox find their notifications through an index, not by reading every row.

The indexes of ``notify_tasks`` hold only the notifications of their kind (pending, failed,
leased: migration ``0015_notify_partial_indexes``), and PostgreSQL's generic plan (what the
driver's prepared statement comes to) can use one only for a query that repeats its condition
with the same literal: for ``status = $1`` it reads the whole table, every notification ever
delivered. Each statement the console, ``/metrics`` and the resend of failed notifications run is
planned here as a generic plan, on a table of delivered notifications the statistics never saw.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import event

from openepay.admin import dashboard
from openepay.db import Database
from openepay.db.types import utcnow
from openepay.metrics import Metrics
from openepay.notify import outbox
from openepay.notify.status import notify_overview
from tests.support.plans import fill_orders
from tests.support.postgres import pg_url

DELIVERED = 20_000


def _literal(value: object) -> str:
    """A statement's parameter as SQL (``EXECUTE``'s arguments cannot be parameters themselves)."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return f"'{value.isoformat()}'"
    if isinstance(value, int):
        return str(value)
    return f"'{value}'"


async def _fill(db: Database) -> None:
    async with db.engine.begin() as conn:
        await fill_orders(conn, merchants=4, orders=DELIVERED, status="paid")
        await conn.exec_driver_sql(
            "INSERT INTO notify_tasks (order_id, merchant_pid, event, status, attempts, next_attempt_at,"
            " created_at, delivered_at) SELECT id, merchant_pid, 'paid', 'succeeded', 1, now(), now(), now()"
            " FROM orders"
        )


async def test_the_outbox_views_and_the_resend_of_failed_notifications_read_no_whole_table(pg_database: str):
    db = Database(pg_url(pg_database), pool_size=1)
    try:
        await _fill(db)
        statements: list[tuple[str, tuple]] = []

        def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
            if "notify_tasks" in statement:
                statements.append((statement, tuple(parameters)))

        for engine in db.engines:
            event.listen(engine, "before_cursor_execute", seen)
        await notify_overview(db)
        await Metrics().refresh(db)
        await dashboard.load(db, ZoneInfo("Asia/Shanghai"))
        await outbox.resend_failed(db, since=utcnow() - timedelta(hours=1))
        await outbox.resend_failed(db, since=utcnow() - timedelta(hours=1), merchant_pid=1001)
        for engine in db.engines:
            event.remove(engine, "before_cursor_execute", seen)

        assert len(statements) >= 8
        async with db.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.execute("SET plan_cache_mode = force_generic_plan")
            for statement, parameters in statements:
                # ``EXPLAIN`` of a statement with parameters plans it for their values; a prepared
                # statement's ``EXECUTE`` under ``force_generic_plan`` shows the plan made without them.
                await raw.execute(f"PREPARE viewed AS {statement}")
                arguments = ", ".join(map(_literal, parameters))
                execute = f"EXECUTE viewed({arguments})" if parameters else "EXECUTE viewed"
                plan = "\n".join(row[0] for row in await raw.fetch(f"EXPLAIN {execute}"))
                await raw.execute("DEALLOCATE viewed")
                assert "Seq Scan on notify_tasks" not in plan, (statement, plan)
    finally:
        await db.dispose()
