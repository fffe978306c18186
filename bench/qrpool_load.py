"""Personal QR codes (``qrpool``): N orders of one amount, then the phone reporting every payment.

    python bench/qrpool_load.py [--orders 400] [--concurrency 16] [--backends sqlite,pg]

For each backend a fresh database is made (a temporary SQLite file, or a PostgreSQL database
created and dropped on 127.0.0.1:5432 as user ``postgres``), and the operator's setup is done
with the CLI: a merchant, a WeChat Pay receiving account with a generic code, and a paired
phone. Then ``openepay serve`` (with its in-process notification worker) runs on a free port,
and the benchmark plays the merchant and the V免签 phone over HTTP, with aiohttp:

- the phone sends its heartbeat at once and every 30 s, as the stock app does;
- a warm-up of 2 orders per user, not measured (a process's first requests pay for imports and
  statement compilation);
- ``healthz``: ``--healthz-requests`` ``GET /healthz`` (default 4000: N of them would be over in
  a few tens of milliseconds), the server's floor;
- ``orders_distinct_amounts``: N signed ``/pay/mapi.php`` orders, each for an amount of its own,
  N + 1 fen apart, so no two orders' searches for a free amount ever meet: the channel's cost
  without contention;
- ``orders_same_amount``: N orders all for ¥10.00, the worst case for unique amounts: every
  order searches the same range and races the others for the first free amount. Every answer
  must carry a different ``money`` (``distinct_money``). On PostgreSQL ``lost_races`` counts
  the reservation inserts that lost to another order's (the gaps in the reservations' ids);
  SQLite serializes the gateway's transactions on its one connection, so nothing races there;
- ``pushes``: ``/appPush`` for every amount those orders got, priced as the app renders it
  (Java's ``Double.toString``: ``10.0``, ``10.01``, ``10.1``), signed ``md5(type+price+t+key)``.

Each phase runs at ``--concurrency`` and reports requests/s, p50/p99 latency, errors by reason
and the CPU seconds of ``serve`` and every process under it. The notifications are delivered
by the server's own worker while the pushes go on (``notified_meanwhile``); afterwards the run waits for the rest
(``notify_drain_s``, and the server's CPU seconds meanwhile). The merchant sink
(``notify_load.py``'s raw asyncio server, in its own process) must see each of the N paid orders
exactly once, and the database must hold N paid orders, N ``paid`` payment events and no
pending notification. One JSON line per backend, with the ratios to the baselines of the same
run, the server's memory once ready and at the end (``VmRSS``, and the peak ``VmHWM``), and
the load average, since other work on the machine shows in every number.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
from mapi_load import sign
from notify_load import Sink, cpu_seconds, percentile_ms, stop_process
from throwaway_db import fresh_database

BACKENDS = {"sqlite": "sqlite", "pg": "postgresql", "postgresql": "postgresql"}
GENERIC_CODE = "wxp://f2f0BENCHGENERICxxxxxxxxxxxxxxxxxxx"
WXPAY = "1"  # V免签's type code for WeChat Pay
SAME_FEN = 1000  # ¥10.00, what every order of the contended phase asks for
HEARTBEAT_EVERY = 30.0
WARM_UP = 2  # unmeasured orders per user before the first phase
OK = {"code": 1, "msg": "成功"}

# One request of a phase: its index in, None (success) or why it failed out.
Send = Callable[[int], Awaitable[str | None]]


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def fen_of(money: str) -> int:
    """``10.01`` (the gateway's ``money``, always two decimals) -> 1001."""
    return int(money.replace(".", ""))


def java_double(fen: int) -> str:
    """``Double.toString(fen / 100.0)`` as the app sends it; Python's ``repr`` agrees for these amounts."""
    return repr(fen / 100)


def now_ms() -> str:
    return str(int(time.time() * 1000))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def openepay(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "openepay", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"openepay {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def server_pids(pid: int) -> list[int]:
    """``serve`` (the supervisor) and every process under it: the web processes and the worker do the work."""
    pids = [pid]
    for parent in pids:
        try:
            pids += [int(child) for child in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]
        except OSError:
            continue
    return pids


def server_cpu_seconds(pid: int) -> float:
    return sum(cpu_seconds(each) for each in server_pids(pid))


def status_mb(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (each process's peak, summed: an upper bound) of the server's processes, in MB."""
    totals = {"VmRSS": 0.0, "VmHWM": 0.0}
    for each in server_pids(pid):
        try:
            text = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines())
        for name in totals:
            totals[name] += int(fields[name].split()[0]) / 1024
    return {name: round(value, 1) for name, value in totals.items()}


async def drive(count: int, concurrency: int, send: Send, server_pid: int) -> dict[str, object]:
    """``send(0)`` .. ``send(count - 1)`` from ``concurrency`` users at once."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    indexes = iter(range(count))  # shared: each user takes the next index

    async def user() -> None:
        for n in indexes:
            started = time.perf_counter()
            try:
                failure = await send(n)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                failure = type(exc).__name__
            latencies.append(time.perf_counter() - started)
            if failure:
                failures[failure] += 1

    cpu_before = server_cpu_seconds(server_pid)
    began = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "requests": count,
        "requests_per_s": round(count / elapsed, 1),
        "p50_ms": percentile_ms(ordered, 0.50),
        "p99_ms": percentile_ms(ordered, 0.99),
        "errors": sum(failures.values()),
        "failures": dict(failures),
        "server_cpu_s": round(server_cpu_seconds(server_pid) - cpu_before, 2),
    }


def ratio(a: dict[str, object], b: dict[str, object], field: str = "requests_per_s") -> float | None:
    return round(a[field] / b[field], 3) if b[field] else None  # type: ignore[operator]


class Merchant:
    """A ``/pay/`` merchant placing orders; remembers what each answer asked the buyer to pay."""

    def __init__(self, client: aiohttp.ClientSession, pid: int, key: str, notify_url: str) -> None:
        self.client, self.pid, self.key, self.notify_url = client, str(pid), key, notify_url
        self.run_id = secrets.token_hex(3).upper()
        self.money: dict[str, list[str]] = {}  # label -> the money of each answer

    def orders(self, label: str, amount_of: Callable[[int], int]) -> Send:
        """Orders ``QR{run}{label}{n}`` for ``amount_of(n)`` fen."""
        answered = self.money.setdefault(label, [])

        async def send(n: int) -> str | None:
            params = {
                "pid": self.pid,
                "type": "wxpay",
                "out_trade_no": f"QR{self.run_id}{label}{n:06d}",
                "notify_url": self.notify_url,
                "return_url": "http://127.0.0.1:9/return",
                "name": "压测商品",
                "money": yuan(amount_of(n)),
                "clientip": "203.0.113.7",
            }
            params["sign"] = sign(params, self.key)
            params["sign_type"] = "MD5"
            async with self.client.post("/pay/mapi.php", data=params) as response:
                answer = await response.json(content_type=None)
            if answer.get("code") != 200:
                return f"{answer.get('code')}: {answer.get('detail') or answer.get('msg')}"
            answered.append(answer["money"])
            return None

        return send


class Phone:
    """The V免签 monitor app paired with ``host/key``: plain GETs, signatures over the strings it sends."""

    def __init__(self, client: aiohttp.ClientSession, pairing: str) -> None:
        self.client = client
        self.key = pairing.partition("/")[2]
        self.heartbeats: Counter[str] = Counter()

    async def get(self, path: str) -> str | None:
        async with self.client.get(path) as response:
            answer = await response.json(content_type=None)
        return None if answer == OK else str(answer.get("msg"))

    async def heartbeat(self) -> str | None:
        t = now_ms()
        failure = await self.get(f"/appHeart?t={t}&sign={md5(t + self.key)}")
        self.heartbeats[failure or "ok"] += 1
        return failure

    async def keep_alive(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            try:
                await self.heartbeat()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self.heartbeats[type(exc).__name__] += 1

    def pushes(self, prices: list[str]) -> Send:
        async def send(n: int) -> str | None:
            t, price = now_ms(), prices[n]
            return await self.get(f"/appPush?t={t}&type={WXPAY}&price={price}&sign={md5(WXPAY + price + t + self.key)}")

        return send


async def wait_ready(client: aiohttp.ClientSession, server: subprocess.Popen) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"openepay serve exited with code {server.returncode}")
        try:
            async with client.get("/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the gateway did not become ready")


async def outcome(database_url: str) -> dict[str, object]:
    """What the database says happened: orders by status, payment events by decision, pending notifications."""
    from sqlalchemy import func, select

    from openepay.core.states import NotifyStatus
    from openepay.db import Database
    from openepay.db.models import NotifyTask, Order, PaymentEvent

    db = Database(database_url)
    try:
        async with db.session() as session:
            orders = dict((await session.execute(select(Order.status, func.count()).group_by(Order.status))).all())
            events = select(PaymentEvent.decision, func.count()).group_by(PaymentEvent.decision)
            decisions = dict((await session.execute(events)).all())
            pending = await session.scalar(
                select(func.count()).select_from(NotifyTask).where(NotifyTask.status == NotifyStatus.PENDING)
            )
    finally:
        await db.dispose()
    return {
        "paid_orders": orders.get("paid", 0),
        "orders_by_status": orders,
        "events": decisions,
        "notify_pending": pending,
    }


async def lost_races(database_url: str, first_fen: int, last_fen: int) -> int:
    """PostgreSQL: reservation inserts of the amounts from ``first_fen`` to ``last_fen`` that lost to
    another order's (a unique violation, after which the order tries again). A failed insert has
    used up its id all the same, so they are the gaps in those reservations' ids."""
    from sqlalchemy import func, select

    from openepay.db import Database
    from openepay.db.models import AmountReservation

    db = Database(database_url)
    try:
        async with db.session() as session:
            count, lowest, highest = (
                await session.execute(
                    select(func.count(), func.min(AmountReservation.id), func.max(AmountReservation.id)).where(
                        AmountReservation.amount_fen.between(first_fen, last_fen)
                    )
                )
            ).one()
    finally:
        await db.dispose()
    return highest - lowest + 1 - count if count else 0


async def wait_for_notifications(sink: Sink, database_url: str, expected: int, timeout: float) -> dict[str, object]:
    """Until the sink saw ``expected`` orders and the outbox has nothing pending, or the timeout."""
    began = time.perf_counter()
    drain_s = None
    while time.perf_counter() - began < timeout:
        if sink.stats()["distinct"] >= expected:
            drain_s = round(time.perf_counter() - began, 2)
            break
        await asyncio.sleep(0.1)
    # The sink has answered; the worker may not have recorded the last deliveries yet.
    state = await outcome(database_url)
    while state["notify_pending"] and time.perf_counter() - began < timeout:
        await asyncio.sleep(0.1)
        state = await outcome(database_url)
    stats = sink.stats()
    return {
        **state,
        "notifications": {key: stats[key] for key in ("requests", "distinct", "duplicates")},
        "notify_drain_s": drain_s,
    }


async def run_backend(backend: str, sink: Sink, args: argparse.Namespace) -> dict[str, object]:
    result: dict[str, object] = {
        "backend": backend,
        "orders": args.orders,
        "concurrency": args.concurrency,
        "loadavg_1m_before": round(os.getloadavg()[0], 2),
    }
    n = args.orders
    async with AsyncExitStack() as stack:
        database_url = await fresh_database(stack, backend)

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENEPAY_")}
        env.update(
            OPENEPAY_DATABASE_URL=database_url,
            OPENEPAY_SECRET_KEY=secrets.token_urlsafe(32),
            OPENEPAY_PUBLIC_URL=f"http://127.0.0.1:{port}",
            OPENEPAY_LOG_LEVEL="WARNING",
            OPENEPAY_QRPOOL="1",
            OPENEPAY_NOTIFY_ALLOW_PRIVATE="1",
            # Room for every contended order: ¥10.00 up to ¥10.00 + N fen.
            OPENEPAY_QRPOOL_MAX_OFFSET_FEN=str(n),
            OPENEPAY_QRPOOL_DEVICE_RATE_PER_MINUTE=str(100 * n),
        )
        openepay(env, "migrate")  # creates the gateway (other commands never create one)
        merchant_keys = json.loads(openepay(env, "merchant", "create", "--name", "qrpool-bench", "--json"))
        openepay(env, "qrpool", "account", "add", "wx-bench", "--type", "wxpay")
        openepay(env, "qrpool", "code", "add", "wx-bench", "--content", GENERIC_CODE)
        added = openepay(env, "qrpool", "device", "add", "wx-bench", "--name", "bench-phone")
        pairing = next(line.split(" ", 1)[1] for line in added.splitlines() if line.startswith("pairing: "))

        log = stack.enter_context(tempfile.TemporaryFile("w+"))
        server = subprocess.Popen(
            [sys.executable, "-m", "openepay", "serve", "--port", str(port)], env=env, stdout=log, stderr=log
        )
        stack.callback(stop_process, server)
        connector = aiohttp.TCPConnector(limit=args.concurrency + 1)  # one more for the heartbeats
        client = await stack.enter_async_context(
            aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector, timeout=aiohttp.ClientTimeout(30))
        )
        await wait_ready(client, server)
        result["server_mb_ready"] = status_mb(server.pid)

        phone = Phone(client, pairing)
        if failure := await phone.heartbeat():
            raise RuntimeError(f"the first heartbeat was refused: {failure}")
        beating = asyncio.create_task(phone.keep_alive())
        stack.callback(beating.cancel)
        merchant = Merchant(client, merchant_keys["pid"], merchant_keys["key"], f"{sink.url}/notify")
        sink.stats(reset=True)

        async def healthz(_: int) -> str | None:
            async with client.get("/healthz") as response:
                await response.read()
            return None if response.status == 200 else f"HTTP {response.status}"

        def distinct_fen(i: int) -> int:
            """Above the contended range and N + 1 fen apart: no two searches of N fen look at the same amount."""
            return SAME_FEN + (i + 1) * (n + 1)

        # Not measured (the first requests of a process pay for imports and statement compilation),
        # on amounts past the measured ones.
        warm_up = merchant.orders("W", lambda i: distinct_fen(n + i))
        await drive(WARM_UP * args.concurrency, args.concurrency, warm_up, server.pid)
        healthz_load = await drive(args.healthz_requests, args.concurrency, healthz, server.pid)
        distinct = await drive(n, args.concurrency, merchant.orders("D", distinct_fen), server.pid)
        same = await drive(n, args.concurrency, merchant.orders("S", lambda i: SAME_FEN), server.pid)
        moneys = sorted(merchant.money["S"], key=fen_of)
        same.update(
            distinct_money=len(set(moneys)),
            money_from=moneys[0] if moneys else None,
            money_to=moneys[-1] if moneys else None,
        )

        if backend == "postgresql" and moneys:
            same["lost_races"] = await lost_races(database_url, fen_of(moneys[0]), fen_of(moneys[-1]))

        prices = [java_double(fen_of(money)) for money in moneys]
        pushes = await drive(len(prices), args.concurrency, phone.pushes(prices), server.pid)
        pushes["notified_meanwhile"] = sink.stats()["distinct"]
        cpu_before = server_cpu_seconds(server.pid)
        delivered = await wait_for_notifications(sink, database_url, len(prices), args.timeout)
        delivered["notify_drain_server_cpu_s"] = round(server_cpu_seconds(server.pid) - cpu_before, 2)

        result.update(
            healthz=healthz_load,
            orders_distinct_amounts=distinct,
            orders_same_amount=same,
            pushes=pushes,
            same_vs_distinct_throughput=ratio(same, distinct),
            same_vs_distinct_p99=ratio(same, distinct, "p99_ms"),
            same_vs_healthz_throughput=ratio(same, healthz_load),
            distinct_vs_healthz_throughput=ratio(distinct, healthz_load),
            pushes_vs_healthz_throughput=ratio(pushes, healthz_load),
            **delivered,
            heartbeats=dict(phone.heartbeats),
            server_mb_end=status_mb(server.pid),
            loadavg_1m_after=round(os.getloadavg()[0], 2),
        )
        stop_process(server)
        log.seek(0)
        lines = [line for line in log.read().splitlines() if line.strip()]
        result["server_log_lines"] = len(lines)
        result["server_log_tail"] = lines[-3:]
    return result


async def orchestrate(args: argparse.Namespace) -> None:
    backends = [BACKENDS.get(name.strip()) for name in args.backends.split(",") if name.strip()]
    if None in backends:
        raise SystemExit(f"--backends takes sqlite and pg, not {args.backends!r}")
    async with AsyncExitStack() as stack:
        sink = Sink(stack)
        for backend in backends:
            try:
                result = await run_backend(backend, sink, args)  # type: ignore[arg-type]
            except Exception as exc:  # one broken backend must not hide the other's numbers
                result = {"backend": backend, "error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(result, ensure_ascii=False), flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=400, help="N: orders per phase, and pushes")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--healthz-requests", type=int, default=4000, help="requests of the /healthz baseline")
    parser.add_argument("--backends", default="sqlite,pg", help="comma-separated: sqlite, pg")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the notifications")
    return parser.parse_args(argv)


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM (e.g. from ``timeout``) unwinds like Ctrl-C, so the server and databases are cleaned up."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    asyncio.run(orchestrate(parse_args()))
