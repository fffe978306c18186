"""Tables filled behind the planner's back, and the plans PostgreSQL makes for them.

Every migration ends with ``ANALYZE``, so a test database's statistics say its tables are empty;
these fill them afterwards in bulk, refreshing nothing, which is the trap the plan tests set: a
statement must still read only what it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.ext.asyncio import AsyncConnection

from openepay.db import Database


async def fill_orders(
    conn: AsyncConnection, *, merchants: int, orders: int, status: str, created_at: str = "now()"
) -> None:
    """Merchants 1000, 1001, ... and ``orders`` orders ``T1``/``O1``, ``T2``/``O2``, ... round-robin
    over them (order ``g`` is merchant ``1000 + g % merchants``'s); ``created_at`` is SQL over ``g``."""
    await conn.exec_driver_sql(
        "INSERT INTO merchants (pid, name, key_sealed, status, refund_enabled, balance_fen, settle_type,"
        " settle_account, settle_name, created_at, rsa_only, mapi_answer)"
        " SELECT g, 'shop', 'sealed', 'active', false, 0, 1, '', '', now(), false, 'channel'"
        f" FROM generate_series(1000, {1000 + merchants - 1}) g"
    )
    await conn.exec_driver_sql(
        "INSERT INTO orders (trade_no, merchant_pid, dialect, out_trade_no, amount_fen, pay_amount_fen, money,"
        " name, notify_url, attrs, status, paid_late, qrcode_any_amount, refunded_fen, created_at, expires_at)"
        f" SELECT 'T' || g, 1000 + g % {merchants}, 'epay', 'O' || g, 100, 100, '1.00', 'n',"
        f" 'http://shop.example/n', '{{}}', '{status}', false, false, 0, {created_at}, now()"
        f" FROM generate_series(1, {orders}) g"
    )


async def executed_plan(db: Database, statement: Executable, params: Mapping[str, Any]) -> dict:
    """``EXPLAIN ANALYZE`` of ``statement`` as the driver sends it, on one of the engine's connections,
    in a transaction rolled back afterwards: the plan's top step, as JSON. ``EXPLAIN`` plans it for
    the values given, as those connections plan every statement (``plan_cache_mode =
    force_custom_plan``, ``engine.postgresql_connect_args``); a generic plan shows only under
    ``PREPARE`` and ``EXPLAIN EXECUTE``."""
    assert db.direct is not None
    compiled = db.direct.compiled(statement, params)
    assert compiled is not None
    async with db.engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        transaction = raw.transaction()
        await transaction.start()
        try:
            # The engine's connection reads json as Python objects.
            [[explained]] = await raw.fetch(f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled.sql}", *compiled.args(params))
        finally:
            await transaction.rollback()
    return explained[0]["Plan"]


def most_rows(plan: dict, counted: Callable[[dict], bool] = lambda step: True) -> int:
    """The most rows any ``counted`` step of the plan handled, over all its loops."""
    rows = plan["Actual Rows"] * plan["Actual Loops"] if counted(plan) else 0
    return max([rows, *(most_rows(child, counted) for child in plan.get("Plans", []))])
