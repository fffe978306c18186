"""Sign-in attempts (the console's and the merchant portal's) are kept only as long as the lockout needs them, and
pruned by the worker's sweep."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from openepay.admin.users import prune_login_attempts
from openepay.db.models import AdminLoginAttempt, MerchantLoginAttempt
from openepay.db.types import utcnow
from openepay.notify.worker import NotifyWorker
from openepay.web.admin.console import Console


async def _attempts(gateway, *ages_minutes: float, username: str = "ada", succeeded: bool = False) -> None:  # type: ignore[no-untyped-def]
    now = utcnow()
    async with gateway.db.session() as session:
        session.add_all(
            AdminLoginAttempt(
                at=now - timedelta(minutes=age), address="10.0.0.9", username=username, succeeded=succeeded
            )
            for age in ages_minutes
        )


async def _ages(gateway) -> list[int]:  # type: ignore[no-untyped-def]
    now = utcnow()
    async with gateway.db.session() as session:
        moments = (await session.scalars(select(AdminLoginAttempt.at))).all()
    return sorted(round((now - at).total_seconds() / 60) for at in moments)


async def test_the_sweep_deletes_attempts_older_than_the_lock_window_and_the_lock_still_holds(gateway):
    lock = gateway.settings.admin_lock_minutes
    users = Console.for_gateway(gateway).users
    # Locked now by recent failures; older failures and an old success are past the window.
    await _attempts(gateway, *[1] * users.policy.per_user)
    await _attempts(gateway, lock + 5, lock + 60, 60 * 24 * 40)
    await _attempts(gateway, lock + 2, succeeded=True)
    assert await users.locked("ada", "10.0.0.1")

    worker = NotifyWorker(gateway, name="sweeper")
    try:
        await worker.sweep()
    finally:
        await worker.aclose()
    assert await _ages(gateway) == [1] * users.policy.per_user
    assert await users.locked("ada", "10.0.0.1")


async def test_pruning_goes_in_bounded_batches_and_the_rest_waits_for_the_next_sweep(gateway):
    await _attempts(gateway, *[30 + i for i in range(25)], username="mallory")
    await _attempts(gateway, 2, username="mallory")
    cutoff = utcnow() - timedelta(minutes=15)
    assert await prune_login_attempts(gateway.db, older_than=cutoff, batch=10, batches=2) == 20
    async with gateway.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(AdminLoginAttempt)) == 6
    assert await prune_login_attempts(gateway.db, older_than=cutoff, batch=10, batches=2) == 5
    assert await prune_login_attempts(gateway.db, older_than=cutoff, batch=10, batches=2) == 0
    assert await _ages(gateway) == [2]


async def test_the_sweep_also_prunes_the_merchant_portals_attempts(gateway):
    now = utcnow()
    async with gateway.db.session() as session:
        session.add_all(
            MerchantLoginAttempt(at=now - timedelta(minutes=age), address="10.0.0.9", username="shop", succeeded=False)
            for age in (1, 2, 60, 120)
        )
    worker = NotifyWorker(gateway, name="sweeper")
    try:
        await worker.sweep()
    finally:
        await worker.aclose()
    async with gateway.db.session() as session:
        kept = (await session.scalars(select(MerchantLoginAttempt.at))).all()
    assert sorted(round((now - at).total_seconds() / 60) for at in kept) == [1, 2]
