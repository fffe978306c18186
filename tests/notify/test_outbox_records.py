"""What the outbox keeps of each attempt and schedules after it, what resending picks, what pruning forgets.

Attempts are recorded through the outbox itself (``claim`` then ``record_attempts``), as a worker
does, but without a worker, so each step can be looked at; times are checked against bounds
taken before and after the step, never against a clock.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from openepay.core.states import NotifyStatus
from openepay.db.models import NotifyAttempt, NotifyBreaker, NotifyTask, Order
from openepay.db.types import utcnow
from openepay.notify import outbox
from openepay.notify.breaker import BreakerPolicy
from tests.support.notify import delivery_log, paid_order

FAIR = {"merchant_cap": 8, "breaker_threshold": 50}
BREAKER = BreakerPolicy(threshold=50, cooldown=30, max_cooldown=600)
UNUSED_URL = "http://127.0.0.1:9/notify"


def failed(**fields: object) -> outbox.AttemptRecord:
    return outbox.AttemptRecord(started_at=utcnow(), target_host="127.0.0.1", latency_ms=3, delivered=False, **fields)


async def record_one(gateway, attempt: outbox.AttemptRecord, delays: tuple[float, ...]) -> NotifyStatus:  # type: ignore[no-untyped-def]
    """Claim the one due notification and record ``attempt`` for it under ``delays``."""
    [task] = await outbox.claim(gateway.db, "recorder", limit=1, lease=timedelta(seconds=60), **FAIR)
    [status] = await outbox.record_attempts(gateway.db, "recorder", [outbox.Outcome(task, attempt, delays)], BREAKER)
    return status


async def due_now(gateway) -> None:  # type: ignore[no-untyped-def]
    """The time until the next retry has passed."""
    async with gateway.db.session() as session:
        await session.execute(update(NotifyTask).values(next_attempt_at=utcnow()))


async def test_a_claim_takes_no_more_than_its_limit_and_the_next_claim_takes_the_rest(server, gateway, merchant):
    for n in range(3):
        await paid_order(server, merchant, UNUSED_URL, f"LIMIT-{n}")
    first = await outbox.claim(gateway.db, "one", limit=2, lease=timedelta(seconds=60), **FAIR)
    rest = await outbox.claim(gateway.db, "two", limit=2, lease=timedelta(seconds=60), **FAIR)
    assert (len(first), len(rest)) == (2, 1)
    assert {task.id for task in first}.isdisjoint(task.id for task in rest)


async def test_each_retry_waits_its_own_delay_and_the_attempt_after_the_last_one_gives_up(server, gateway, merchant):
    trade_no = await paid_order(server, merchant, UNUSED_URL, "SCHEDULE-1")
    for number, delay in ((1, 30), (2, 600)):
        before = utcnow()
        assert await record_one(gateway, failed(error_class="timeout"), (30, 600)) is NotifyStatus.PENDING
        after = utcnow()
        task, attempts = await delivery_log(gateway, trade_no)
        assert (task.status, task.attempts, len(attempts)) == (NotifyStatus.PENDING, number, number)
        assert before + timedelta(seconds=delay) <= task.next_attempt_at <= after + timedelta(seconds=delay)
        assert task.failed_at is None
        await due_now(gateway)

    before = utcnow()
    assert await record_one(gateway, failed(error_class="timeout"), (30, 600)) is NotifyStatus.FAILED
    task, attempts = await delivery_log(gateway, trade_no)
    assert (task.status, task.attempts, len(attempts), task.lease_owner) == (NotifyStatus.FAILED, 3, 3, None)
    assert task.failed_at is not None and before <= task.failed_at <= utcnow()


async def test_the_last_error_says_what_went_wrong_in_one_line_of_at_most_300_characters(server, gateway, merchant):
    cases = [
        (failed(), "not delivered"),
        (
            failed(error_class="timeout", error_detail="no complete answer within 3s"),
            "timeout: no complete answer within 3s",
        ),
        (failed(http_status=503), "not delivered: HTTP 503 ''"),
        (
            failed(error_class="non_success_body", http_status=200, body_head="busy"),
            "non_success_body: HTTP 200 'busy'",
        ),
        (failed(error_class="network_error", error_detail="x" * 400), "network_error: " + "x" * 285),
    ]
    for n, (attempt, expected) in enumerate(cases):
        trade_no = await paid_order(server, merchant, UNUSED_URL, f"DESCRIBE-{n}")
        await record_one(gateway, attempt, (60,))
        task, [logged] = await delivery_log(gateway, trade_no)
        assert task.last_error == expected
        assert (logged.error_class, logged.error_detail, logged.http_status, logged.body_head) == (
            attempt.error_class,
            attempt.error_detail,
            attempt.http_status,
            attempt.body_head,
        )


async def test_one_attempt_recorded_by_the_worker_holding_the_lease_settles_its_notification(server, gateway, merchant):
    trade_no = await paid_order(server, merchant, UNUSED_URL, "ONE-RECORD")
    [task] = await outbox.claim(gateway.db, "holder", limit=1, lease=timedelta(seconds=60), **FAIR)
    delivered = outbox.AttemptRecord(started_at=utcnow(), target_host="127.0.0.1", latency_ms=3, delivered=True)
    assert await outbox.record_attempt(gateway.db, task, "holder", delivered, (30,), BREAKER) is NotifyStatus.SUCCEEDED
    settled, [logged] = await delivery_log(gateway, trade_no)
    assert (settled.status, settled.attempts, settled.lease_owner) == (NotifyStatus.SUCCEEDED, 1, None)
    assert logged.delivered is True and settled.delivered_at is not None


async def test_failures_recorded_together_open_the_merchants_breaker_for_the_cooldown_from_when_they_are_recorded(
    server, gateway, merchant
):
    for n in range(2):
        await paid_order(server, merchant, UNUSED_URL, f"BREAKER-{n}")
    tasks = await outbox.claim(gateway.db, "recorder", limit=2, lease=timedelta(seconds=60), **FAIR)
    policy = BreakerPolicy(threshold=2, cooldown=120, max_cooldown=600)
    before = utcnow()
    outcomes = [outbox.Outcome(task, failed(error_class="timeout"), (60,)) for task in tasks]
    await outbox.record_attempts(gateway.db, "recorder", outcomes, policy)
    after = utcnow()
    async with gateway.db.session() as session:
        breaker = await session.scalar(select(NotifyBreaker).where(NotifyBreaker.merchant_pid == merchant.pid))
    assert (breaker.consecutive_failures, breaker.cooldown_seconds) == (2, 120)
    assert before + timedelta(seconds=120) <= breaker.open_until <= after + timedelta(seconds=120)


async def breaker_of(gateway, pid: int) -> NotifyBreaker:  # type: ignore[no-untyped-def]
    async with gateway.db.session() as session:
        return await session.scalar(select(NotifyBreaker).where(NotifyBreaker.merchant_pid == pid))


async def test_a_failed_probe_doubles_the_cooldown_and_a_delivery_after_a_failure_in_one_batch_closes_it(
    server, gateway, merchant
):
    policy = BreakerPolicy(threshold=1, cooldown=60, max_cooldown=600)
    for n in range(3):
        await paid_order(server, merchant, UNUSED_URL, f"PROBE-{n}")
    [first] = await outbox.claim(gateway.db, "recorder", limit=1, lease=timedelta(seconds=60), **FAIR)
    await outbox.record_attempts(gateway.db, "recorder", [outbox.Outcome(first, failed(), (60,))], policy)
    async with gateway.db.session() as session:  # the cooldown is over: the next claim is the probe
        await session.execute(update(NotifyBreaker).values(open_until=utcnow() - timedelta(seconds=1)))

    [probe] = await outbox.claim(
        gateway.db, "recorder", limit=3, lease=timedelta(seconds=60), merchant_cap=8, breaker_threshold=1
    )
    before = utcnow()
    await outbox.record_attempts(gateway.db, "recorder", [outbox.Outcome(probe, failed(), (60,))], policy)
    doubled = await breaker_of(gateway, merchant.pid)
    assert (doubled.consecutive_failures, doubled.cooldown_seconds) == (2, 120)
    assert before + timedelta(seconds=120) <= doubled.open_until <= utcnow() + timedelta(seconds=120)

    async with gateway.db.session() as session:
        await session.execute(update(NotifyBreaker).values(open_until=utcnow() - timedelta(seconds=1)))
    [last] = await outbox.claim(
        gateway.db, "recorder", limit=3, lease=timedelta(seconds=60), merchant_cap=8, breaker_threshold=1
    )
    delivered = outbox.AttemptRecord(started_at=utcnow(), target_host="127.0.0.1", latency_ms=3, delivered=True)
    # The probe fails and the last one goes through, recorded together in the order they finished.
    await outbox.record_attempts(
        gateway.db, "recorder", [outbox.Outcome(probe, failed(), (60,)), outbox.Outcome(last, delivered, (60,))], policy
    )
    closed = await breaker_of(gateway, merchant.pid)
    assert (closed.consecutive_failures, closed.open_until) == (0, None)


async def test_a_batch_whose_deliveries_all_went_through_clears_the_merchants_failures(server, gateway, merchant):
    for n in range(2):
        await paid_order(server, merchant, UNUSED_URL, f"CLEAR-{n}")
    failing, going_through = await outbox.claim(gateway.db, "recorder", limit=2, lease=timedelta(seconds=60), **FAIR)
    delivered = outbox.AttemptRecord(started_at=utcnow(), target_host="127.0.0.1", latency_ms=3, delivered=True)
    await outbox.record_attempts(gateway.db, "recorder", [outbox.Outcome(failing, failed(), (60,))], BREAKER)
    assert (await breaker_of(gateway, merchant.pid)).consecutive_failures == 1
    await outbox.record_attempts(gateway.db, "recorder", [outbox.Outcome(going_through, delivered, (60,))], BREAKER)
    assert (await breaker_of(gateway, merchant.pid)).consecutive_failures == 0


async def test_the_logged_host_is_cut_to_the_255_characters_its_column_holds(server, gateway, merchant):
    trade_no = await paid_order(server, merchant, UNUSED_URL, "LONG-HOST")
    await record_one(gateway, outbox.AttemptRecord(utcnow(), "h" * 300, 3, False, error_class="dns_failure"), (60,))
    _, [logged] = await delivery_log(gateway, trade_no)
    assert logged.target_host == "h" * 255


async def failed_at(gateway, trade_no: str, when) -> None:  # type: ignore[no-untyped-def]
    """The notification of ``trade_no`` gave up at ``when``."""
    order_id = select(Order.id).where(Order.trade_no == trade_no).scalar_subquery()
    async with gateway.db.session() as session:
        await session.execute(
            update(NotifyTask)
            .where(NotifyTask.order_id == order_id)
            .values(status=NotifyStatus.FAILED, failed_at=when, attempts=4, next_attempt_at=when)
        )


async def test_resending_failed_notifications_takes_those_that_gave_up_since_and_only_the_named_merchants(
    server, gateway, merchant
):
    other = await gateway.merchants.create("Other Shop")
    since = utcnow() - timedelta(hours=1)
    before_since = await paid_order(server, merchant, UNUSED_URL, "RESEND-EARLY")
    at_since = await paid_order(server, merchant, UNUSED_URL, "RESEND-AT")
    others = await paid_order(server, other, UNUSED_URL, "RESEND-OTHER")
    await failed_at(gateway, before_since, since - timedelta(seconds=1))
    await failed_at(gateway, at_since, since)
    await failed_at(gateway, others, since + timedelta(minutes=1))

    queued = utcnow()
    assert await outbox.resend_failed(gateway.db, since=since, merchant_pid=merchant.pid) == 1
    task, _ = await delivery_log(gateway, at_since)
    assert (task.status, task.attempts, task.failed_at) == (NotifyStatus.PENDING, 0, None)
    assert queued <= task.next_attempt_at <= utcnow()
    assert (await delivery_log(gateway, others))[0].status == NotifyStatus.FAILED

    assert await outbox.resend_failed(gateway.db, since=since) == 1
    assert (await delivery_log(gateway, others))[0].status == NotifyStatus.PENDING
    assert (await delivery_log(gateway, before_since))[0].status == NotifyStatus.FAILED
    assert await outbox.resend_failed(gateway.db, since=since) == 0  # nothing left that gave up since


async def log_attempts(gateway, trade_no: str, *started_and_latency) -> None:  # type: ignore[no-untyped-def]
    order_id = select(Order.id).where(Order.trade_no == trade_no).scalar_subquery()
    async with gateway.db.session() as session:
        task_id = await session.scalar(select(NotifyTask.id).where(NotifyTask.order_id == order_id))
        for number, (started_at, latency_ms) in enumerate(started_and_latency, start=1):
            session.add(
                NotifyAttempt(
                    task_id=task_id,
                    number=number,
                    started_at=started_at,
                    target_host="127.0.0.1",
                    latency_ms=latency_ms,
                    delivered=False,
                )
            )


async def test_attempt_logs_older_than_the_retention_are_forgotten_a_batch_at_a_time(server, gateway, merchant):
    trade_no = await paid_order(server, merchant, UNUSED_URL, "PRUNE-BATCH")
    cut = utcnow() - timedelta(days=30)
    old = [(cut - timedelta(minutes=m), 5) for m in (3, 2, 1)]
    await log_attempts(gateway, trade_no, *old, (cut, 5), (cut + timedelta(minutes=1), 5))

    assert [await outbox.prune_attempts(gateway.db, older_than=cut, batch=2) for _ in range(3)] == [2, 1, 0]
    task, kept = await delivery_log(gateway, trade_no)
    assert [a.started_at for a in kept] == [cut, cut + timedelta(minutes=1)]
    assert task.status == NotifyStatus.PENDING


async def test_a_notification_was_first_sent_when_its_earliest_answer_arrived(server, gateway, merchant):
    trade_no = await paid_order(server, merchant, UNUSED_URL, "SENT-1")
    silent = await paid_order(server, merchant, UNUSED_URL, "SENT-NONE")
    other = await paid_order(server, merchant, UNUSED_URL, "SENT-OTHER")
    start = utcnow() - timedelta(minutes=5)
    # Started first but answered last; started later and answered first.
    await log_attempts(gateway, trade_no, (start, 3000), (start + timedelta(seconds=1), 500))
    await log_attempts(gateway, other, (start - timedelta(minutes=1), 0))

    async with gateway.db.session() as session:
        ids = dict((await session.execute(select(Order.trade_no, Order.id))).all())
    assert await outbox.first_sent_at(gateway.db, ids[trade_no]) == start + timedelta(milliseconds=1500)
    assert await outbox.first_sent_at(gateway.db, ids[silent]) is None
