"""Fairness: a merchant whose endpoint hangs cannot slow the others, and loses nothing while it hangs.

The hanging endpoint is a real server on loopback that accepts each connection, reads the
request and then says nothing until the gateway gives up; it counts how many requests it
holds open at once. The breaker is also driven directly through ``record_outcome`` and
``claim`` with explicit clocks, so each transition is checked exactly.
"""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from openepay.channels.sandbox.simulator import simulate_buyer_payment
from openepay.core.states import NotifyStatus
from openepay.db.models import NotifyAttempt, NotifyBreaker, NotifyTask, Order
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.notify import outbox
from openepay.notify.breaker import BreakerPolicy, record_outcome
from openepay.notify.worker import NotifyWorker
from tests.support.merchant import FakeMerchant
from tests.support.orders import sandbox_order
from tests.support.settings import make_settings
from tests.support.waiting import eventually

CAP = 2
THRESHOLD = 3
# A hanging attempt costs TIMEOUT; a healthy notification must arrive sooner than that after its
# payment. Two seconds leave a loaded machine room while staying far below what a worker that
# let the hanging merchant take its slots would cost (a TIMEOUT per round of hanging attempts).
COOLDOWN = 2.0
TIMEOUT = 2.0


@dataclass
class Arrival:
    trade_no: str
    at: float  # wall clock, comparable with the breaker's open_until
    answered: bool


