"""Routing across channel accounts: filters, strategies, daily caps under concurrency, health and fallback.

Orders go through ``Gateway.start_payment``, the path every dialect takes; accounts are stored
ones of the sandbox (which makes offers instantly) or of ``epay_upstream`` pointed at fake
upstreams that take, refuse or break on cue.
"""

from __future__ import annotations

import asyncio
import math
import random
import socket
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from openepay.channels.base import ChannelRefused, RefusalReason
from openepay.core.checkout import NoChannel
from openepay.core.orders import place_order
from openepay.db.models import ChannelAccountRecord, ChannelAccountUsage, Order
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.notify.worker import NotifyWorker
from tests.support.fake_epay import FakeEpay
from tests.support.orders import new_order
from tests.support.settings import make_settings
from tests.support.waiting import eventually

BASE = "http://gateway.test"


async def account(gateway: Gateway, name: str, channel: str = "sandbox", config=None, **rules) -> int:  # type: ignore[no-untyped-def]
    record = await gateway.accounts.add(channel, name, config or {})
    if rules:
        await gateway.accounts.set_rules(name, rules)
    return record.id


async def order(gateway: Gateway, pid: int, number: str, amount_fen: int = 100, **start) -> Order:  # type: ignore[no-untyped-def]
    placed = await place_order(
        gateway.db,
        new_order(pid, number, amount_fen=amount_fen, money=f"{amount_fen / 100:.2f}"),
        timeout=timedelta(minutes=30),
        reopen_identical=True,
    )
    options = {"pay_type": "alipay", "device": "pc", **start}
    return await gateway.start_payment(placed.order, request_base_url=BASE, **options)


async def names_of(gateway: Gateway, orders: list[Order]) -> list[str]:
    async with gateway.db.session() as session:
        names = dict((await session.execute(select(ChannelAccountRecord.id, ChannelAccountRecord.name))).all())
    return [names.get(o.channel_account_id, "built-in") for o in orders]


async def usage_of(gateway: Gateway, account_id: int) -> tuple[int, int]:
    async with gateway.db.session() as session:
        row = await session.scalar(select(ChannelAccountUsage).where(ChannelAccountUsage.account_id == account_id))
    return (row.amount_fen, row.count) if row else (0, 0)


@pytest.fixture
def upstreams() -> Iterator[dict[str, FakeEpay]]:
    fakes = {behaviour: FakeEpay(behaviour=behaviour).start() for behaviour in ("ok", "refuse", "broken")}
    yield fakes
    for fake in fakes.values():
        fake.stop()


