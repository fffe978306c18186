"""Faults on PostgreSQL, with real ``openepay worker`` processes: crashes, crowds and a restarting database.

Every test has its own PostgreSQL database (never the shared test database, which other tests
empty as they go) and starts its own worker processes with a clean environment. Paid orders are
made in-process through the core; the merchant's endpoint is a real server on loopback, and
what it receives is the proof. A PostgreSQL that cannot be reached fails these tests.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from openepay.channels.sandbox.simulator import simulate_buyer_payment
from openepay.core.states import NotifyStatus
from openepay.db.models import NotifyAttempt, NotifyTask, NotifyWorkerBeat, Order
from openepay.gateway import Gateway
from tests.support.merchant import FakeMerchant
from tests.support.orders import sandbox_order
from tests.support.postgres import PG_DSN, pg_url
from tests.support.processes import WorkerProcess, Workers, worker_env, worker_processes
from tests.support.settings import make_settings
from tests.support.waiting import eventually

LEASE_SECONDS = 2.0
# Deliveries one worker runs at once.
WORKER_SLOTS = 8
# Starting a worker process imports the whole gateway: on a loaded machine that takes a minute.
WORKERS_STARTED_WITHIN = 240.0
# Exactly once holds while every live worker ends what it leased within the lease. Here the lease
# outlasts the wait for every worker to start and any pause of a loaded machine, so a worker
# starved of CPU is not taken for dead.
GATED_LEASE_SECONDS = 600.0


@pytest_asyncio.fixture
async def core(pg_database: str) -> AsyncIterator[Gateway]:
    gateway = await Gateway.open(make_settings(pg_url(pg_database)))
    yield gateway
    await gateway.aclose()


@pytest.fixture
def shops() -> Iterator[list[FakeMerchant]]:
    started: list[FakeMerchant] = []
    yield started
    for shop in started:
        shop.stop()


@pytest.fixture
def workers(pg_database: str, tmp_path: Path) -> Iterator[Workers]:
    """Worker processes on this test's database with a short lease; all stopped at the end."""
    env = worker_env(
        pg_url(pg_database),
        notify_lease_seconds=LEASE_SECONDS,
        notify_concurrency=WORKER_SLOTS,
        notify_batch_size=4,
        notify_merchant_max_in_flight=8,
    )
    with worker_processes(env, tmp_path) as running:
        yield running
    print(running.logs())  # shown when the test fails


async def open_shop(gateway: Gateway, shops: list[FakeMerchant], name: str, delay: float) -> tuple[int, FakeMerchant]:
    credentials = await gateway.merchants.create(name)
    shop = FakeMerchant(key=credentials.key, delay=delay).start()
    shops.append(shop)
    return credentials.pid, shop


async def pay_orders(gateway: Gateway, pid: int, shop: FakeMerchant, count: int) -> list[str]:
    """``count`` orders paid by their buyers, each now owing the merchant a notification."""
    trade_nos = []
    for number in range(count):
        order = await sandbox_order(gateway, pid, f"{pid}-{number}", notify_url=f"{shop.url}/notify")
        await simulate_buyer_payment(gateway, order.trade_no)
        trade_nos.append(order.trade_no)
    return trade_nos


def received(*shops: FakeMerchant) -> Counter[str]:
    """How many times each trade_no reached its merchant, counting only notifications it could verify."""
    counts: Counter[str] = Counter()
    for shop in shops:
        for entry in shop.notifications():
            assert entry.signature_ok, entry.params
            assert entry.params["trade_status"] == "TRADE_SUCCESS"
            counts[entry.params["trade_no"]] += 1
    return counts


async def task_statuses(gateway: Gateway) -> Counter[str]:
    async with gateway.db.session() as session:
        rows = await session.execute(select(NotifyTask.status, func.count()).group_by(NotifyTask.status))
        return Counter({status: count for status, count in rows.all()})


