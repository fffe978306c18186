"""Fill a migrated gateway database with closed orders of one merchant, fast, then settle it for a benchmark.

    python bench/load_orders.py --database-url URL --pid 1000 [--orders 1000000]

PostgreSQL gets the rows through ``COPY`` (asyncpg's ``copy_records_to_table``), SQLite through
``executemany`` in one transaction. The orders are closed unpaid, so no sweep or worker has
anything to do with them, and numbered ``LOAD0000000001``... so they never meet a benchmark's
own numbers. Prints one JSON line: how many rows and how long it took.

Then the table is left as a long-running gateway's would be, so that the benchmark that follows
measures requests and not the aftermath of the load. On PostgreSQL ``VACUUM (FREEZE, ANALYZE)``:
without it the first statements to read each fresh row write its hint bits, autovacuum starts
on the million new rows in the middle of the run, and no index-only scan is possible until the
visibility map is set. On SQLite ``ANALYZE`` and a ``TRUNCATE`` checkpoint: the load goes into
the WAL (hundreds of megabytes for a million rows); SQLite copies it back into the database file
when its last connection closes, but not while a gateway has the file open, and then the
benchmark's first checkpoints would do it while the clients wait.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from openepay.db.migrate import analyze
from openepay.db.urls import sqlite_file

COLUMNS = (
    "trade_no",
    "merchant_pid",
    "dialect",
    "out_trade_no",
    "pay_type",
    "amount_fen",
    "pay_amount_fen",
    "money",
    "name",
    "notify_url",
    "attrs",
    "status",
    "paid_late",
    "qrcode_any_amount",
    "refunded_fen",
    "created_at",
    "expires_at",
    "closed_at",
)


def rows(pid: int, count: int, *, sqlite: bool) -> Iterator[tuple[object, ...]]:
    """``count`` closed orders of merchant ``pid``, one a second going back from a day ago."""
    start = datetime.now(UTC) - timedelta(days=1)
    for n in range(count):
        created = start - timedelta(seconds=n)
        expires = created + timedelta(minutes=5)
        times: tuple[object, ...] = (created, expires, expires)
        if sqlite:
            times = tuple(t.replace(tzinfo=None).isoformat(" ") for t in (created, expires, expires))
        yield (
            f"L{n:019d}",
            pid,
            "epay",
            f"LOAD{n:010d}",
            "alipay",
            100 + n % 10_000,
            100 + n % 10_000,
            f"{(100 + n % 10_000) / 100:.2f}",
            "loaded order",
            "http://127.0.0.1:9/notify",
            "{}",
            "closed",
            False,
            False,
            0,
            *times,
        )


def _asyncpg_dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def load_postgresql(database_url: str, pid: int, count: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        await conn.copy_records_to_table("orders", records=rows(pid, count, sqlite=False), columns=COLUMNS)
    finally:
        await conn.close()


async def settle_postgresql(database_url: str) -> None:
    """Freeze the loaded rows and take the orders' statistics (``VACUUM`` runs outside any transaction)."""
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(database_url))
    try:
        await conn.execute("VACUUM (FREEZE, ANALYZE) orders")
    finally:
        await conn.close()


def checkpoint_sqlite(database_url: str) -> bool:
    """Copy the WAL back into the database file and empty it; False when a reader kept it from finishing."""
    path = sqlite_file(database_url)
    assert path is not None
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not busy
    finally:
        conn.close()


def load_sqlite(database_url: str, pid: int, count: int, batch: int = 50_000) -> None:
    path = sqlite_file(database_url)
    assert path is not None, "an in-memory SQLite database cannot be loaded from another process"
    conn = sqlite3.connect(path)
    try:
        statement = f"INSERT INTO orders ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        generated = rows(pid, count, sqlite=True)
        with conn:
            while chunk := [row for _, row in zip(range(batch), generated, strict=False)]:
                conn.executemany(statement, chunk)
    finally:
        conn.close()


async def load(database_url: str, pid: int, count: int) -> dict[str, object]:
    began = time.perf_counter()
    if database_url.startswith("sqlite"):
        await asyncio.to_thread(load_sqlite, database_url, pid, count)
    else:
        await load_postgresql(database_url, pid, count)
    loaded = time.perf_counter()
    settled: dict[str, object] = {}
    if database_url.startswith("sqlite"):
        await analyze(database_url)
        settled["checkpointed"] = await asyncio.to_thread(checkpoint_sqlite, database_url)
    else:
        await settle_postgresql(database_url)
    return {
        "orders": count,
        "load_s": round(loaded - began, 1),
        "settle_s": round(time.perf_counter() - loaded, 1),
        **settled,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--pid", type=int, required=True, help="an existing merchant's pid")
    parser.add_argument("--orders", type=int, default=1_000_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(load(args.database_url, args.pid, args.orders))), flush=True)


if __name__ == "__main__":
    main()
