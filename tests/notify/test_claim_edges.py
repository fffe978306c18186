"""Where a claim's windows meet: what one window could not use, the next one reads, each notification once.

Notifications are made by paying sandbox orders, so they fall due in the order they were paid;
``claim`` reads them a window at a time (``outbox.CLAIM_WINDOW`` rows per slot still free).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from openepay.channels.sandbox.simulator import simulate_buyer_payment
from openepay.core.states import NotifyStatus
from openepay.db.models import NotifyTask, Order
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.notify import outbox
from openepay.notify.breaker import BreakerPolicy, record_outcome
from tests.support.orders import sandbox_order


async def _paid(gateway: Gateway, pid: int, number: str) -> int:
    """Pay an order; the id of the notification its payment queued."""
    order = await sandbox_order(gateway, pid, number)
    await simulate_buyer_payment(gateway, order.trade_no)
    async with gateway.db.session() as session:
        return await session.scalar(select(NotifyTask.id).join(Order).where(Order.trade_no == order.trade_no))


async def test_the_window_after_a_full_merchants_notification_takes_the_next_merchant_not_one_already_taken(
    gateway: Gateway,
) -> None:
    """With ``CLAIM_WINDOW`` 1 the first window (four rows for four slots) ends on a notification it
    took, with one row of a merchant at its cap left unused; the second window starts after that
    last row, so the one slot left goes to the next merchant's notification, not to the last row
    a second time."""
    first, second, third = [(await gateway.merchants.create(name)).pid for name in ("First", "Second", "Third")]
    firsts = [await _paid(gateway, first, f"F-{number}") for number in range(3)]
    seconds = await _paid(gateway, second, "S-0")
    thirds = await _paid(gateway, third, "T-0")

    claimed = await outbox.claim(
        gateway.db, "only", limit=4, lease=timedelta(seconds=30), merchant_cap=2, breaker_threshold=3
    )

    assert [task.id for task in claimed] == [*firsts[:2], seconds, thirds]


async def test_a_merchant_with_failures_below_the_threshold_keeps_every_slot_not_one_probe(gateway: Gateway) -> None:
    """Its breaker row counts the failures but is not half-open: only a breaker at the threshold probes."""
    pid = (await gateway.merchants.create("Shaky Shop")).pid
    due = [await _paid(gateway, pid, f"S-{number}") for number in range(3)]
    policy = BreakerPolicy(threshold=3, cooldown=10.0, max_cooldown=25.0)
    async with gateway.db.session() as session:
        for _ in range(policy.threshold - 1):
            await record_outcome(session, pid, delivered=False, started_at=utcnow(), now=utcnow(), policy=policy)

    claimed = await outbox.claim(
        gateway.db, "only", limit=10, lease=timedelta(seconds=30), merchant_cap=2, breaker_threshold=policy.threshold
    )

    assert [task.id for task in claimed] == due[:2]


async def test_a_merchant_whose_failures_reach_a_threshold_lowered_since_gets_one_probe(gateway: Gateway) -> None:
    """Its breaker never opened (the failures were below the threshold of the time), so it has no
    ``open_until``; with the threshold lowered to its count it is half-open: one probe, not the cap."""
    pid = (await gateway.merchants.create("Shaky Shop")).pid
    due = [await _paid(gateway, pid, f"S-{number}") for number in range(3)]
    policy = BreakerPolicy(threshold=3, cooldown=10.0, max_cooldown=25.0)
    async with gateway.db.session() as session:
        for _ in range(2):
            await record_outcome(session, pid, delivered=False, started_at=utcnow(), now=utcnow(), policy=policy)

    claimed = await outbox.claim(
        gateway.db, "only", limit=10, lease=timedelta(seconds=30), merchant_cap=2, breaker_threshold=2
    )

    assert [task.id for task in claimed] == due[:1]


async def test_claims_take_the_earliest_due_first_whatever_the_order_of_queueing_and_nothing_not_yet_due(
    gateway: Gateway,
) -> None:
    """A retry falls due after a notification queued later; one still waiting for its retry stays."""
    pid = (await gateway.merchants.create("Retrying Shop")).pid
    queued_first, queued_second, waiting = [await _paid(gateway, pid, f"R-{number}") for number in range(3)]
    now = utcnow()
    due_at = {queued_first: now - timedelta(seconds=1), queued_second: now - timedelta(seconds=2)}
    due_at[waiting] = now + timedelta(minutes=1)
    async with gateway.db.session() as session:
        for task_id, at in due_at.items():
            await session.execute(update(NotifyTask).where(NotifyTask.id == task_id).values(next_attempt_at=at))

    async def claimed(owner: str, limit: int) -> list[int]:
        tasks = await outbox.claim(
            gateway.db, owner, limit=limit, lease=timedelta(seconds=30), merchant_cap=5, breaker_threshold=3
        )
        return [task.id for task in tasks]

    assert await claimed("first", 1) == [queued_second]
    assert await claimed("second", 10) == [queued_first]


async def test_a_lease_ending_at_the_very_moment_of_a_claim_is_free_to_take_and_one_a_microsecond_later_is_not(
    gateway: Gateway,
) -> None:
    """With a cap of one, the first claim's lease fills the merchant's slot until it ends; a claim a
    microsecond before the end finds nothing, a claim at the end takes the same notification again,
    first due, and not the one queued after it."""
    pid = (await gateway.merchants.create("Leased Shop")).pid
    leased, _queued_after = [await _paid(gateway, pid, f"L-{number}") for number in range(2)]
    lease, start = timedelta(seconds=30), utcnow()

    async def claimed(owner: str, now: datetime) -> list[int]:
        tasks = await outbox.claim(
            gateway.db, owner, limit=10, lease=lease, merchant_cap=1, breaker_threshold=3, now=now
        )
        return [task.id for task in tasks]

    assert await claimed("first", start) == [leased]
    assert await claimed("second", start + lease - timedelta(microseconds=1)) == []
    assert await claimed("third", start + lease) == [leased]


async def test_a_breaker_is_half_open_at_the_very_end_of_its_cooldown_one_probe_and_shut_a_microsecond_before(
    gateway: Gateway,
) -> None:
    """The breaker opens at the failure's record for the cooldown; a claim a microsecond before its
    end takes nothing, a claim at its end takes one probe, not the merchant's cap."""
    pid = (await gateway.merchants.create("Shaky Shop")).pid
    due = [await _paid(gateway, pid, f"S-{number}") for number in range(3)]
    policy = BreakerPolicy(threshold=2, cooldown=10.0, max_cooldown=25.0)
    opened = utcnow()
    async with gateway.db.session() as session:
        for _ in range(policy.threshold):
            await record_outcome(session, pid, delivered=False, started_at=opened, now=opened, policy=policy)
    cooldown_end = opened + timedelta(seconds=policy.cooldown)

    async def claimed(owner: str, now: datetime) -> list[int]:
        tasks = await outbox.claim(
            gateway.db,
            owner,
            limit=10,
            lease=timedelta(seconds=30),
            merchant_cap=2,
            breaker_threshold=policy.threshold,
            now=now,
        )
        return [task.id for task in tasks]

    assert await claimed("early", cooldown_end - timedelta(microseconds=1)) == []
    assert await claimed("at the end", cooldown_end) == due[:1]