def closed_port_url() -> str:
    """An address where nothing listens: a connection there is refused before anything is sent."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


async def test_caps_never_overshoot_under_many_concurrent_orders(gateway, merchant):
    capped = await account(gateway, "capped", priority=2, daily_amount_fen=500)
    counted = await account(gateway, "counted", priority=1, daily_count=3)
    await account(gateway, "spare")

    orders = await asyncio.gather(*(order(gateway, merchant.pid, f"C-{n}") for n in range(40)))

    taken = Counter(await names_of(gateway, orders))
    assert taken == {"capped": 5, "counted": 3, "spare": 32}
    assert await usage_of(gateway, capped) == (500, 5)
    assert await usage_of(gateway, counted) == (300, 3)


async def test_an_amount_over_the_cap_goes_elsewhere_and_a_refusal_gives_its_count_back(gateway, merchant):
    small = await account(gateway, "small", priority=1, daily_amount_fen=1000)
    await account(gateway, "big")
    [over] = [await order(gateway, merchant.pid, "BIG", amount_fen=1500)]
    assert (await names_of(gateway, [over])) == ["big"]

    # 7.02 makes every sandbox account refuse: each counted it, and each gives it back.
    with pytest.raises(ChannelRefused) as refused:
        await order(gateway, merchant.pid, "PAUSED", amount_fen=702)
    assert refused.value.reason == RefusalReason.PAUSED
    assert await usage_of(gateway, small) == (0, 0)


async def test_an_order_closed_unpaid_gives_its_amount_back_to_the_cap(gateway, merchant):
    capped = await account(gateway, "capped", priority=1, daily_amount_fen=100)
    await account(gateway, "spare")
    first = await order(gateway, merchant.pid, "F-1")
    second = await order(gateway, merchant.pid, "F-2")
    assert await names_of(gateway, [first, second]) == ["capped", "spare"]

    async with gateway.db.session() as session:
        await session.execute(update(Order).where(Order.id == first.id).values(expires_at=utcnow()))
    await NotifyWorker(gateway, name="sweeper").sweep()
    assert await usage_of(gateway, capped) == (0, 0)
    third = await order(gateway, merchant.pid, "F-3")
    assert await names_of(gateway, [third]) == ["capped"]


async def test_weighted_routing_shares_orders_in_proportion_to_the_weights(database_url, merchant):
    weights = {"w1": 1, "w3": 3, "w6": 6}
    gateway = Gateway.from_settings(make_settings(database_url, routing_strategy="weighted"))
    gateway.router.rng = random.Random(20261201)
    try:
        for name, weight in weights.items():
            await account(gateway, name, weight=weight)
        total = 400
        orders = [await order(gateway, merchant.pid, f"W-{n}") for n in range(total)]
        taken = Counter(await names_of(gateway, orders))
    finally:
        await gateway.aclose()
    for name, weight in weights.items():
        share = weight / sum(weights.values())
        # Six standard deviations of a binomial count: one run in 500 million would fall outside.
        bound = 6 * math.sqrt(total * share * (1 - share))
        assert abs(taken[name] - total * share) <= bound, (name, taken)


async def test_round_robin_takes_turns_and_priority_comes_first(database_url, merchant):
    gateway = Gateway.from_settings(make_settings(database_url, routing_strategy="round_robin"))
    try:
        await account(gateway, "a")
        await account(gateway, "b")
        await account(gateway, "c")
        turns = [await order(gateway, merchant.pid, f"R-{n}") for n in range(6)]
        assert await names_of(gateway, turns) == ["a", "b", "c", "a", "b", "c"]
        await account(gateway, "first", priority=5)
        assert await names_of(gateway, [await order(gateway, merchant.pid, "R-P")]) == ["first"]
    finally:
        await gateway.aclose()


async def test_filters_and_the_record_of_why(gateway, merchant):
    await account(gateway, "off", priority=9)
    await gateway.accounts.set_enabled("off", False)
    await account(gateway, "wx-only", priority=8, pay_types=["wxpay"])
    await account(gateway, "phones", priority=7, devices=["mobile"])
    await account(gateway, "big-only", priority=6, min_fen=10_000)
    await account(gateway, "small-only", priority=5, max_fen=50)
    await account(gateway, "fallback", priority=4)

    chosen = await order(gateway, merchant.pid, "WHY")
    assert await names_of(gateway, [chosen]) == ["fallback"]
    record = {entry["account"]: (entry["outcome"], entry["reason"]) for entry in chosen.routing["considered"]}
    assert record["off"] == ("skipped", "disabled")
    assert record["wx-only"] == ("skipped", "does not take alipay")
    assert record["phones"] == ("skipped", "does not take device pc")
    assert record["big-only"] == ("skipped", "below its minimum 100.00")
    assert record["small-only"] == ("skipped", "above its maximum 0.50")
    assert record["fallback"][0] == "chosen"
    assert chosen.routing["strategy"] == "priority"

    mobile = await order(gateway, merchant.pid, "WHY-M", device="mobile")
    assert await names_of(gateway, [mobile]) == ["phones"]


async def test_a_merchant_limited_to_pay_types_and_accounts(gateway, merchant):
    await account(gateway, "a", priority=1)
    b = await account(gateway, "b")
    await gateway.merchants.update(merchant.pid, pay_types=["wxpay"], channel_accounts=[b])
    with pytest.raises(NoChannel):
        await order(gateway, merchant.pid, "NO-ALIPAY")
    taken = await order(gateway, merchant.pid, "WX", pay_type="wxpay")
    assert await names_of(gateway, [taken]) == ["b"]
    assert await gateway.router.pay_types_for(merchant.pid) == ["wxpay"]


async def test_fallback_only_past_accounts_that_surely_created_nothing(gateway, merchant, upstreams):
    await account(gateway, "dead", "epay_upstream", {"api_url": closed_port_url(), "pid": "1", "key": "k"}, priority=3)
    await account(gateway, "refusing", "epay_upstream", upstreams["refuse"].account_config(), priority=2)
    await account(gateway, "good", "epay_upstream", upstreams["ok"].account_config(), priority=1)

    taken = await order(gateway, merchant.pid, "FB-1")
    assert await names_of(gateway, [taken]) == ["good"]
    assert [entry["outcome"] for entry in taken.routing["considered"]][-3:] == ["refused", "refused", "chosen"]
    assert taken.channel_trade_no == "UP000001"
    assert taken.qrcode == "https://qr.upstream.test/UP000001"
    [relayed] = upstreams["ok"].orders
    assert (relayed["out_trade_no"], relayed["money"]) == (taken.trade_no, "1.00")
    assert relayed["notify_url"] == f"{BASE}/channels/epay_upstream/{taken.channel_account_id}/notify"

    # An upstream that may have taken the order ends the attempt: a second upstream order could be paid twice.
    await account(gateway, "broken", "epay_upstream", upstreams["broken"].account_config(), priority=4)
    with pytest.raises(ChannelRefused) as failed:
        await order(gateway, merchant.pid, "FB-2")
    assert failed.value.reason == RefusalReason.UPSTREAM_ERROR
    assert len(upstreams["broken"].orders) == 1
    assert len(upstreams["ok"].orders) == 1
    async with gateway.db.session() as session:
        unoffered = await session.scalar(select(Order).where(Order.out_trade_no == "FB-2"))
    assert (unoffered.status, unoffered.channel) == ("created", None)


async def test_an_account_that_keeps_failing_is_left_alone_for_a_while(gateway, merchant):
    await account(gateway, "dead", "epay_upstream", {"api_url": closed_port_url(), "pid": "1", "key": "k"}, priority=1)
    await account(gateway, "steady")
    threshold = gateway.settings.channel_failure_threshold
    for n in range(threshold):
        taken = await order(gateway, merchant.pid, f"H-{n}")
        assert taken.routing["considered"][0]["outcome"] == "refused"
    after = await order(gateway, merchant.pid, "H-after")
    [dead] = [entry for entry in after.routing["considered"] if entry["account"] == "dead"]
    assert dead["outcome"] == "skipped" and dead["reason"].startswith("upstream kept failing")
    assert await names_of(gateway, [after]) == ["steady"]

    # The operator switching it on again forgets the failures.
    await gateway.accounts.set_enabled("dead", True)
    again = await order(gateway, merchant.pid, "H-again")
    assert again.routing["considered"][0]["outcome"] == "refused"


async def test_accounts_are_cached_per_process_and_changes_reach_other_processes(database_url, gateway, merchant):
    cached = Gateway.from_settings(make_settings(database_url, routing_cache_seconds=0.5))
    try:
        await account(cached, "a")
        # A change made through this process is seen at once.
        assert await names_of(cached, [await order(cached, merchant.pid, "K-1")]) == ["a"]
        await cached.accounts.set_enabled("a", False)
        with pytest.raises(NoChannel):  # the built-in sandbox account stepped aside when "a" was stored
            await order(cached, merchant.pid, "K-2")

        # One made by another process (the command line) is seen once the cache has aged.
        await account(gateway, "b")
        numbers = iter(range(100))

        async def routed_to_b() -> bool:
            try:
                taken = await order(cached, merchant.pid, f"K-3-{next(numbers)}")
            except NoChannel:  # still its own copy: "a" alone, switched off
                return False
            return await names_of(cached, [taken]) == ["b"]

        await eventually(routed_to_b, interval=0.1)
    finally:
        await cached.aclose()