def all_succeeded(gateway: Gateway, total: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return (await task_statuses(gateway)) == Counter({NotifyStatus.SUCCEEDED: total})

    return check


async def leased_trade_nos(gateway: Gateway) -> set[str]:
    async with gateway.db.session() as session:
        rows = await session.scalars(
            select(Order.trade_no)
            .join(NotifyTask, NotifyTask.order_id == Order.id)
            .where(NotifyTask.status == NotifyStatus.PENDING, NotifyTask.lease_owner.is_not(None))
        )
        return set(rows.all())


async def lease_owners(gateway: Gateway) -> Counter[str]:
    """How many undelivered notifications each worker holds just now."""
    async with gateway.db.session() as session:
        rows = await session.scalars(
            select(NotifyTask.lease_owner).where(
                NotifyTask.status == NotifyStatus.PENDING, NotifyTask.lease_owner.is_not(None)
            )
        )
        return Counter(rows.all())


def leases_held(gateway: Gateway, count: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        return (await lease_owners(gateway)).total() >= count

    return check


def workers_beating(gateway: Gateway, count: int):  # type: ignore[no-untyped-def]
    """Whether ``count`` worker processes have started their work loop (each beats before it first claims)."""

    async def check() -> bool:
        async with gateway.db.session() as session:
            return await session.scalar(select(func.count()).select_from(NotifyWorkerBeat)) >= count

    return check


def assert_alive(workers: Workers, *processes: WorkerProcess) -> None:
    for process in processes:
        assert process.alive, f"worker {process.pid} died:\n{workers.logs()}"


async def test_a_worker_killed_mid_batch_loses_nothing_and_repeats_only_what_it_held(
    core: Gateway, shops: list[FakeMerchant], workers: Workers
) -> None:
    pid, shop = await open_shop(core, shops, "Slow Shop", delay=0.5)
    trade_nos = await pay_orders(core, pid, shop, 40)

    (doomed,) = workers.start(1)
    await eventually(lambda: len(shop.notifications()) >= 3, timeout=WORKERS_STARTED_WITHIN)
    doomed.kill()
    # A dead worker changes nothing more: the leases still in the table are exactly what it held.
    held = await leased_trade_nos(core)
    statuses = await task_statuses(core)
    assert held, "the worker was killed with deliveries in flight"
    assert statuses[NotifyStatus.PENDING] > len(held), "the worker was killed before the batch was done"

    (survivor,) = workers.start(1)
    await eventually(lambda: set(received(shop)) == set(trade_nos), timeout=WORKERS_STARTED_WITHIN)
    await eventually(all_succeeded(core, len(trade_nos)))

    counts = received(shop)
    repeated = {trade_no for trade_no, count in counts.items() if count > 1}
    duplicates = sum(count - 1 for count in counts.values())
    print(f"held at kill: {len(held)}, duplicates after kill -9: {duplicates}")
    assert duplicates <= len(held)
    assert repeated <= held, "only notifications the dead worker had leased may arrive twice"
    assert max(counts.values()) <= 2
    assert_alive(workers, survivor)


@pytest.mark.parametrize("count", [2, 4])
async def test_several_workers_deliver_each_notification_exactly_once(
    count: int, core: Gateway, shops: list[FakeMerchant], workers: Workers
) -> None:
    opened = threading.Event()
    trade_nos: list[str] = []
    for number in range(3):
        pid, shop = await open_shop(core, shops, f"Shop {number}", delay=0.05)
        shop.gate = opened
        trade_nos += await pay_orders(core, pid, shop, 40)

    # The shops hold every delivery until each worker has filled its slots, so the first worker up
    # cannot take the whole backlog however late a loaded machine starts the others; the lease and
    # the delivery timeout outlast that wait, so nothing is taken for dead or failed meanwhile.
    workers.env.update(
        OPENEPAY_NOTIFY_LEASE_SECONDS=str(GATED_LEASE_SECONDS),
        OPENEPAY_NOTIFY_TIMEOUT=str(GATED_LEASE_SECONDS / 2),
        OPENEPAY_NOTIFY_MERCHANT_MAX_IN_FLIGHT=str(len(trade_nos)),
    )
    started = workers.start(count)
    try:
        await eventually(leases_held(core, count * WORKER_SLOTS), timeout=WORKERS_STARTED_WITHIN)
        owners = set(await lease_owners(core))
    finally:
        opened.set()
    # Owners are named host:pid:suffix; every process took its share of the backlog.
    assert {int(owner.split(":")[1]) for owner in owners} == {worker.pid for worker in started}
    await eventually(all_succeeded(core, len(trade_nos)))

    counts = received(*shops)
    assert set(counts) == set(trade_nos)
    assert [t for t, n in counts.items() if n != 1] == []
    async with core.db.session() as session:
        attempts = await session.scalar(select(func.count()).select_from(NotifyAttempt))
        sums = await session.scalar(select(func.sum(NotifyTask.attempts)))
    assert attempts == sums == len(trade_nos)
    assert_alive(workers, *started)


async def test_a_database_restart_under_load_costs_retries_not_notifications(
    pg_database: str, core: Gateway, shops: list[FakeMerchant], workers: Workers
) -> None:
    pid, shop = await open_shop(core, shops, "Busy Shop", delay=0.2)
    trade_nos = await pay_orders(core, pid, shop, 60)

    started = workers.start(2)
    # A worker still starting up when the database goes away exits (its schema check fails);
    # this test is about workers that were already running.
    await eventually(workers_beating(core, 2), timeout=WORKERS_STARTED_WITHIN)
    await eventually(lambda: len(shop.notifications()) >= 5)
    await core.db.dispose()  # only the workers are connected now

    admin = await asyncpg.connect(PG_DSN)
    try:
        terminate = (
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()"
        )
        killed = await admin.fetchval(terminate, pg_database)
        await admin.execute(f'ALTER DATABASE "{pg_database}" ALLOW_CONNECTIONS false')
        killed += await admin.fetchval(terminate, pg_database)
        delivered_before = len(received(shop))
        await asyncio.sleep(3)  # the database is down for this long
        await admin.execute(f'ALTER DATABASE "{pg_database}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()
    assert killed >= 2, "both workers were connected when the database went away"
    assert delivered_before < len(trade_nos), "the outage came in the middle of the work"

    await eventually(lambda: set(received(shop)) == set(trade_nos))
    await eventually(all_succeeded(core, len(trade_nos)))
    assert_alive(workers, *started)
    async with core.db.session() as session:
        undelivered = await session.scalar(
            select(func.count()).select_from(NotifyAttempt).where(NotifyAttempt.delivered.is_(False))
        )
    assert undelivered == 0, "the outage was never blamed on the merchant"
    # Each worker felt the outage, and told the operator once, not once per poll.
    tracebacks = [worker.output().count("notify worker cycle failed; retrying") for worker in started]
    assert all(1 <= count <= 3 for count in tracebacks), tracebacks
    counts = received(shop)
    duplicates = sum(count - 1 for count in counts.values())
    print(f"delivered before the outage: {delivered_before}, duplicates: {duplicates}")
    # Only deliveries whose outcome could not be written are repeated: at most what was in flight.
    assert duplicates <= 2 * 8