async def test_a_notification_falling_due_at_the_very_moment_of_a_claim_is_taken_and_not_a_microsecond_before(
    gateway: Gateway,
) -> None:
    pid = (await gateway.merchants.create("Punctual Shop")).pid
    task_id = await _paid(gateway, pid, "P-0")
    due_at = utcnow() + timedelta(minutes=1)
    async with gateway.db.session() as session:
        await session.execute(update(NotifyTask).where(NotifyTask.id == task_id).values(next_attempt_at=due_at))

    async def claimed(owner: str, now: datetime) -> list[int]:
        tasks = await outbox.claim(
            gateway.db, owner, limit=10, lease=timedelta(seconds=30), merchant_cap=5, breaker_threshold=3, now=now
        )
        return [task.id for task in tasks]

    assert await claimed("early", due_at - timedelta(microseconds=1)) == []
    assert await claimed("on time", due_at) == [task_id]


async def test_the_next_window_takes_a_notification_due_at_the_same_moment_as_the_last_row_of_the_window_before(
    gateway: Gateway,
) -> None:
    """With a cap of one, the first window (two rows for two slots) ends on the capped merchant's
    second notification; the other merchant's, queued later and due at that same moment, is read
    by the next window, which starts after that row's due time and id, not after its due time."""
    capped, other = [(await gateway.merchants.create(name)).pid for name in ("Capped", "Other")]
    first, second = [await _paid(gateway, capped, f"C-{number}") for number in range(2)]
    others = await _paid(gateway, other, "O-0")
    now = utcnow()
    due_at = {first: now - timedelta(seconds=2), second: now - timedelta(seconds=1), others: now - timedelta(seconds=1)}
    async with gateway.db.session() as session:
        for task_id, at in due_at.items():
            await session.execute(update(NotifyTask).where(NotifyTask.id == task_id).values(next_attempt_at=at))

    claimed = await outbox.claim(
        gateway.db, "only", limit=2, lease=timedelta(seconds=30), merchant_cap=1, breaker_threshold=3, now=now
    )

    assert [task.id for task in claimed] == [first, others]


