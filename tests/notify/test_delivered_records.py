"""Recording a batch of attempts: all delivered (on PostgreSQL one statement), all failed, or mixed.

Whichever way a batch is written, each notification ends as if its attempt had been recorded on
its own: its status, its attempt count, one attempt log numbered after the ones it already has,
and its merchant's breaker.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from openepay.core.states import NotifyStatus
from openepay.db.models import NotifyAttempt, NotifyBreaker
from openepay.db.types import utcnow
from openepay.notify import outbox
from openepay.notify.breaker import BreakerPolicy
from tests.support.notify import answered, delivery_log, paid_order

FAIR = {"merchant_cap": 8, "breaker_threshold": 5}
BREAKER = BreakerPolicy(threshold=5, cooldown=30, max_cooldown=600)
LEASE = timedelta(seconds=60)
URL = "http://127.0.0.1:9/notify"


async def paid_orders(server, merchant, count: int, prefix: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [await paid_order(server, merchant, URL, f"{prefix}-{n}") for n in range(count)]


async def claim_all(gateway, limit: int = 10) -> list[outbox.ClaimedTask]:  # type: ignore[no-untyped-def]
    return sorted(await outbox.claim(gateway.db, "recorder", limit=limit, lease=LEASE, **FAIR), key=lambda t: t.id)


async def breaker_of(gateway, pid: int) -> tuple[int, object] | None:  # type: ignore[no-untyped-def]
    async with gateway.db.session() as session:
        breaker = await session.get(NotifyBreaker, pid)
        return None if breaker is None else (breaker.consecutive_failures, breaker.open_until)


async def test_a_batch_all_delivered_settles_every_notification_with_one_attempt_each(server, gateway, merchant):
    trade_nos = await paid_orders(server, merchant, 5, "ALL-OK")
    claimed = await claim_all(gateway)
    before = utcnow()
    outcomes = [outbox.Outcome(task, answered(True), (30.0,)) for task in claimed]

    statuses = await outbox.record_attempts(gateway.db, "recorder", outcomes, BREAKER)

    assert statuses == [NotifyStatus.SUCCEEDED] * 5
    for trade_no in trade_nos:
        task, attempts = await delivery_log(gateway, trade_no)
        assert (task.status, task.attempts, task.lease_owner, task.lease_expires_at) == (
            NotifyStatus.SUCCEEDED,
            1,
            None,
            None,
        )
        assert task.delivered_at is not None and task.delivered_at >= before and task.last_error is None
        assert [(a.number, a.delivered, a.http_status, a.body_head, a.target_host) for a in attempts] == [
            (1, True, 200, "success", "shop.example")
        ]
    assert await claim_all(gateway) == []  # nothing delivered is handed out again


async def test_a_delivered_attempt_is_numbered_after_the_failed_ones_and_closes_the_breaker(server, gateway, merchant):
    [trade_no] = await paid_orders(server, merchant, 1, "AFTER-FAIL")
    for _ in range(2):
        [task] = await claim_all(gateway)
        await outbox.record_attempts(gateway.db, "recorder", [outbox.Outcome(task, answered(False), (0,) * 5)], BREAKER)
    assert await breaker_of(gateway, merchant.pid) == (2, None)

    [task] = await claim_all(gateway)
    await outbox.record_attempts(gateway.db, "recorder", [outbox.Outcome(task, answered(True), (0,) * 5)], BREAKER)

    settled, attempts = await delivery_log(gateway, trade_no)
    assert (settled.status, settled.attempts, settled.last_error) == (NotifyStatus.SUCCEEDED, 3, None)
    assert [(a.number, a.delivered) for a in attempts] == [(1, False), (2, False), (3, True)]
    assert await breaker_of(gateway, merchant.pid) == (0, None)


async def test_a_batch_all_failed_schedules_retries_and_gives_up_after_the_last_delay(server, gateway, merchant):
    retried, given_up = await paid_orders(server, merchant, 2, "ALL-FAIL")
    first, second = await claim_all(gateway)
    outcomes = [outbox.Outcome(first, answered(False), (60.0,)), outbox.Outcome(second, answered(False), ())]

    statuses = await outbox.record_attempts(gateway.db, "recorder", outcomes, BREAKER)

    assert statuses == [NotifyStatus.PENDING, NotifyStatus.FAILED]
    task, attempts = await delivery_log(gateway, retried)
    assert (task.status, task.attempts, task.lease_owner) == (NotifyStatus.PENDING, 1, None)
    assert task.next_attempt_at > utcnow() + timedelta(seconds=50) and task.delivered_at is None
    assert [(a.number, a.delivered) for a in attempts] == [(1, False)]
    task, attempts = await delivery_log(gateway, given_up)
    assert (task.status, task.attempts, task.delivered_at) == (NotifyStatus.FAILED, 1, None)
    assert task.failed_at is not None and [a.number for a in attempts] == [1]
    assert await breaker_of(gateway, merchant.pid) == (2, None)


async def test_a_mixed_batch_settles_the_delivered_and_retries_the_failed(server, gateway, merchant):
    trade_nos = await paid_orders(server, merchant, 4, "MIXED")
    claimed = await claim_all(gateway)
    delivered = [True, False, True, False]
    outcomes = [outbox.Outcome(task, answered(ok), (60.0,)) for task, ok in zip(claimed, delivered, strict=True)]

    statuses = await outbox.record_attempts(gateway.db, "recorder", outcomes, BREAKER)

    expected = [NotifyStatus.SUCCEEDED if ok else NotifyStatus.PENDING for ok in delivered]
    assert statuses == expected
    for trade_no, ok, status in zip(trade_nos, delivered, expected, strict=True):
        task, attempts = await delivery_log(gateway, trade_no)
        assert (task.status, task.attempts, task.lease_owner) == (status, 1, None)
        assert (task.delivered_at is not None) == ok
        assert [(a.number, a.delivered) for a in attempts] == [(1, ok)]
    # Recorded in the order they finished: the last one failed, so the breaker counts one failure.
    assert await breaker_of(gateway, merchant.pid) == (1, None)


async def test_a_delivered_batch_keeps_the_fresh_schedule_of_a_notification_resent_meanwhile(server, gateway, merchant):
    kept, resent = await paid_orders(server, merchant, 2, "RESENT")
    claimed = await claim_all(gateway)
    await outbox.resend(gateway.db, resent)
    outcomes = [outbox.Outcome(task, answered(True), (30.0,)) for task in claimed]

    await outbox.record_attempts(gateway.db, "recorder", outcomes, BREAKER)

    task, _ = await delivery_log(gateway, kept)
    assert (task.status, task.attempts) == (NotifyStatus.SUCCEEDED, 1)
    task, attempts = await delivery_log(gateway, resent)
    assert (task.status, task.attempts, task.delivered_at) == (NotifyStatus.PENDING, 0, None)
    assert [(a.number, a.delivered) for a in attempts] == [(1, True)]  # the attempt is on the record all the same
    [again] = await claim_all(gateway)  # and the resend is delivered once more, as asked
    assert again.order_id == task.order_id


async def test_every_attempt_of_a_large_delivered_batch_is_logged_once(server, gateway, merchant):
    await paid_orders(server, merchant, 30, "LARGE")
    claimed = await outbox.claim(gateway.db, "recorder", limit=50, lease=LEASE, merchant_cap=50, breaker_threshold=5)
    assert len(claimed) == 30
    outcomes = [outbox.Outcome(task, answered(True), (30.0,)) for task in claimed]

    statuses = await outbox.record_attempts(gateway.db, "recorder", outcomes, BREAKER)

    assert statuses == [NotifyStatus.SUCCEEDED] * 30
    async with gateway.db.session() as session:
        logged = (await session.execute(select(NotifyAttempt.task_id, NotifyAttempt.number))).all()
    assert sorted(logged) == sorted((task.id, 1) for task in claimed)


async def test_a_delivered_batch_logs_a_long_host_cut_to_the_255_characters_its_column_holds(server, gateway, merchant):
    """The all-delivered statement (PostgreSQL) cuts the host as the attempt log's other writer does."""
    [trade_no] = await paid_orders(server, merchant, 1, "LONG-HOST-OK")
    [task] = await claim_all(gateway)
    long_host = outbox.AttemptRecord(utcnow(), "h" * 300, 7, True, http_status=200, body_head="success")

    assert await outbox.record_attempts(gateway.db, "recorder", [outbox.Outcome(task, long_host, ())], BREAKER) == [
        NotifyStatus.SUCCEEDED
    ]
    task, [logged] = await delivery_log(gateway, trade_no)
    assert (task.status, logged.target_host) == (NotifyStatus.SUCCEEDED, "h" * 255)


