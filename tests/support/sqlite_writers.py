"""Other processes writing the same SQLite file: a gateway process in the middle of a lane write,
and gateway processes creating orders as fast as they can.

Run as ``python -m tests.support.sqlite_writers hold PATH`` or ``... write URL PID PREFIX COUNT
CONCURRENCY``; the tests use ``holding_the_turn`` and ``orders_written_by``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event

from openepay.core.ids import trade_numbers
from openepay.core.orders import insert_order, order_values
from openepay.db.engine import Database
from openepay.db.sqlite_writes import WriteTurn
from openepay.db.types import utcnow
from tests.support.orders import new_order

ROOT = Path(__file__).resolve().parents[2]
HOLDING = "holding"


def _hold(path: Path) -> None:
    """Take the write turn and SQLite's write lock, as a lane write does, until a line comes on stdin."""
    turn = WriteTurn(path)
    turn.take_waiting()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print(HOLDING, flush=True)
    sys.stdin.readline()
    conn.commit()
    conn.close()
    turn.give_back()
    turn.close()


async def _write(url: str, pid: int, prefix: str, count: int, concurrency: int) -> dict[str, object]:
    """``count`` new orders by ``concurrency`` tasks; what was stored and what the main engine was sent."""
    db = Database(url)
    main: list[str] = []
    event.listen(db.engines[0], "before_cursor_execute", lambda *args: main.append(args[2]))
    numbers = iter(range(count))
    stored = 0

    async def creator() -> None:
        nonlocal stored
        for n in numbers:
            values = order_values(new_order(pid, f"{prefix}{n}"), trade_numbers.next(), utcnow(), timedelta(minutes=30))
            order = await insert_order(db, values)
            stored += order is not None

    try:
        await asyncio.gather(*(creator() for _ in range(concurrency)))
    finally:
        await db.dispose()
    return {"stored": stored, "main_engine": main}


@asynccontextmanager
async def holding_the_turn(path: Path) -> AsyncIterator[None]:
    """Another gateway process in the middle of a write on its lane while the block runs."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.sqlite_writers",
        "hold",
        str(path),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        assert (await process.stdout.readline()).decode().strip() == HOLDING
        yield
    finally:
        process.stdin.write(b"done\n")
        await process.stdin.drain()
        assert await process.wait() == 0


async def orders_written_by(url: str, pid: int, prefix: str, count: int, concurrency: int) -> dict[str, object]:
    """One more process creating ``count`` orders of ``pid`` (numbers ``prefix`` + n) on ``url``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.sqlite_writers",
        "write",
        url,
        str(pid),
        prefix,
        str(count),
        str(concurrency),
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0
    return json.loads(output)


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        _hold(Path(sys.argv[2]))
    else:
        url, pid, prefix, count, concurrency = sys.argv[2:]
        print(json.dumps(asyncio.run(_write(url, int(pid), prefix, int(count), int(concurrency)))))
