"""A record changes only the notifications its worker still holds, and only the ones it names.

A worker's lease can run out while its delivery is still in flight (a slow shop, a stalled
worker); another worker then leases the notification again and delivers it itself. The first
worker's late record must not settle, fail or release what is now the second worker's: the
notification stays the second worker's, pending, with its lease, and only the late attempt is
logged. Giving up one notification must not touch the worker's other notifications still in
flight. Each test records through ``record_attempts`` as the worker does, in mixed batches so that
PostgreSQL takes the same statements as SQLite (a batch all delivered is one statement there).
"""

from __future__ import annotations

from datetime import timedelta

from openepay.core.states import NotifyStatus
from openepay.db.types import utcnow
from openepay.notify import outbox
from openepay.notify.breaker import BreakerPolicy
from tests.support.notify import answered, delivery_log, paid_order

FAIR = {"merchant_cap": 8, "breaker_threshold": 50}
BREAKER = BreakerPolicy(threshold=50, cooldown=30, max_cooldown=600)
LEASE = timedelta(seconds=60)
URL = "http://127.0.0.1:9/notify"
RETRIES = (30.0, 60.0)


async def leased_again(gateway, count: int):  # type: ignore[no-untyped-def]
    """Worker "early" leases ``count`` notifications; its lease runs out and worker "late" leases them
    again. Both claims' tasks, in id order, and the moment the second lease ends."""
    start = utcnow()
    early = await outbox.claim(gateway.db, "early", limit=count, lease=LEASE, now=start, **FAIR)
    later = start + LEASE + timedelta(seconds=1)
    late = await outbox.claim(gateway.db, "late", limit=count, lease=LEASE, now=later, **FAIR)
    by_id = lambda task: task.id  # noqa: E731
    early, late = sorted(early, key=by_id), sorted(late, key=by_id)
    assert len(early) == count and [t.id for t in early] == [t.id for t in late]
    return early, late, later + LEASE


async def test_a_late_delivery_record_from_a_worker_whose_lease_ran_out_leaves_the_new_lease_alone(
    server, gateway, merchant
):
    trade_nos = [await paid_order(server, merchant, URL, f"LATE-OK-{n}") for n in range(2)]
    early, late, lease_ends = await leased_again(gateway, 2)

    statuses = await outbox.record_attempts(
        gateway.db,
        "early",
        [outbox.Outcome(early[0], answered(True), RETRIES), outbox.Outcome(early[1], answered(False), RETRIES)],
        BREAKER,
    )

    assert statuses == [NotifyStatus.SUCCEEDED, NotifyStatus.PENDING]  # what the early worker reports
    for trade_no, delivered in zip(trade_nos, (True, False), strict=True):
        task, attempts = await delivery_log(gateway, trade_no)
        assert (task.status, task.attempts, task.delivered_at, task.last_error) == (NotifyStatus.PENDING, 0, None, None)
        assert (task.lease_owner, task.lease_expires_at) == ("late", lease_ends)
        assert [(a.number, a.delivered) for a in attempts] == [
            (1, delivered)
        ]  # the late attempt is logged all the same

    # The worker holding the lease now settles it, its attempt numbered after the late one.
    await outbox.record_attempts(
        gateway.db,
        "late",
        [outbox.Outcome(late[0], answered(True), RETRIES), outbox.Outcome(late[1], answered(False), RETRIES)],
        BREAKER,
    )
    task, attempts = await delivery_log(gateway, trade_nos[0])
    assert (task.status, task.attempts, task.lease_owner) == (NotifyStatus.SUCCEEDED, 1, None)
    assert [(a.number, a.delivered) for a in attempts] == [(1, True), (2, True)]


async def test_a_late_give_up_from_a_worker_whose_lease_ran_out_leaves_the_new_lease_alone(server, gateway, merchant):
    trade_nos = [await paid_order(server, merchant, URL, f"LATE-FAIL-{n}") for n in range(2)]
    early, late, lease_ends = await leased_again(gateway, 2)

    statuses = await outbox.record_attempts(
        gateway.db,
        "early",
        [outbox.Outcome(early[0], answered(False), ()), outbox.Outcome(early[1], answered(True), RETRIES)],
        BREAKER,
    )

    assert statuses == [NotifyStatus.FAILED, NotifyStatus.SUCCEEDED]
    task, attempts = await delivery_log(gateway, trade_nos[0])
    assert (task.status, task.attempts, task.failed_at, task.last_error) == (NotifyStatus.PENDING, 0, None, None)
    assert (task.lease_owner, task.lease_expires_at) == ("late", lease_ends)
    assert [(a.number, a.delivered) for a in attempts] == [(1, False)]

    # The worker holding the lease now tries again, under a schedule that still has retries left.
    await outbox.record_attempts(gateway.db, "late", [outbox.Outcome(late[0], answered(False), RETRIES)], BREAKER)
    task, attempts = await delivery_log(gateway, trade_nos[0])
    assert (task.status, task.attempts, task.failed_at, task.lease_owner) == (NotifyStatus.PENDING, 1, None, None)
    assert [a.number for a in attempts] == [1, 2]


async def test_giving_up_one_notification_leaves_the_workers_others_in_flight_as_they_are(server, gateway, merchant):
    trade_nos = [await paid_order(server, merchant, URL, f"ONE-FAILS-{n}") for n in range(3)]
    start = utcnow()
    claimed = sorted(
        await outbox.claim(gateway.db, "worker", limit=3, lease=LEASE, now=start, **FAIR), key=lambda task: task.id
    )
    assert len(claimed) == 3

    statuses = await outbox.record_attempts(
        gateway.db, "worker", [outbox.Outcome(claimed[0], answered(False), ())], BREAKER
    )

    assert statuses == [NotifyStatus.FAILED]
    given_up, _ = await delivery_log(gateway, trade_nos[0])
    assert (given_up.status, given_up.attempts, given_up.lease_owner) == (NotifyStatus.FAILED, 1, None)
    for trade_no in trade_nos[1:]:
        task, attempts = await delivery_log(gateway, trade_no)
        assert (task.status, task.attempts, task.failed_at, task.last_error) == (NotifyStatus.PENDING, 0, None, None)
        assert (task.lease_owner, task.lease_expires_at, attempts) == ("worker", start + LEASE, [])

    # Their deliveries finish and are recorded as usual.
    outcomes = [outbox.Outcome(claimed[1], answered(True), RETRIES), outbox.Outcome(claimed[2], answered(False), ())]
    await outbox.record_attempts(gateway.db, "worker", outcomes, BREAKER)
    assert (await delivery_log(gateway, trade_nos[1]))[0].status == NotifyStatus.SUCCEEDED
    assert (await delivery_log(gateway, trade_nos[2]))[0].status == NotifyStatus.FAILED
