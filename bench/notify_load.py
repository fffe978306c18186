"""Notification throughput: N paid orders, a fast local merchant sink, 1..n ``openepay worker`` processes.

    python bench/notify_load.py [--orders 2000] [--scenarios sqlite:1,pg:1,pg:2,pg:4] [--analyze]

For each scenario a fresh database is made (a temporary SQLite file, or a PostgreSQL database
created and dropped on 127.0.0.1:5432 as user ``postgres``), migrated, given ``--merchants``
merchants and N paid sandbox orders with their ``notify_tasks`` rows, inserted in bulk (the
benchmark measures delivery, not creation). The tasks are inserted due in a day; once every
worker has written its heartbeat they are all made due at one instant ("go"), and the clock
runs until the last one is recorded as delivered. ``--analyze`` runs ``ANALYZE`` after the
bulk insert, so the planner has the statistics a long-running database would have.

The merchant sink is a separate process (a raw asyncio HTTP server) that answers ``success``
and counts deliveries per ``trade_no``, so duplicates are seen from the merchant's side. Two
baselines are measured in the same run against the same sink, each from one process at one
worker's ``OPENEPAY_NOTIFY_CONCURRENCY`` for the same number of requests: plain aiohttp GETs
(``baseline``, what the scenarios are compared with) and the engine's own ``SafeHttpClient``
with no database (``safe_client``), which separates the HTTP client's cost from the outbox's.

The orders are spread round-robin over ``--merchants`` merchants (default 32) so that the
per-merchant in-flight cap (``OPENEPAY_NOTIFY_MERCHANT_MAX_IN_FLIGHT``, default 4, counted over
all workers) allows merchants x cap = 128 deliveries in flight, enough for 4 workers x 32 slots:
the engine's fairness rules stay as shipped and do not throttle the benchmark.

Prints one JSON line per baseline, then one per scenario: notifications/s and its ratio to the
baseline, p50/p99 delay from "due" to "delivered", duplicates seen by the sink (must be 0),
attempts, the workers' peak RSS (VmHWM) and CPU seconds, the whole machine's CPU over the run
(other load on the machine shows there, and in ``loadavg_1m_before``), and on PostgreSQL how
many connections the workers opened and how much CPU its backends used.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, quote

from gateway_env import sandbox_env
from throwaway_db import PG_ADMIN, fresh_database

BACKENDS = {"sqlite": "sqlite", "pg": "postgresql", "postgresql": "postgresql"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# The merchant sink (its own process): HTTP/1.1 keep-alive, answers "success", counts trade_nos.


def run_sink() -> None:
    import httptools
    import uvloop

    counts: Counter[str] = Counter()
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\nsuccess"

    def control(path: str) -> bytes:
        if path == "/reset":
            counts.clear()
        total = sum(counts.values())
        body = json.dumps(
            {
                "requests": total,
                "distinct": len(counts),
                "duplicates": total - len(counts),
                "max_per_trade": max(counts.values(), default=0),
            }
        ).encode()
        return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body),
            body,
        )

    class Sink(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.parser = httptools.HttpRequestParser(self)
            self.url = b""

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.transport.close()

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_message_complete(self) -> None:
            path, _, query = self.url.decode("latin-1").partition("?")
            self.url = b""
            if path in ("/stats", "/reset"):
                self.transport.write(control(path))
            else:
                counts[dict(parse_qsl(query)).get("trade_no", "")] += 1
                self.transport.write(answer)
            if not self.parser.should_keep_alive():
                self.transport.close()

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await stop.wait()

    uvloop.run(serve())


# --------------------------------------------------------------------------------------------
# The baseline client (its own process): the same number of GETs at one worker's concurrency.


def notification_like_path(n: int) -> str:
    """A GET shaped like an epay notification (same fields, similar length), unsigned."""
    query = "&".join(
        f"{k}={v}"
        for k, v in (
            ("pid", "1000"),
            ("trade_no", f"BASELINE{n:018d}"),
            ("out_trade_no", f"BENCH{n:012d}"),
            ("type", "alipay"),
            ("name", quote("压测商品")),
            ("money", "1.00"),
            ("trade_status", "TRADE_SUCCESS"),
            ("sign", secrets.token_hex(16)),
            ("sign_type", "MD5"),
        )
    )
    return f"/notify?{query}"


def run_baseline(url: str, requests: int, concurrency: int, client_name: str) -> None:
    """``aiohttp``: the plain-HTTP ceiling. ``safe``: the engine's own SafeHttpClient, no database."""

    async def hammer(get) -> dict[str, object]:  # type: ignore[no-untyped-def]
        paths = [notification_like_path(n) for n in range(requests)]
        errors = 0

        async def user() -> None:
            nonlocal errors
            while paths:
                if not await get(paths.pop()):
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(user() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
        return {"requests": requests, "elapsed_s": round(elapsed, 3), "errors": errors}

    async def with_aiohttp() -> dict[str, object]:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as client:

            async def get(path: str) -> bool:
                try:
                    async with client.get(path) as response:
                        return response.status == 200 and b"success" in await response.read()
                except (aiohttp.ClientError, TimeoutError):
                    return False

            return await hammer(get)

    async def with_safe_client() -> dict[str, object]:
        from openepay.config import Settings
        from openepay.notify.http import OutboundMessage, SafeHttpClient

        settings = Settings()
        client = SafeHttpClient(
            allow_private=True,
            connect_timeout=settings.notify_connect_timeout,
            total_timeout=settings.notify_timeout,
            max_body_bytes=settings.notify_max_body_bytes,
        )
        try:

            async def get(path: str) -> bool:
                outcome = await client.send(OutboundMessage("GET", url + path))
                return outcome.error_class is None and b"success" in outcome.body

            return await hammer(get)
        finally:
            await client.aclose()

    print(json.dumps(asyncio.run(with_aiohttp() if client_name == "aiohttp" else with_safe_client())), flush=True)


# --------------------------------------------------------------------------------------------
# The orchestrator.


class Sink:
    def __init__(self, stack: AsyncExitStack) -> None:
        self.process = subprocess.Popen([sys.executable, __file__, "--role", "sink"], stdout=subprocess.PIPE, text=True)
        stack.callback(stop_process, self.process)
        port = int(self.process.stdout.readline())  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        # One kept-alive connection: polling must not steal CPU from the workers being measured.
        self.control = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        stack.callback(self.control.close)

    def stats(self, reset: bool = False) -> dict[str, int]:
        self.control.request("GET", "/reset" if reset else "/stats")
        return json.loads(self.control.getresponse().read())


def stop_process(process: subprocess.Popen, grace: float = 10.0) -> None:  # type: ignore[type-arg]
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (fields 14 and 15 of /proc/pid/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def percentile_ms(ordered: list[float], p: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 1)


def worker_env(database_url: str, secret_key: str, args: argparse.Namespace) -> dict[str, str]:
    return sandbox_env(
        database_url,
        OPENEPAY_SECRET_KEY=secret_key,
        OPENEPAY_WORKER_POLL_INTERVAL=str(args.poll_interval),
        OPENEPAY_NOTIFY_CONCURRENCY=str(args.concurrency),
        OPENEPAY_NOTIFY_BATCH_SIZE=str(args.batch_size),
        OPENEPAY_NOTIFY_MERCHANT_MAX_IN_FLIGHT=str(args.merchant_cap),
    )


async def pg_sessions(name: str) -> int | None:
    """Connections ever opened to the database (PostgreSQL 14+), to see pool churn."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        return await conn.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = $1", name)
    except asyncpg.UndefinedColumnError:
        return None
    finally:
        await conn.close()


async def pg_backend_cpu(name: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to the database ``name`` (same machine)."""
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        pids = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
    finally:
        await conn.close()
    return {row["pid"]: cpu_seconds(row["pid"]) for row in pids}


async def prepare(gateway, orders: int, merchants: int, notify_url: str) -> None:  # type: ignore[no-untyped-def]
    """Merchants through the gateway; orders and their outbox rows in bulk, due in a day."""
    from sqlalchemy import insert, literal, select

    from openepay.channels.sandbox.channel import SandboxChannel
    from openepay.core.ids import TradeNoGenerator
    from openepay.core.states import NotifyStatus, OrderStatus
    from openepay.db.models import NotifyTask, Order
    from openepay.db.types import UTCDateTime
    from openepay.notify.outbox import PAID_EVENT
    from openepay.protocols.epay import DIALECT

    pids = [(await gateway.merchants.create(f"bench-{m}")).pid for m in range(merchants)]
    trade_numbers = TradeNoGenerator()
    now = datetime.now(UTC)
    rows = []
    for n in range(orders):
        fen = 100 + n % 9900
        rows.append(
            {
                "trade_no": trade_numbers.next(),
                "merchant_pid": pids[n % merchants],
                "dialect": DIALECT,
                "out_trade_no": f"BENCH{n:012d}",
                "pay_type": "alipay",
                "channel": SandboxChannel.name,
                "amount_fen": fen,
                "pay_amount_fen": fen,
                "money": f"{fen // 100}.{fen % 100:02d}",
                "name": "压测商品",
                "notify_url": notify_url,
                "attrs": {},
                "status": OrderStatus.PAID,
                "paid_late": False,
                "paid_fen": fen,
                "refunded_fen": 0,
                "created_at": now,
                "expires_at": now + timedelta(minutes=30),
                "paid_at": now,
            }
        )
    async with gateway.db.session() as session:
        for start in range(0, orders, 1000):
            await session.execute(insert(Order), rows[start : start + 1000])
        await session.execute(
            insert(NotifyTask).from_select(
                ["order_id", "merchant_pid", "event", "status", "attempts", "next_attempt_at", "created_at"],
                select(
                    Order.id,
                    Order.merchant_pid,
                    literal(PAID_EVENT),
                    literal(NotifyStatus.PENDING.value),
                    literal(0),
                    literal(now + timedelta(days=1), UTCDateTime()),
                    literal(now, UTCDateTime()),
                ),
            )
        )


async def wait_for_workers(gateway, processes, deadline: float) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import func, select

    from openepay.db.models import NotifyWorkerBeat

    while True:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"a worker exited with code {process.returncode} before the start")
        async with gateway.db.session() as session:
            if (await session.scalar(select(func.count()).select_from(NotifyWorkerBeat))) >= len(processes):
                return
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not start in time")
        await asyncio.sleep(0.1)


async def run_scenario(spec: str, sink: Sink, baseline_rps: float | None, args: argparse.Namespace) -> dict:  # type: ignore[type-arg]
    from sqlalchemy import func, select, update

    from openepay.config import Settings
    from openepay.core.states import NotifyStatus
    from openepay.db.models import NotifyAttempt, NotifyTask
    from openepay.gateway import Gateway

    backend_name, _, count = spec.partition(":")
    backend = BACKENDS[backend_name]
    workers = int(count or 1)
    result: dict[str, object] = {
        "scenario": spec,
        "backend": backend,
        "workers": workers,
        "orders": args.orders,
        "merchants": args.merchants,
        "concurrency": args.concurrency,
        "batch_size": args.batch_size,
        "merchant_max_in_flight": args.merchant_cap,
        "analyzed": args.analyze,
    }
    secret_key = secrets.token_urlsafe(32)
    async with AsyncExitStack() as stack:
        database_url = await fresh_database(stack, backend)
        env = worker_env(database_url, secret_key, args)
        subprocess.run(
            [sys.executable, "-m", "openepay", "migrate"], env=env, check=True, capture_output=True, timeout=120
        )
        gateway = await Gateway.open(Settings(database_url=database_url, secret_key=secret_key))
        stack.push_async_callback(gateway.aclose)

        began = time.perf_counter()
        await prepare(gateway, args.orders, args.merchants, f"{sink.url}/notify")
        if args.analyze:
            async with gateway.db.engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE")
        result["prepare_s"] = round(time.perf_counter() - began, 2)
        sink.stats(reset=True)

        logs = stack.enter_context(tempfile.TemporaryFile("w+"))
        processes = []
        for number in range(workers):
            stats = Path(args.profile or ".") / f"{spec}-{number}.prof"
            profile = ["-m", "cProfile", "-o", str(stats)] if args.profile else []
            command = [sys.executable, *profile, "-m", "openepay", "worker"]
            process = subprocess.Popen(command, env=env, stdout=logs, stderr=logs)
            stack.callback(stop_process, process)
            processes.append(process)
        await wait_for_workers(gateway, processes, time.monotonic() + 60)
        cpu_before = sum(cpu_seconds(p.pid) for p in processes)
        database_name = database_url.rsplit("/", 1)[1]
        pg_before = await pg_backend_cpu(database_name) if backend == "postgresql" else {}

        result["loadavg_1m_before"] = round(os.getloadavg()[0], 2)
        busy_before, total_before = machine_ticks()
        go = datetime.now(UTC)
        async with gateway.db.session() as session:
            await session.execute(update(NotifyTask).values(next_attempt_at=go))
        deadline = time.monotonic() + args.timeout
        seen, last_progress = 0, time.monotonic()
        while seen < args.orders:
            await asyncio.sleep(0.1)
            distinct = sink.stats()["distinct"]
            if distinct > seen:
                seen, last_progress = distinct, time.monotonic()
            if any(p.poll() is not None for p in processes):
                raise RuntimeError("a worker died during the run")
            if time.monotonic() > deadline or time.monotonic() - last_progress > args.stall:
                result["error"] = f"timed out with {seen}/{args.orders} delivered"
                break
        # The sink has answered; wait for the workers to record the last attempts.
        while time.monotonic() < deadline:
            async with gateway.db.session() as session:
                pending = await session.scalar(select(func.count()).where(NotifyTask.status == NotifyStatus.PENDING))
            if not pending or "error" in result:
                break
            await asyncio.sleep(0.05)
        busy_after, total_after = machine_ticks()
        if backend == "postgresql":
            pg_after = await pg_backend_cpu(database_name)
            pg_cpu = sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
            result["pg_backend_cpu_s"] = round(pg_cpu, 2)
            result["pg_backend_cpu_ms_per_notification"] = round(pg_cpu * 1000 / args.orders, 3)
        result["worker_peak_rss_mb"] = [peak_rss_mb(p.pid) for p in processes]
        result["worker_cpu_s"] = round(sum(cpu_seconds(p.pid) for p in processes) - cpu_before, 2)
        result["worker_cpu_ms_per_notification"] = round(result["worker_cpu_s"] * 1000 / args.orders, 3)
        result["machine_cpu_busy"] = round((busy_after - busy_before) / max(1, total_after - total_before), 2)
        result["machine_cpu_s"] = round((busy_after - busy_before) / CLK_TCK, 1)

        async with gateway.db.session() as session:
            succeeded = select(NotifyTask.delivered_at).where(NotifyTask.status == NotifyStatus.SUCCEEDED)
            delivered_at = list((await session.scalars(succeeded)).all())
            statuses = select(NotifyTask.status, func.count()).group_by(NotifyTask.status)
            by_status = dict((await session.execute(statuses)).all())
            attempts = await session.scalar(select(func.count()).select_from(NotifyAttempt))
        delays = sorted((at - go).total_seconds() for at in delivered_at)
        stats = sink.stats()
        elapsed = delays[-1] if delays else None
        rate = round(len(delays) / elapsed, 1) if elapsed else None
        result.update(
            delivered=len(delays),
            by_status=by_status,
            attempts=attempts,
            sink_requests=stats["requests"],
            duplicates=stats["duplicates"],
            elapsed_s=round(elapsed, 3) if elapsed else None,
            notifications_per_s=rate,
            vs_baseline=round(rate / baseline_rps, 3) if rate and baseline_rps else None,
            delay_p50_ms=percentile_ms(delays, 0.50),
            delay_p99_ms=percentile_ms(delays, 0.99),
        )
        for process in processes:
            stop_process(process)
        if backend == "postgresql":
            result["pg_connections_opened"] = await pg_sessions(database_name)
        logs.seek(0)
        errors = [line for line in logs.read().splitlines() if line.strip() and "SANDBOX channel" not in line]
        if errors:
            result["worker_log_lines"] = len(errors)
            result["worker_log_tail"] = errors[-3:]
    return result


BASELINES = {
    "aiohttp": ("baseline", "plain aiohttp GETs from one process to the same sink"),
    "safe": ("safe_client", "the engine's SafeHttpClient alone (no database), one process, same sink"),
}


def run_baseline_process(sink: Sink, client_name: str, args: argparse.Namespace) -> dict[str, object]:
    sink.stats(reset=True)
    output = subprocess.run(
        [
            sys.executable,
            __file__,
            "--role",
            "baseline",
            "--client",
            client_name,
            "--sink-url",
            sink.url,
            "--orders",
            str(args.orders),
            "--concurrency",
            str(args.concurrency),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=args.timeout,
    ).stdout
    measured = json.loads(output)
    stats = sink.stats()
    scenario, what = BASELINES[client_name]
    return {
        "scenario": scenario,
        "what": what,
        "concurrency": args.concurrency,
        **measured,
        "requests_per_s": round(measured["requests"] / measured["elapsed_s"], 1),
        "sink_requests": stats["requests"],
        "duplicates": stats["duplicates"],
    }


async def orchestrate(args: argparse.Namespace) -> None:
    specs = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for spec in specs:
        backend, _, count = spec.partition(":")
        if backend not in BACKENDS or not (count or "1").isdigit() or int(count or 1) < 1:
            raise SystemExit(f"bad scenario {spec!r}: use sqlite:N or pg:N")
    async with AsyncExitStack() as stack:
        sink = Sink(stack)
        baseline = run_baseline_process(sink, "aiohttp", args)
        print(json.dumps(baseline, ensure_ascii=False), flush=True)
        safe = run_baseline_process(sink, "safe", args)
        safe["vs_baseline"] = round(safe["requests_per_s"] / baseline["requests_per_s"], 3)  # type: ignore[operator]
        print(json.dumps(safe, ensure_ascii=False), flush=True)
        for spec in specs:
            try:
                result = await asyncio.wait_for(
                    run_scenario(spec, sink, baseline["requests_per_s"], args), args.timeout + 120
                )
            except Exception as exc:  # one broken scenario must not hide the others' numbers
                result = {"scenario": spec, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(result, ensure_ascii=False), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--scenarios", default="sqlite:1,pg:1,pg:2,pg:4", help="backend:workers, comma-separated")
    parser.add_argument("--merchants", type=int, default=32, help="orders are spread round-robin over them")
    parser.add_argument("--concurrency", type=int, default=32, help="OPENEPAY_NOTIFY_CONCURRENCY per worker")
    parser.add_argument("--batch-size", type=int, default=50, help="OPENEPAY_NOTIFY_BATCH_SIZE")
    parser.add_argument("--merchant-cap", type=int, default=4, help="OPENEPAY_NOTIFY_MERCHANT_MAX_IN_FLIGHT")
    parser.add_argument("--poll-interval", type=float, default=0.05, help="OPENEPAY_WORKER_POLL_INTERVAL")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for one scenario's delivery")
    parser.add_argument("--stall", type=float, default=60.0, help="give up after this long without progress")
    parser.add_argument(
        "--analyze", action="store_true", help="ANALYZE after the bulk insert (planner statistics, as in steady state)"
    )
    parser.add_argument("--profile", metavar="DIR", help="run each worker under cProfile, its stats written to DIR")
    parser.add_argument("--role", choices=("sink", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--sink-url", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=tuple(BASELINES), default="aiohttp", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (e.g. from ``timeout``) unwinds like Ctrl-C, so workers and databases are cleaned up."""
    raise KeyboardInterrupt


def main() -> None:
    args = parse_args()
    if args.role == "sink":
        run_sink()
    elif args.role == "baseline":
        run_baseline(args.sink_url, args.orders, args.concurrency, args.client)
    else:
        signal.signal(signal.SIGTERM, _interrupt)
        asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