async def test_the_next_window_does_not_read_again_a_notification_due_before_its_start_but_queued_after(
    gateway: Gateway,
) -> None:
    """The first window (four rows for four slots) reads the notification due first, queued last,
    then the capped merchant's three, and ends on the third, which its cap leaves unused. The next
    window starts after that row's due time (and its id only for a tie), so the slot left goes to
    the merchant due next; the one due first, whose id is higher than that row's, is not read, taken
    and counted a second time, which would end the claim one notification short."""
    capped, waiting, queued_last = [
        (await gateway.merchants.create(name)).pid for name in ("Capped", "Waiting", "Queued Last")
    ]
    cappeds = [await _paid(gateway, capped, f"C-{number}") for number in range(3)]
    waitings = await _paid(gateway, waiting, "W-0")
    due_first = await _paid(gateway, queued_last, "L-0")
    now = utcnow()
    due_at = {due_first: now - timedelta(seconds=10), waitings: now - timedelta(seconds=5)}
    due_at.update({task_id: now - timedelta(seconds=9 - number) for number, task_id in enumerate(cappeds)})
    async with gateway.db.session() as session:
        for task_id, at in due_at.items():
            await session.execute(update(NotifyTask).where(NotifyTask.id == task_id).values(next_attempt_at=at))

    claimed = await outbox.claim(
        gateway.db, "only", limit=4, lease=timedelta(seconds=30), merchant_cap=2, breaker_threshold=3, now=now
    )

    assert [task.id for task in claimed] == [*cappeds[:2], waitings, due_first]


async def test_a_later_notification_of_an_order_waits_while_an_earlier_one_is_pending_and_is_taken_once_it_is_not(
    gateway: Gateway,
) -> None:
    """Another order's notification is not held back by it; the later one is taken once the
    earlier one has settled, however many claims it waited through."""
    pid = (await gateway.merchants.create("Busy Shop")).pid
    earlier = await _paid(gateway, pid, "B-0")
    other = await _paid(gateway, pid, "B-1")
    async with gateway.db.session() as session:
        order_id = await session.scalar(select(NotifyTask.order_id).where(NotifyTask.id == earlier))
        await outbox.enqueue(session, order_id=order_id, merchant_pid=pid, event="later", now=utcnow())
        later = await session.scalar(select(func.max(NotifyTask.id)))

    async def claimed(owner: str) -> list[int]:
        tasks = await outbox.claim(
            gateway.db, owner, limit=10, lease=timedelta(microseconds=1), merchant_cap=5, breaker_threshold=3
        )
        return [task.id for task in tasks]

    assert await claimed("first") == [earlier, other]
    async with gateway.db.session() as session:
        await session.execute(
            update(NotifyTask).where(NotifyTask.id == other).values(status=NotifyStatus.SUCCEEDED.value)
        )
    assert await claimed("second") == [earlier]
    async with gateway.db.session() as session:
        await session.execute(
            update(NotifyTask).where(NotifyTask.id == earlier).values(status=NotifyStatus.SUCCEEDED.value)
        )
    assert await claimed("third") == [later]


async def test_a_merchant_with_a_backlog_far_beyond_its_cap_does_not_stop_claims_filling_up_from_the_others(
    gateway: Gateway,
) -> None:
    """Its thirty notifications fall due before anyone else's: the first claim takes its cap of
    them and fills up from the next merchants in due order; the next claim, with that merchant
    and the next two at their cap under the first claim's leases, takes the last merchant's."""
    flooding = (await gateway.merchants.create("Flooding Shop")).pid
    backlog = [await _paid(gateway, flooding, f"F-{number}") for number in range(30)]
    others = {}
    for name in ("A", "B", "C"):
        pid = (await gateway.merchants.create(f"Shop {name}")).pid
        others[name] = [await _paid(gateway, pid, f"{name}-{number}") for number in range(2)]

    async def claimed(owner: str, limit: int) -> list[int]:
        tasks = await outbox.claim(
            gateway.db, owner, limit=limit, lease=timedelta(seconds=30), merchant_cap=2, breaker_threshold=3
        )
        return [task.id for task in tasks]

    assert await claimed("first", 6) == [*backlog[:2], *others["A"], *others["B"]]
    assert await claimed("second", 4) == others["C"]
    assert await claimed("third", 4) == []


async def test_a_merchant_holding_more_leases_than_a_lowered_cap_gets_nothing_and_the_others_still_do(
    gateway: Gateway,
) -> None:
    """Three leases taken under a cap of three, then the cap lowered to two: that merchant is over
    its cap (no slot, not a negative number of them), and another merchant's notification is taken."""
    busy, other = [(await gateway.merchants.create(name)).pid for name in ("Busy", "Other")]
    busys = [await _paid(gateway, busy, f"B-{number}") for number in range(4)]
    others = await _paid(gateway, other, "O-0")

    async def claimed(owner: str, cap: int, limit: int) -> list[int]:
        tasks = await outbox.claim(
            gateway.db, owner, limit=limit, lease=timedelta(seconds=30), merchant_cap=cap, breaker_threshold=3
        )
        return [task.id for task in tasks]

    assert await claimed("first", 3, 3) == busys[:3]
    assert await claimed("second", 2, 5) == [others]
