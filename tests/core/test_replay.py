"""A signed request is taken once inside its replay window; the worker forgets the nonces whose window is over."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from openepay.core.replay import first_sighting, forget_expired
from openepay.db.models import RequestNonce
from openepay.db.types import utcnow

WINDOW = timedelta(minutes=5)


async def remembered(gateway) -> list[tuple[str, str]]:
    async with gateway.db.session() as session:
        rows = await session.execute(select(RequestNonce.scope, RequestNonce.nonce).order_by(RequestNonce.nonce))
        return [tuple(row) for row in rows]


async def expiry(gateway, nonce: str):
    async with gateway.db.session() as session:
        return await session.scalar(select(RequestNonce.expires_at).where(RequestNonce.nonce == nonce))


async def test_a_nonce_is_taken_once_per_scope_within_its_window(gateway):
    assert await first_sighting(gateway.db, "epay_v2:pay:1000", "sig-1", WINDOW) is True
    assert await first_sighting(gateway.db, "epay_v2:pay:1000", "sig-1", WINDOW) is False
    assert await first_sighting(gateway.db, "epay_v2:pay:1001", "sig-1", WINDOW) is True


async def test_a_nonce_whose_window_is_over_is_taken_again(gateway):
    assert await first_sighting(gateway.db, "scope", "sig-1", timedelta(seconds=-1)) is True
    assert await first_sighting(gateway.db, "scope", "sig-1", WINDOW) is True
    assert await first_sighting(gateway.db, "scope", "sig-1", WINDOW) is False


async def test_forgetting_removes_the_nonces_whose_window_ended_at_or_before_now(gateway):
    await first_sighting(gateway.db, "scope", "ended", timedelta(hours=-1))
    await first_sighting(gateway.db, "scope", "live", WINDOW)
    ended_at = await expiry(gateway, "ended")

    # A moment before the first window ends, nothing is forgotten; at its very end, it is.
    assert await forget_expired(gateway.db, ended_at - timedelta(microseconds=1)) == 0
    assert await remembered(gateway) == [("scope", "ended"), ("scope", "live")]
    assert await forget_expired(gateway.db, ended_at) == 1
    assert await remembered(gateway) == [("scope", "live")]


async def test_forgetting_without_a_time_uses_the_clock(gateway):
    await first_sighting(gateway.db, "scope", "ended", timedelta(seconds=-1))
    await first_sighting(gateway.db, "scope", "live", WINDOW)
    assert await forget_expired(gateway.db) == 1
    assert await remembered(gateway) == [("scope", "live")]
    assert await forget_expired(gateway.db, utcnow() - timedelta(days=1)) == 0


async def test_a_sighting_clears_only_its_own_expired_copy_and_leaves_the_rest_to_the_worker(gateway):
    ended = timedelta(hours=-1)
    await first_sighting(gateway.db, "a", "n", ended)
    await first_sighting(gateway.db, "b", "m", ended)
    await first_sighting(gateway.db, "b", "n", ended)

    assert await first_sighting(gateway.db, "b", "n", WINDOW) is True
    assert await forget_expired(gateway.db) == 2
    assert await remembered(gateway) == [("b", "n")]
