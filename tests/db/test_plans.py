"""PostgreSQL plans the merchant's order lookup for its own numbers, whatever the statistics say.

The trap: the table is analyzed while empty (every migration ends with ``ANALYZE``), a million
orders arrive afterwards, and a statement the driver keeps prepared switches to a generic plan
made for "an empty table": a sequential scan, or the ``(merchant_pid, created_at)`` index.
"""

from __future__ import annotations

from sqlalchemy import Integer, String, column, func, insert, literal, select, text

from openepay.core.orders import find_merchant_order, find_merchant_order_summary
from openepay.db import Database
from openepay.db.direct import PLANNED_ONCE
from openepay.db.models import CacheVersion
from tests.support.plans import fill_orders
from tests.support.postgres import pg_url

ORDERS = 100_000
RIGHT_INDEX = "uq_orders_merchant_pid_out_trade_no"
LOOKUP = "SELECT id FROM orders WHERE merchant_pid = $1 AND out_trade_no = $2"
PREPARED_LOOKUPS = text(
    "SELECT count(*) AS lookups, coalesce(sum(generic_plans), 0) AS generic_plans"
    " FROM pg_prepared_statements WHERE statement LIKE :pattern"
).columns(column("lookups", Integer), column("generic_plans", Integer))


async def _fill(db: Database) -> None:
    async with db.engine.begin() as conn:
        await fill_orders(
            conn, merchants=4, orders=ORDERS, status="created", created_at="now() - g * interval '1 second'"
        )


async def test_the_lookup_by_out_trade_no_keeps_its_index_after_the_table_fills_unanalyzed(pg_database: str):
    db = Database(pg_url(pg_database), pool_size=1)
    try:
        await _fill(db)
        for n in range(1, 12):
            order = await find_merchant_order(db, 1000 + n % 4, out_trade_no=f"O{n}")
            assert order is not None and order.trade_no == f"T{n}"
            summary = await find_merchant_order_summary(db, 1000 + n % 4, out_trade_no=f"O{n}")
            assert summary is not None and summary.trade_no == f"T{n}"
        # Asked the same way, one at a time, so on the connection that ran the lookups (lone
        # statements go to ``DirectStatements``' own connections, the last one used first).
        prepared = await db.one(PREPARED_LOOKUPS, {"pattern": "%FROM orders%out_trade_no = $%"})
        assert prepared is not None and prepared["lookups"] >= 2 and prepared["generic_plans"] == 0
        async with db.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.execute(f"PREPARE lookup (integer, text) AS {LOOKUP}")
            for n in range(8):
                await raw.execute(f"EXECUTE lookup (1000, 'O{n}')")
            plan = "\n".join(row[0] for row in await raw.fetch("EXPLAIN EXECUTE lookup (1000, 'O4')"))
            assert RIGHT_INDEX in plan, plan
            await raw.execute("DEALLOCATE lookup")
    finally:
        await db.dispose()


SETTINGS = (func.current_setting("plan_cache_mode", type_=String), func.current_setting("enable_seqscan", type_=String))
# The statement PostgreSQL runs to check an order's merchant (its foreign key), as its RI trigger words it.
MERCHANT_CHECK = 'SELECT 1 FROM ONLY "public"."merchants" x WHERE "pid" OPERATOR(pg_catalog.=) $1 FOR KEY SHARE OF x'


async def test_an_insert_keeps_one_plan_and_every_read_is_planned_for_its_own_numbers(pg_database: str):
    db = Database(pg_url(pg_database), pool_size=4)
    try:
        written = await db.one(insert(CacheVersion).values(name="planned", token=1).returning(*SETTINGS))
        copied = await db.one(
            insert(CacheVersion)
            .from_select(
                ["name", "token"], select(literal("copied"), CacheVersion.token).where(CacheVersion.name == "planned")
            )
            .returning(*SETTINGS)
        )
        read = await db.one(select(*SETTINGS))
    finally:
        await db.dispose()

    assert written is not None and tuple(written.values()) == ("force_generic_plan", "off")
    # An insert that reads rows to write them has a plan to choose, as a read has.
    assert copied is not None and tuple(copied.values()) == ("force_custom_plan", "on")
    assert read is not None and tuple(read.values()) == ("force_custom_plan", "on")


async def test_a_kept_plan_checks_an_orders_merchant_by_primary_key_even_made_when_merchants_was_one_page(
    pg_database: str,
):
    db = Database(pg_url(pg_database), pool_size=1)
    try:
        async with db.engine.begin() as conn:
            await fill_orders(conn, merchants=1, orders=0, status="created")
        plans = {}
        for name, settings in (("kept", PLANNED_ONCE), ("default", {"plan_cache_mode": "force_generic_plan"})):
            async with db.engine.connect() as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                for setting, value in settings.items():
                    await raw.execute(f"SET {setting} = {value}")
                await raw.execute(f"PREPARE merchant_check (integer) AS {MERCHANT_CHECK}")
                plans[name] = "\n".join(row[0] for row in await raw.fetch("EXPLAIN EXECUTE merchant_check (1000)"))
                await raw.execute("DEALLOCATE merchant_check")
                await raw.execute("RESET ALL")
    finally:
        await db.dispose()

    assert "Index Scan using pk_merchants" in plans["kept"], plans["kept"]
    # What a plan kept with sequential scans allowed would do for as long as it is kept, merchants added or not.
    assert "Seq Scan on merchants" in plans["default"], plans["default"]
