"""Attempts recorded together (``outbox.record_attempts``): each notification ends as if recorded alone."""

from __future__ import annotations

from datetime import timedelta

from openepay.core.states import NotifyStatus
from openepay.db.types import utcnow
from openepay.notify import outbox
from openepay.notify.breaker import BreakerPolicy
from tests.support.notify import delivery_log, paid_order

FAIR = {"merchant_cap": 8, "breaker_threshold": 5}
BREAKER = BreakerPolicy(threshold=5, cooldown=30, max_cooldown=600)


def attempt(delivered: bool) -> outbox.AttemptRecord:
    if delivered:
        return outbox.AttemptRecord(started_at=utcnow(), target_host="127.0.0.1", latency_ms=3, delivered=True)
    return outbox.AttemptRecord(
        started_at=utcnow(),
        target_host="127.0.0.1",
        latency_ms=3,
        delivered=False,
        http_status=500,
        body_head="oops",
        error_class="http_status",
    )


async def test_one_batch_delivers_retries_gives_up_and_spares_a_requeued_one(server, gateway, merchant):
    url = "http://127.0.0.1:9/notify"
    trade_nos = [await paid_order(server, merchant, url, f"BATCH-{n}") for n in range(4)]
    claimed = await outbox.claim(gateway.db, "batcher", limit=10, lease=timedelta(seconds=60), **FAIR)
    assert len(claimed) == 4
    by_trade = dict(zip(trade_nos, sorted(claimed, key=lambda task: task.id), strict=True))
    # The last one is re-queued by an operator while its attempt is in flight.
    await outbox.resend(gateway.db, trade_nos[3])
    outcomes = [
        outbox.Outcome(by_trade[trade_nos[0]], attempt(True), (0.3, 0.6)),
        outbox.Outcome(by_trade[trade_nos[1]], attempt(False), (30.0, 60.0)),
        outbox.Outcome(by_trade[trade_nos[2]], attempt(False), ()),
        outbox.Outcome(by_trade[trade_nos[3]], attempt(False), (0.3,)),
    ]
    statuses = await outbox.record_attempts(gateway.db, "batcher", outcomes, BREAKER)
    assert statuses == [NotifyStatus.SUCCEEDED, NotifyStatus.PENDING, NotifyStatus.FAILED, NotifyStatus.PENDING]

    delivered, delivered_attempts = await delivery_log(gateway, trade_nos[0])
    assert (delivered.status, delivered.attempts, delivered.lease_owner) == (NotifyStatus.SUCCEEDED, 1, None)
    assert [(a.number, a.delivered) for a in delivered_attempts] == [(1, True)]

    retry, retry_attempts = await delivery_log(gateway, trade_nos[1])
    assert (retry.status, retry.attempts, retry.lease_owner) == (NotifyStatus.PENDING, 1, None)
    assert retry.next_attempt_at > utcnow() + timedelta(seconds=20)
    assert retry.last_error == "http_status: HTTP 500 'oops'" and [a.number for a in retry_attempts] == [1]

    given_up, _ = await delivery_log(gateway, trade_nos[2])
    assert (given_up.status, given_up.attempts) == (NotifyStatus.FAILED, 1) and given_up.failed_at is not None

    requeued, requeued_attempts = await delivery_log(gateway, trade_nos[3])
    assert (requeued.status, requeued.attempts, requeued.last_error) == (NotifyStatus.PENDING, 0, None)
    assert [a.number for a in requeued_attempts] == [1]  # the attempt is on the record all the same


async def test_attempt_numbers_go_on_from_the_ones_already_logged(server, gateway, merchant):
    trade_no = await paid_order(server, merchant, "http://127.0.0.1:9/notify", "BATCH-N")
    for expected in (1, 2, 3):
        [task] = await outbox.claim(gateway.db, "batcher", limit=1, lease=timedelta(seconds=60), **FAIR)
        await outbox.record_attempts(gateway.db, "batcher", [outbox.Outcome(task, attempt(False), (0,) * 5)], BREAKER)
        _, attempts = await delivery_log(gateway, trade_no)
        assert [a.number for a in attempts] == list(range(1, expected + 1))


async def test_a_notification_given_up_first_in_a_batch_fails_alone_and_keeps_its_error(server, gateway, merchant):
    """Giving up one notification must touch that one only, whatever comes after it in the batch."""
    url = "http://127.0.0.1:9/notify"
    trade_nos = [await paid_order(server, merchant, url, f"GIVEUP-{n}") for n in range(3)]
    claimed = await outbox.claim(gateway.db, "batcher", limit=10, lease=timedelta(seconds=60), **FAIR)
    by_trade = dict(zip(trade_nos, sorted(claimed, key=lambda task: task.id), strict=True))
    outcomes = [
        outbox.Outcome(by_trade[trade_nos[0]], attempt(False), ()),
        outbox.Outcome(by_trade[trade_nos[1]], attempt(False), (30.0,)),
        outbox.Outcome(by_trade[trade_nos[2]], attempt(True), ()),
    ]
    statuses = await outbox.record_attempts(gateway.db, "batcher", outcomes, BREAKER)

    assert statuses == [NotifyStatus.FAILED, NotifyStatus.PENDING, NotifyStatus.SUCCEEDED]
    given_up, _ = await delivery_log(gateway, trade_nos[0])
    assert (given_up.status, given_up.last_error) == (NotifyStatus.FAILED, "http_status: HTTP 500 'oops'")
    retry, _ = await delivery_log(gateway, trade_nos[1])
    assert (retry.status, retry.failed_at) == (NotifyStatus.PENDING, None)
    delivered, _ = await delivery_log(gateway, trade_nos[2])
    assert delivered.status == NotifyStatus.SUCCEEDED