async def test_a_notification_delivered_in_a_mixed_batch_no_longer_shows_its_earlier_error(server, gateway, merchant):
    """A batch with a failure in it is not the all-delivered statement on PostgreSQL: the delivered
    notification's earlier error must go all the same, or the admin shows a success with an error."""
    failed_before, failing_now = await paid_orders(server, merchant, 2, "ERROR-GOES")
    [first] = await claim_all(gateway, limit=1)
    await outbox.record_attempts(gateway.db, "recorder", [outbox.Outcome(first, answered(False), (0,) * 5)], BREAKER)
    assert (await delivery_log(gateway, failed_before))[0].last_error == "http_status: HTTP 500 'oops'"

    again, second = await claim_all(gateway)
    outcomes = [outbox.Outcome(again, answered(True), (0,) * 5), outbox.Outcome(second, answered(False), (60.0,))]
    assert await outbox.record_attempts(gateway.db, "recorder", outcomes, BREAKER) == [
        NotifyStatus.SUCCEEDED,
        NotifyStatus.PENDING,
    ]

    task, attempts = await delivery_log(gateway, failed_before)
    assert (task.status, task.attempts, task.last_error) == (NotifyStatus.SUCCEEDED, 2, None)
    assert [(a.number, a.delivered) for a in attempts] == [(1, False), (2, True)]
    assert (await delivery_log(gateway, failing_now))[0].last_error == "http_status: HTTP 500 'oops'"
