"""Batches of notifications that were tried before: each keeps its own history.

The attempt log is how an operator reads a notification's history (attempt 1, 2, 3...): a batch
mixing notifications that were each tried a different number of times must not count one's
attempts for another. On PostgreSQL a batch whose deliveries all went through is one statement of
its own: these batches hold failures, so both databases run the same statements.
"""

from __future__ import annotations

from datetime import timedelta

from openepay.db.types import utcnow
from openepay.notify import outbox
from openepay.notify.breaker import BreakerPolicy
from tests.support.notify import delivery_log, paid_order

FAIR = {"merchant_cap": 8, "breaker_threshold": 50}
BREAKER = BreakerPolicy(threshold=50, cooldown=30, max_cooldown=600)
RETRY_AT_ONCE = (0.0, 0.0, 0.0)


def failed() -> outbox.AttemptRecord:
    return outbox.AttemptRecord(
        started_at=utcnow(), target_host="127.0.0.1", latency_ms=3, delivered=False, error_class="connect_failure"
    )


async def test_a_batch_numbers_each_attempt_after_its_own_notifications_earlier_ones(server, gateway, merchant):
    trade_nos = [await paid_order(server, merchant, "http://127.0.0.1:9/notify", f"NUMBERED-{n}") for n in range(2)]
    for owner, limit in (("first", 2), ("second", 1)):  # both tried once, then one of them again
        claimed = await outbox.claim(gateway.db, owner, limit=limit, lease=timedelta(seconds=60), **FAIR)
        outcomes = [outbox.Outcome(task, failed(), RETRY_AT_ONCE) for task in claimed]
        await outbox.record_attempts(gateway.db, owner, outcomes, BREAKER)
    before = {trade_no: len((await delivery_log(gateway, trade_no))[1]) for trade_no in trade_nos}
    assert sorted(before.values()) == [1, 2]

    claimed = await outbox.claim(gateway.db, "batch", limit=2, lease=timedelta(seconds=60), **FAIR)
    assert len(claimed) == 2
    await outbox.record_attempts(
        gateway.db, "batch", [outbox.Outcome(task, failed(), RETRY_AT_ONCE) for task in claimed], BREAKER
    )

    for trade_no in trade_nos:
        _, attempts = await delivery_log(gateway, trade_no)
        assert [a.number for a in attempts] == list(range(1, before[trade_no] + 2))
