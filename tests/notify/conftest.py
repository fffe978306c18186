"""The notify tests start from an empty memory of judged hosts and addresses.

``read_target`` and ``address_block_reason`` remember their answers (lru caches). mutmut switches
a mutant on in a test process forked after the tests first ran there: an answer remembered from
before the switch would be handed back without the mutated code ever running, and the mutant
would survive every test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openepay.notify import addresses, targets


@pytest.fixture(autouse=True)
def nothing_remembered_from_earlier_tests() -> Iterator[None]:
    addresses.address_block_reason.cache_clear()
    targets._read_host.cache_clear()
    yield
