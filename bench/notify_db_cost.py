"""What the outbox costs per notification, without the HTTP: the worker's CPU and the database's.

    python bench/notify_db_cost.py [--notifications 3000] [--batch 32] [--backends pg,sqlite] [--analyze]

``notify_load.py`` measures delivery end to end, where the HTTP exchange, the sink and the event
loop take most of a worker's time and the rate is whatever share of a crowded machine the
workers get. This one runs, in its own process, only what a worker does with the database for
each batch: ``claim_deliveries`` (lease the due notifications, read their orders and keys) and
``record_attempts`` for the batch all delivered, one batch after the other, on a fresh database
(a temporary SQLite file, or a PostgreSQL database created and dropped on 127.0.0.1:5432)
filled like ``notify_load.py``'s. CPU per notification is the number to compare between two
checkouts: run each checkout's own Python on this script (the script uses only what both
have), in alternation, and give the load average, which shows in every number.

Prints one JSON line per backend: the process's CPU per notification (``worker_cpu_ms``), on
PostgreSQL the CPU of the database's backends over the same time (``db_cpu_ms``, read from
``/proc``, so PostgreSQL must run on this machine), the statements the engine's listeners saw
per notification, the wall time, and the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

from gateway_env import sandbox_env
from notify_load import BACKENDS, pg_backend_cpu, prepare
from throwaway_db import fresh_database


async def measure(backend: str, args: argparse.Namespace) -> dict[str, object]:
    from sqlalchemy import event, update

    from openepay.config import Settings
    from openepay.db.models import NotifyTask
    from openepay.gateway import Gateway
    from openepay.notify.breaker import BreakerPolicy
    from openepay.notify.outbox import AttemptRecord, Outcome, claim_deliveries, record_attempts

    result: dict[str, object] = {"backend": backend, "notifications": args.notifications, "batch": args.batch}
    warmup = args.batch * 4
    secret_key = secrets.token_urlsafe(32)
    async with AsyncExitStack() as stack:
        database_url = await fresh_database(stack, backend)
        env = sandbox_env(database_url, OPENEPAY_SECRET_KEY=secret_key)
        subprocess.run(
            [sys.executable, "-m", "openepay", "migrate"], env=env, check=True, capture_output=True, timeout=120
        )
        gateway = await Gateway.open(Settings(database_url=database_url, secret_key=secret_key))
        stack.push_async_callback(gateway.aclose)
        await prepare(gateway, args.notifications + warmup, args.merchants, "http://127.0.0.1:9/notify")
        async with gateway.db.session() as session:
            await session.execute(update(NotifyTask).values(next_attempt_at=datetime.now(UTC)))
        if args.analyze:
            async with gateway.db.engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")

        settings = gateway.settings
        breaker = BreakerPolicy(
            settings.notify_breaker_threshold, settings.notify_breaker_cooldown, settings.notify_breaker_max_cooldown
        )
        owner = f"cost:{os.getpid()}"

        async def one_batch() -> int:
            claimed = await claim_deliveries(
                gateway.db,
                owner,
                limit=args.batch,
                lease=timedelta(seconds=60),
                merchant_cap=args.merchant_cap,
                breaker_threshold=settings.notify_breaker_threshold,
            )
            started = datetime.now(UTC)
            attempt = AttemptRecord(started, "127.0.0.1", 1, True, http_status=200, body_head="success")
            outcomes = [Outcome(delivery.task, attempt, settings.notify_retry_delays) for delivery in claimed]
            if outcomes:
                await record_attempts(gateway.db, owner, outcomes, breaker)
            return len(claimed)

        done = 0
        while done < warmup:
            done += await one_batch()

        statements = 0

        def count(*_: object) -> None:
            nonlocal statements
            statements += 1

        for engine in gateway.db.engines:
            event.listen(engine, "before_cursor_execute", count)
        database_name = database_url.rsplit("/", 1)[1]
        db_before = await pg_backend_cpu(database_name) if backend == "postgresql" else {}
        result["loadavg_1m_before"] = round(os.getloadavg()[0], 2)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        done = 0
        while done < args.notifications:
            claimed = await one_batch()
            if claimed == 0:
                break
            done += claimed
        cpu, wall = time.process_time() - cpu_before, time.perf_counter() - wall_before
        if backend == "postgresql":
            db_after = await pg_backend_cpu(database_name)
            db_cpu = sum(seconds - db_before.get(pid, 0.0) for pid, seconds in db_after.items())
            result["db_cpu_ms"] = round(db_cpu * 1000 / done, 3)
        result.update(
            recorded=done,
            worker_cpu_ms=round(cpu * 1000 / done, 3),
            statements=round(statements / done, 3),
            wall_s=round(wall, 2),
            notifications_per_s=round(done / wall, 1),
            loadavg_1m_after=round(os.getloadavg()[0], 2),
        )
    return result


async def run(args: argparse.Namespace) -> None:
    for name in args.backends.split(","):
        print(json.dumps(await measure(BACKENDS[name.strip()], args)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notifications", type=int, default=3000, help="measured; a warm-up of 4 batches comes first")
    parser.add_argument("--batch", type=int, default=32, help="claim limit: a worker's free slots")
    parser.add_argument("--merchants", type=int, default=32, help="the notifications are spread round-robin over them")
    parser.add_argument("--merchant-cap", type=int, default=4, help="OPENEPAY_NOTIFY_MERCHANT_MAX_IN_FLIGHT")
    parser.add_argument("--backends", default="pg,sqlite", help="pg and/or sqlite, comma-separated")
    parser.add_argument("--analyze", action="store_true", help="ANALYZE after the bulk insert")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