@dataclass
class HangingMerchant:
    """Reads each request and then hangs until the client hangs up; ``recover()`` makes it answer ``success``."""

    hanging: bool = True
    arrivals: list[Arrival] = field(default_factory=list)
    open_now: int = 0
    most_open: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def recover(self) -> None:
        self.hanging = False

    def start(self) -> HangingMerchant:
        merchant = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                conn.settimeout(0.05)
                head = merchant._read_head(conn)
                if head is None:
                    return
                target = head.split(b" ", 2)[1].decode()
                trade_no = dict(parse_qsl(urlsplit(target).query)).get("trade_no", "")
                with merchant._lock:
                    merchant.open_now += 1
                    merchant.most_open = max(merchant.most_open, merchant.open_now)
                    merchant.arrivals.append(Arrival(trade_no, time.time(), not merchant.hanging))
                    hang = merchant.hanging
                try:
                    if hang:
                        merchant._wait_for_hangup(conn)
                    else:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nsuccess")
                finally:
                    with merchant._lock:
                        merchant.open_now -= 1

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def _read_head(self, conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data and not self._stopping.is_set():
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            if not chunk:
                return None
            data += chunk
        return data if b"\r\n\r\n" in data else None

    def _wait_for_hangup(self, conn: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                if not conn.recv(4096):
                    return
            except TimeoutError:
                continue
            except OSError:
                return

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@pytest.fixture
def hanging_merchant() -> Iterator[HangingMerchant]:
    merchant = HangingMerchant().start()
    yield merchant
    merchant.stop()


@pytest_asyncio.fixture
async def fair_worker(gateway: Gateway, database_url: str) -> AsyncIterator[NotifyWorker]:
    """A worker with a small per-merchant cap, a low breaker threshold and a short cooldown.

    It shares the test gateway's database engine, as the worker inside ``openepay serve`` shares
    the web app's (on SQLite, two engines in one process would fight over the file lock).
    """
    settings = make_settings(
        database_url,
        notify_timeout=TIMEOUT,
        notify_connect_timeout=TIMEOUT,
        notify_merchant_max_in_flight=CAP,
        notify_breaker_threshold=THRESHOLD,
        notify_breaker_cooldown=COOLDOWN,
        notify_breaker_max_cooldown=4 * COOLDOWN,
    )
    worker = NotifyWorker(replace(gateway, settings=settings), name="fair-worker")
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    yield worker
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    await worker.aclose()


async def breaker_of(gateway: Gateway, pid: int) -> NotifyBreaker | None:
    async with gateway.db.session() as session:
        return await session.get(NotifyBreaker, pid)


async def tasks_of(gateway: Gateway, pid: int) -> list[NotifyTask]:
    async with gateway.db.session() as session:
        return list((await session.scalars(select(NotifyTask).where(NotifyTask.merchant_pid == pid))).all())


async def attempts_of(gateway: Gateway, pid: int) -> dict[str, int]:
    """How many attempts the delivery log holds for each of the merchant's orders."""
    async with gateway.db.session() as session:
        rows = await session.execute(
            select(Order.trade_no, func.count(NotifyAttempt.id))
            .join(NotifyTask, NotifyTask.order_id == Order.id)
            .outerjoin(NotifyAttempt, NotifyAttempt.task_id == NotifyTask.id)
            .where(Order.merchant_pid == pid)
            .group_by(Order.trade_no)
        )
        return {trade_no: count for trade_no, count in rows.all()}


async def test_a_hanging_merchant_neither_slows_the_others_nor_loses_its_notifications(
    gateway: Gateway, fair_worker: NotifyWorker, hanging_merchant: HangingMerchant
) -> None:
    healthy = await gateway.merchants.create("Healthy Shop")
    stuck = await gateway.merchants.create("Stuck Shop")
    shop = FakeMerchant(key=healthy.key).start()
    try:
        paid_at: dict[str, float] = {}
        stuck_trade_nos: list[str] = []
        for number in range(20):
            for pid, url in ((stuck.pid, hanging_merchant.url), (healthy.pid, shop.url)):
                order = await sandbox_order(gateway, pid, f"F-{number}", notify_url=f"{url}/notify")
                await simulate_buyer_payment(gateway, order.trade_no)
                paid_at[order.trade_no] = time.monotonic()
                if pid == stuck.pid:
                    stuck_trade_nos.append(order.trade_no)
        healthy_trade_nos = set(paid_at) - set(stuck_trade_nos)

        await eventually(lambda: {e.params["trade_no"] for e in shop.notifications()} >= healthy_trade_nos)
        latencies = {e.params["trade_no"]: e.at - paid_at[e.params["trade_no"]] for e in shop.notifications()}
        print(f"healthy latency: max {max(latencies.values()):.3f}s, mean {sum(latencies.values()) / 20:.3f}s")
        assert len(shop.notifications()) == 20 and all(e.signature_ok for e in shop.notifications())
        assert max(latencies.values()) < TIMEOUT, "a healthy notification waited on a hanging one"
        # Meanwhile the stuck merchant's notifications wait, all of them.
        assert all(task.status == NotifyStatus.PENDING for task in await tasks_of(gateway, stuck.pid))

        async def breaker_open() -> NotifyBreaker | None:
            breaker = await breaker_of(gateway, stuck.pid)
            return breaker if breaker and breaker.open_until and breaker.open_until > utcnow() else None

        opened = await eventually(breaker_open, interval=0.02)
        assert opened.consecutive_failures >= THRESHOLD

        async def settled_while_open() -> dict[str, int] | None:
            """Once the attempts already in flight have come back, the log matches what the server saw."""
            logged = await attempts_of(gateway, stuck.pid)
            quiet = hanging_merchant.open_now == 0 and sum(logged.values()) == len(hanging_merchant.arrivals)
            return logged if quiet and utcnow() < opened.open_until else None

        before = await eventually(settled_while_open, timeout=COOLDOWN, interval=0.02)
        arrivals_before = len(hanging_merchant.arrivals)
        hanging_merchant.recover()
        # While the breaker is open nobody knocks, and no notification moves closer to giving up.
        # Only what was seen entirely before the cooldown's end is judged: on a loaded machine a look
        # begun in time can end after it, when the probe may already have been let through.
        while utcnow() < opened.open_until - timedelta(seconds=0.05):
            arrivals = len(hanging_merchant.arrivals)
            logged = await attempts_of(gateway, stuck.pid)
            tasks = await tasks_of(gateway, stuck.pid)
            breaker = await breaker_of(gateway, stuck.pid)
            if utcnow() < opened.open_until:
                assert arrivals == arrivals_before
                assert logged == before
                assert all(task.status == NotifyStatus.PENDING for task in tasks)
                assert breaker is not None and breaker.open_until == opened.open_until, "the cooldown was not moved"
            await asyncio.sleep(0.05)

        async def all_delivered() -> bool:
            tasks = await tasks_of(gateway, stuck.pid)
            return all(task.status == NotifyStatus.SUCCEEDED for task in tasks)

        await eventually(all_delivered)
        probe = hanging_merchant.arrivals[arrivals_before]
        assert probe.answered
        assert probe.at >= opened.open_until.timestamp(), "the probe waited for the cooldown"
        answered = [a.trade_no for a in hanging_merchant.arrivals if a.answered]
        assert sorted(answered) == sorted(stuck_trade_nos), "each delivered exactly once after recovery"
        assert hanging_merchant.most_open == CAP
        closed = await breaker_of(gateway, stuck.pid)
        assert closed is not None and closed.open_until is None and closed.consecutive_failures == 0
        logged = await attempts_of(gateway, stuck.pid)
        seen = {t: sum(1 for a in hanging_merchant.arrivals if a.trade_no == t) for t in stuck_trade_nos}
        assert logged == seen, "every request the merchant saw is in the attempt log, and nothing else"
    finally:
        shop.stop()


POLICY = BreakerPolicy(threshold=3, cooldown=10.0, max_cooldown=25.0)
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def outcome(gateway: Gateway, pid: int, *, delivered: bool, started: float, now: float) -> NotifyBreaker:
    async with gateway.db.session() as session:
        await record_outcome(session, pid, delivered=delivered, started_at=at(started), now=at(now), policy=POLICY)
    breaker = await breaker_of(gateway, pid)
    assert breaker is not None
    return breaker


async def test_breaker_opens_at_the_threshold_doubles_on_failed_probes_and_closes_on_success(gateway: Gateway) -> None:
    pid = (await gateway.merchants.create("Flaky Shop")).pid

    for n in (1, 2):
        breaker = await outcome(gateway, pid, delivered=False, started=n, now=n + 1)
        assert (breaker.consecutive_failures, breaker.open_until) == (n, None)

    breaker = await outcome(gateway, pid, delivered=False, started=3, now=4)
    assert breaker.open_until == at(14) and breaker.cooldown_seconds == 10

    # Attempts that were in flight when it opened fail late; they say nothing new.
    breaker = await outcome(gateway, pid, delivered=False, started=3.5, now=6)
    assert breaker.open_until == at(14) and breaker.cooldown_seconds == 10

    # Half-open: a probe that fails opens it again for twice as long, up to the maximum.
    breaker = await outcome(gateway, pid, delivered=False, started=14, now=15)
    assert breaker.open_until == at(35) and breaker.cooldown_seconds == 20
    breaker = await outcome(gateway, pid, delivered=False, started=35, now=36)
    assert breaker.open_until == at(61) and breaker.cooldown_seconds == 25
    breaker = await outcome(gateway, pid, delivered=False, started=61, now=62)
    assert breaker.open_until == at(87) and breaker.cooldown_seconds == 25

    breaker = await outcome(gateway, pid, delivered=True, started=87, now=88)
    assert (breaker.consecutive_failures, breaker.open_until, breaker.cooldown_seconds) == (0, None, 0)

    # Closed again, it takes a full run of failures to open it.
    for n in (1, 2):
        breaker = await outcome(gateway, pid, delivered=False, started=88 + n, now=89 + n)
        assert breaker.open_until is None
    breaker = await outcome(gateway, pid, delivered=False, started=91, now=92)
    assert breaker.open_until == at(102) and breaker.cooldown_seconds == 10


async def test_a_delivery_during_the_open_window_closes_the_breaker(gateway: Gateway) -> None:
    pid = (await gateway.merchants.create("Flaky Shop")).pid
    for n in (1, 2, 3):
        await outcome(gateway, pid, delivered=False, started=n, now=n + 1)
    # A request sent before the breaker opened comes back delivered: the merchant is fine again.
    breaker = await outcome(gateway, pid, delivered=True, started=3.5, now=5)
    assert (breaker.consecutive_failures, breaker.open_until) == (0, None)


async def test_claims_respect_the_cap_the_open_breaker_and_the_single_probe(gateway: Gateway) -> None:
    stuck = (await gateway.merchants.create("Stuck Shop")).pid
    probing = (await gateway.merchants.create("Probing Shop")).pid
    healthy = (await gateway.merchants.create("Healthy Shop")).pid
    for number in range(4):
        for pid in (stuck, probing, healthy):
            order = await sandbox_order(gateway, pid, f"C-{number}")
            await simulate_buyer_payment(gateway, order.trade_no)

    async def fail_in_a_row(pid: int, now: datetime) -> None:
        async with gateway.db.session() as session:
            for _ in range(THRESHOLD):
                await record_outcome(session, pid, delivered=False, started_at=now, now=now, policy=POLICY)

    await fail_in_a_row(stuck, utcnow())  # open for another POLICY.cooldown
    await fail_in_a_row(probing, utcnow() - timedelta(seconds=POLICY.cooldown + 1))  # cooldown over: half-open

    async def leased(owner: str) -> list[int]:
        claimed = await outbox.claim(
            gateway.db, owner, limit=50, lease=timedelta(seconds=30), merchant_cap=CAP, breaker_threshold=THRESHOLD
        )
        return sorted(task.merchant_pid for task in claimed)

    # Open: nothing; half-open: one probe; closed: up to the cap. The next claimer gets nothing more.
    assert await leased("first") == sorted([probing, healthy, healthy])
    assert await leased("second") == []
    assert {task.status for task in await tasks_of(gateway, stuck)} == {NotifyStatus.PENDING}


async def test_a_long_backlog_due_first_does_not_hold_back_other_merchants(gateway: Gateway) -> None:
    """The claim reads due notifications a window at a time; one merchant can fill many windows."""
    flooding = (await gateway.merchants.create("Flooding Shop")).pid
    waiting = (await gateway.merchants.create("Waiting Shop")).pid
    limit = 4
    backlog = limit * outbox.CLAIM_WINDOW + 3  # more than the first window holds
    for number in range(backlog):
        await simulate_buyer_payment(gateway, (await sandbox_order(gateway, flooding, f"F-{number}")).trade_no)
    for number in range(2):
        await simulate_buyer_payment(gateway, (await sandbox_order(gateway, waiting, f"W-{number}")).trade_no)

    claimed = await outbox.claim(
        gateway.db, "only", limit=limit, lease=timedelta(seconds=30), merchant_cap=CAP, breaker_threshold=THRESHOLD
    )

    assert sorted(task.merchant_pid for task in claimed) == sorted([flooding] * CAP + [waiting] * 2)
    # The flooding merchant's earliest notifications went first.
    flooded = sorted(task.id for task in await tasks_of(gateway, flooding))
    assert sorted(task.id for task in claimed if task.merchant_pid == flooding) == flooded[:CAP]
