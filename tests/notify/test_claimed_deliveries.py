"""The worker's claim (``outbox.claim_deliveries``) and its batched records, end to end.

The claim hands the worker each notification with its order, the merchant's sealed key and
retry schedule, read in the claim's own transaction (on PostgreSQL returned by the lease
itself). A batch of attempts from several merchants is recorded in one transaction, and each
merchant's notifications and breaker end as if recorded alone.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from openepay.channels.sandbox.simulator import simulate_buyer_payment
from openepay.core.states import NotifyStatus
from openepay.db.models import NotifyBreaker, NotifyTask, Order
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.notify import outbox
from openepay.notify.breaker import BreakerPolicy, record_outcome
from openepay.notify.worker import NotifyWorker
from tests.support.notify import delivery_log, paid_order
from tests.support.orders import sandbox_order
from tests.support.waiting import eventually

FAIR = {"merchant_cap": 4, "breaker_threshold": 5}
BREAKER = BreakerPolicy(threshold=5, cooldown=30, max_cooldown=600)


async def paid(gateway: Gateway, pid: int, out_trade_no: str, **overrides: object) -> str:
    order = await sandbox_order(gateway, pid, out_trade_no, **overrides)
    await simulate_buyer_payment(gateway, order.trade_no)
    return order.trade_no


async def stored(gateway: Gateway, task_id: int) -> tuple[NotifyTask, Order]:
    async with gateway.db.session() as session:
        task = await session.get_one(NotifyTask, task_id)
        return task, await session.get_one(Order, task.order_id)


def attempt(delivered: bool) -> outbox.AttemptRecord:
    return outbox.AttemptRecord(
        started_at=utcnow(),
        target_host="127.0.0.1",
        latency_ms=3,
        delivered=delivered,
        http_status=200 if delivered else 503,
        body_head="success" if delivered else "busy",
        error_class=None if delivered else "non_success_body",
    )


async def breaker_failures(gateway: Gateway, pid: int) -> int:
    async with gateway.db.session() as session:
        breaker = await session.scalar(select(NotifyBreaker).where(NotifyBreaker.merchant_pid == pid))
    return 0 if breaker is None else breaker.consecutive_failures


async def test_a_claim_hands_over_each_order_with_its_merchants_key_and_schedule(gateway: Gateway) -> None:
    patient = await gateway.merchants.create("Patient Shop", notify_retry_delays=[5.0, 50.0])
    plain = await gateway.merchants.create("Plain Shop")
    placed = {
        await paid(gateway, patient.pid, "P-1", param="first", notify_url="http://127.0.0.1:9/a"): patient,
        await paid(gateway, patient.pid, "P-2", notify_url="http://127.0.0.1:9/b?x=1"): patient,
        await paid(gateway, plain.pid, "Q-1", param="third", notify_url="http://127.0.0.1:9/c"): plain,
    }

    claimed = await outbox.claim_deliveries(gateway.db, "w", limit=10, lease=timedelta(seconds=60), **FAIR)

    assert sorted(delivery.order.trade_no for delivery in claimed) == sorted(placed)
    for delivery in claimed:
        task, order = await stored(gateway, delivery.task.id)
        credentials = placed[order.trade_no]
        assert (delivery.task.order_id, delivery.task.merchant_pid) == (order.id, credentials.pid)
        assert (task.lease_owner, delivery.first_due) == ("w", task.created_at)
        key = gateway.merchants.open_key(credentials.pid, delivery.key_sealed)
        assert key == credentials.key
        assert delivery.retry_delays == ([5.0, 50.0] if credentials is patient else None)
        # The merchant gets exactly the message the stored order makes.
        dialect = gateway.dialects.for_order(order)
        assert await dialect.notification(delivery.order, key) == await dialect.notification(order, key)
    assert await outbox.claim_deliveries(gateway.db, "rival", limit=10, lease=timedelta(seconds=60), **FAIR) == []


async def test_a_batch_where_one_merchant_fails_records_every_merchant_as_if_alone(gateway: Gateway) -> None:
    failing = (await gateway.merchants.create("Failing Shop")).pid
    recovering = (await gateway.merchants.create("Recovering Shop")).pid
    healthy = (await gateway.merchants.create("Healthy Shop")).pid
    trade_nos = {pid: await paid(gateway, pid, f"B-{pid}") for pid in (failing, recovering, healthy)}
    async with gateway.db.session() as session:  # two failures in a row before this batch
        for _ in range(2):
            now = utcnow()
            await record_outcome(session, recovering, delivered=False, started_at=now, now=now, policy=BREAKER)

    claimed = await outbox.claim_deliveries(gateway.db, "batch", limit=10, lease=timedelta(seconds=60), **FAIR)
    outcomes = [
        outbox.Outcome(delivery.task, attempt(delivery.task.merchant_pid != failing), (30.0, 60.0))
        for delivery in claimed
    ]
    statuses = await outbox.record_attempts(gateway.db, "batch", outcomes, BREAKER)

    by_merchant = dict(zip((outcome.task.merchant_pid for outcome in outcomes), statuses, strict=True))
    assert by_merchant == {
        failing: NotifyStatus.PENDING,
        recovering: NotifyStatus.SUCCEEDED,
        healthy: NotifyStatus.SUCCEEDED,
    }
    retry, [failed_attempt] = await delivery_log(gateway, trade_nos[failing])
    assert (retry.status, retry.attempts, retry.lease_owner) == (NotifyStatus.PENDING, 1, None)
    assert retry.next_attempt_at > utcnow() + timedelta(seconds=20)
    assert retry.last_error == "non_success_body: HTTP 503 'busy'"
    assert (failed_attempt.number, failed_attempt.delivered, failed_attempt.body_head) == (1, False, "busy")
    for pid in (recovering, healthy):
        done, [delivered_attempt] = await delivery_log(gateway, trade_nos[pid])
        assert (done.status, done.attempts, done.lease_owner) == (NotifyStatus.SUCCEEDED, 1, None)
        assert done.delivered_at is not None and delivered_attempt.delivered is True
    # The failure counts against its own merchant only; a delivery ends the other's run of failures.
    assert await breaker_failures(gateway, failing) == 1
    assert await breaker_failures(gateway, recovering) == 0
    assert await breaker_failures(gateway, healthy) == 0


async def test_a_worker_that_dies_between_claim_and_record_costs_one_lease_not_a_notification(
    server, gateway, merchant, shop
) -> None:
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "CRASH-1")
    [orphan] = await outbox.claim_deliveries(gateway.db, "crashed", limit=10, lease=timedelta(seconds=0.5), **FAIR)
    assert orphan.order.trade_no == trade_no
    held, _ = await delivery_log(gateway, trade_no)

    survivor = NotifyWorker(gateway, name="survivor")
    try:
        await eventually(survivor.run_once)  # nothing to claim until the dead worker's lease runs out
        assert await survivor.run_once() == 0
    finally:
        await survivor.aclose()

    task, [logged] = await delivery_log(gateway, trade_no)
    assert (task.status, task.attempts, task.lease_owner) == (NotifyStatus.SUCCEEDED, 1, None)
    assert logged.delivered is True and logged.started_at >= held.lease_expires_at
    assert [received.params["trade_no"] for received in shop.notifications()] == [trade_no]
