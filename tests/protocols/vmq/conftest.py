"""Fixtures for V免签: the merchant's own shop, checking notifications with the merchant's key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.shop import Answer
from tests.support.vmq import VmqShop


@pytest.fixture
def vmq_shop(merchant) -> Iterator:  # type: ignore[no-untyped-def]
    """Start V免签 shops answering from a script; ``key`` defaults to the ``merchant`` fixture's."""
    shops: list[VmqShop] = []

    def start(*answers: Answer, delay: float = 0.0, key: str | None = None) -> VmqShop:
        shop = VmqShop(key or merchant.key, answers, delay).start()
        shops.append(shop)
        return shop

    yield start
    for shop in shops:
        shop.stop()
