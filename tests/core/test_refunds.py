"""Refunds: the reservation, the channel's answer, and undoing what the channel refused.

Orders are placed and paid the way a shop and a buyer do it (``mapi.php``, the sandbox's
simulated upstream); refunds go through ``api.php`` where a merchant can see the result, and
through ``refund_order`` where the test needs to decide what the upstream answers.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select, update

from openepay.channels.base import Channel, RefundOutcome
from openepay.core.orders import get_order
from openepay.core.refunds import RefundError, RefundProblem, ask_channel, refund_order, resolve_refund
from openepay.core.states import OrderStatus
from openepay.db.models import BalanceEntry, Merchant, Order, Refund
from tests.support.epay import order_params, signed
from tests.support.links import sandbox_path
from tests.support.locks import meeting_at
from tests.support.waiting import eventually


async def paid_order(client: httpx.AsyncClient, merchant, shop_url: str, out_trade_no: str, money: str) -> str:
    params = order_params(merchant.pid, shop_url, out_trade_no, money=money, clientip="203.0.113.9")
    answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert answer["code"] == 1, answer
    response = await client.post(sandbox_path(answer["trade_no"]))
    assert response.status_code == 303
    return answer["trade_no"]


async def api_refund(client: httpx.AsyncClient, merchant, trade_no: str, money: str) -> dict:
    body = {"pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no, "money": money}
    return (await client.post("/api.php?act=refund", data=body)).json()


async def api_order(client: httpx.AsyncClient, merchant, trade_no: str) -> dict:
    params = {"act": "order", "pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no}
    return (await client.get("/api.php", params=params)).json()


async def api_balance(client: httpx.AsyncClient, merchant) -> str:
    params = {"act": "query", "pid": str(merchant.pid), "key": merchant.key}
    return (await client.get("/api.php", params=params)).json()["money"]


async def books(gateway, trade_no: str) -> tuple[Order, list[Refund], list[tuple[str, str, int, int]]]:
    """The order, its refunds and the merchant's journal, as the database holds them."""
    async with gateway.db.session() as session:
        order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
        refunds = list(
            (await session.scalars(select(Refund).where(Refund.order_id == order.id).order_by(Refund.id))).all()
        )
        entries = await session.scalars(
            select(BalanceEntry).where(BalanceEntry.merchant_pid == order.merchant_pid).order_by(BalanceEntry.id)
        )
        journal = [(e.kind, e.ref, e.delta_fen, e.balance_after_fen) for e in entries]
    return order, refunds, journal


class HeldUpstream(Channel):
    """An upstream whose refund answers wait until the test gives them (stands in for the sandbox)."""

    name = "sandbox"
    display_name = "Held upstream"
    pay_types = frozenset({"alipay"})

    def __init__(self) -> None:
        self.pending: asyncio.Queue[tuple[int, asyncio.Future[RefundOutcome]]] = asyncio.Queue()

    def channel(self, name: str) -> Channel | None:
        """The test's whole directory of channels is this one upstream, with its built-in account."""
        return self if name == self.name else None

    async def account(self, channel: str, ref: str):  # type: ignore[no-untyped-def]
        return self.implicit() if channel == self.name and ref == "default" else None

    async def refund(self, account, order, amount_fen, refund_no):  # type: ignore[no-untyped-def]
        answer: asyncio.Future[RefundOutcome] = asyncio.get_running_loop().create_future()
        await self.pending.put((amount_fen, answer))
        return await answer

    async def create(self, account, order, ctx):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def query(self, account, order):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def close(self, account, order):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def handle_callback(self, account, request):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    async def check_credentials(self, account):  # type: ignore[no-untyped-def]
        raise NotImplementedError


async def test_a_refund_the_channel_refuses_is_undone(channelless_server, server, gateway, merchant, shop):
    """A gateway whose sandbox channel is switched off cannot refund sandbox orders."""
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "UNDO-1", "1.00")
    async with httpx.AsyncClient(base_url=channelless_server.url, timeout=10) as client:
        answer = await api_refund(client, merchant, trade_no, "0.40")
        assert answer == {"code": -1, "msg": "退款失败：支付通道暂时无法退款，请稍后再试"}
        assert (await api_order(client, merchant, trade_no))["status"] == 1
        assert await api_balance(client, merchant) == "1.00"

    order, refunds, journal = await books(gateway, trade_no)
    assert (order.status, order.refunded_fen) == (OrderStatus.PAID, 0)
    [failed] = refunds
    assert (failed.amount_fen, failed.status) == (40, "failed")
    assert journal == [
        ("payment", trade_no, 100, 100),
        ("refund", failed.refund_no, -40, 60),
        ("refund_undo", failed.refund_no, 40, 100),
    ]

    # The money that was held back is refundable again, in full.
    async with server.client() as client:
        answer = await api_refund(client, merchant, trade_no, "1.00")
        assert (answer["code"], answer["money"]) == (1, "1.00")
        assert await api_balance(client, merchant) == "0.00"


async def test_a_refused_refund_beside_a_successful_one_leaves_the_rest_refundable(server, gateway, merchant, shop):
    """0.30 and 0.70 at once on a 1.00 order; upstream pays the 0.30 back and refuses the 0.70.

    While both were in flight the order was fully reserved, so settling the 0.30 saw it as
    fully refunded; once the 0.70 is undone, the order must be partly refunded again, with
    0.70 still refundable.
    """
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "HELD-1", "1.00")
    order = await get_order(gateway.db, trade_no)
    upstream = HeldUpstream()
    channels = upstream

    small = asyncio.create_task(refund_order(gateway.db, channels, order, 30))
    large = asyncio.create_task(refund_order(gateway.db, channels, order, 70))
    held = dict([await upstream.pending.get(), await upstream.pending.get()])
    held[30].set_result(RefundOutcome(succeeded=True, channel_refund_no="UP-30"))
    settled = await small
    held[70].set_result(RefundOutcome(succeeded=False, message="余额不足"))
    with pytest.raises(RefundError) as refused:
        await large
    assert (refused.value.problem, refused.value.detail) == (RefundProblem.CHANNEL_FAILED, "余额不足")
    assert settled.refund.amount_fen == 30

    order, refunds, _ = await books(gateway, trade_no)
    assert (order.status, order.refunded_fen) == (OrderStatus.PARTIALLY_REFUNDED, 30)
    assert sorted((r.amount_fen, r.status) for r in refunds) == [(30, "succeeded"), (70, "failed")]

    async with server.client() as client:
        assert (await api_order(client, merchant, trade_no))["status"] == 2
        assert await api_balance(client, merchant) == "0.70"
        answer = await api_refund(client, merchant, trade_no, "0.70")
        assert (answer["code"], answer["money"]) == (1, "0.70")
        assert await api_balance(client, merchant) == "0.00"
    order, _, _ = await books(gateway, trade_no)
    assert (order.status, order.refunded_fen) == (OrderStatus.REFUNDED, 100)


async def test_a_stale_view_of_the_order_cannot_over_refund(server, gateway, merchant, shop):
    """The guard is in the UPDATE, not in the check made on what the caller last read."""
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "STALE-1", "1.00")
    stale = await get_order(gateway.db, trade_no)

    first = await refund_order(gateway.db, gateway, stale, 70)
    assert first.order.status == OrderStatus.PARTIALLY_REFUNDED
    with pytest.raises(RefundError) as refused:
        await refund_order(gateway.db, gateway, stale, 70)
    assert refused.value.problem == RefundProblem.EXCEEDS_ORDER

    order, refunds, journal = await books(gateway, trade_no)
    assert order.refunded_fen == 70
    assert [(r.amount_fen, r.status) for r in refunds] == [(70, "succeeded")]
    assert journal == [("payment", trade_no, 100, 100), ("refund", first.refund.refund_no, -70, 30)]


async def test_a_repeated_out_refund_no_is_the_same_refund(server, gateway, merchant, shop):
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "ONCE-1", "1.00")
        other_trade_no = await paid_order(client, merchant, shop.url, "ONCE-2", "1.00")
    order = await get_order(gateway.db, trade_no)
    other_order = await get_order(gateway.db, other_trade_no)

    first = await refund_order(gateway.db, gateway, order, 30, out_refund_no="RN-1")
    again = await refund_order(gateway.db, gateway, order, 30, out_refund_no="RN-1")
    assert not first.repeated and again.repeated
    assert again.refund.refund_no == first.refund.refund_no

    for target, amount in ((order, 40), (other_order, 30)):
        with pytest.raises(RefundError) as refused:
            await refund_order(gateway.db, gateway, target, amount, out_refund_no="RN-1")
        assert refused.value.problem == RefundProblem.OUT_REFUND_NO_REUSED

    order, refunds, _ = await books(gateway, trade_no)
    assert order.refunded_fen == 30
    assert len(refunds) == 1
    async with gateway.db.session() as session:
        assert await session.scalar(select(Merchant.balance_fen).where(Merchant.pid == merchant.pid)) == 170


async def test_concurrent_requests_with_one_out_refund_no_refund_once(server, gateway, merchant, shop):
    """Five simultaneous retries of one refund: one refund. While the upstream still holds the first,
    each of the other four is told it is in progress, never a success it has not had yet; asked again
    once it is over, a retry is given that one refund.

    On PostgreSQL the order row is held locked until all five are waiting on it, so each has
    already looked for an earlier refund with that number and found none.
    """
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "RETRY-1", "1.00")
    order = await get_order(gateway.db, trade_no)
    upstream = HeldUpstream()

    tasks = await meeting_at(
        gateway,
        select(Order.id).where(Order.id == order.id),
        (refund_order(gateway.db, upstream, order, 30, out_refund_no="RN-R") for _ in range(5)),
    )
    amount, answer = await upstream.pending.get()
    await eventually(lambda: sum(task.done() for task in tasks) == 4)
    told_in_progress = [task for task in tasks if task.done()]
    for task in told_in_progress:
        with pytest.raises(RefundError) as refused:
            task.result()
        assert refused.value.problem == RefundProblem.EARLIER_IN_PROGRESS
    assert (amount, upstream.pending.empty()) == (30, True)

    answer.set_result(RefundOutcome(succeeded=True, channel_refund_no="UP-R"))
    [first] = [await task for task in tasks if task not in told_in_progress]
    assert (first.repeated, first.refund.status) == (False, "succeeded")
    again = await refund_order(gateway.db, upstream, order, 30, out_refund_no="RN-R")
    assert (again.repeated, again.refund.refund_no) == (True, first.refund.refund_no)
    assert upstream.pending.empty()

    order, refunds, journal = await books(gateway, trade_no)
    assert order.refunded_fen == 30
    assert [(r.amount_fen, r.status, r.out_refund_no) for r in refunds] == [(30, "succeeded", "RN-R")]
    assert journal == [("payment", trade_no, 100, 100), ("refund", refunds[0].refund_no, -30, 70)]


async def test_refund_numbers_are_the_merchants_own_and_a_new_number_is_a_new_refund(server, gateway, merchant, shop):
    other = await gateway.merchants.create("Other Shop")
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "OWN-1", "1.00")
        other_trade_no = await paid_order(client, other, shop.url, "OWN-2", "1.00")
    order = await get_order(gateway.db, trade_no)
    other_order = await get_order(gateway.db, other_trade_no)

    mine = await refund_order(gateway.db, gateway, order, 30, out_refund_no="RN-1")
    theirs = await refund_order(gateway.db, gateway, other_order, 30, out_refund_no="RN-1")
    assert not theirs.repeated and theirs.refund.refund_no != mine.refund.refund_no
    second = await refund_order(gateway.db, gateway, order, 30, out_refund_no="RN-2")
    assert not second.repeated

    again = await refund_order(gateway.db, gateway, order, 30, out_refund_no="RN-1")
    assert (again.repeated, again.refund.refund_no, again.order.trade_no) == (True, mine.refund.refund_no, trade_no)
    order, refunds, _ = await books(gateway, trade_no)
    assert [(refund.out_refund_no, refund.amount_fen) for refund in refunds] == [("RN-1", 30), ("RN-2", 30)]
    assert order.refunded_fen == 60


async def test_a_retry_of_a_refused_refund_number_is_told_it_failed(server, gateway, merchant, shop):
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "FAILED-1", "1.00")
    order = await get_order(gateway.db, trade_no)
    upstream = HeldUpstream()

    first = asyncio.create_task(refund_order(gateway.db, upstream, order, 30, out_refund_no="RN-F"))
    _, answer = await upstream.pending.get()
    answer.set_result(RefundOutcome(False, "refused upstream"))
    with pytest.raises(RefundError) as refused:
        await first
    assert refused.value.problem == RefundProblem.CHANNEL_FAILED

    with pytest.raises(RefundError) as retried:
        await refund_order(gateway.db, upstream, order, 30, out_refund_no="RN-F")
    assert retried.value.problem == RefundProblem.EARLIER_FAILED
    assert upstream.pending.empty()


async def test_a_refusal_arriving_after_reconciliation_settled_the_refund_reports_what_was_settled(
    server, gateway, merchant, shop
):
    """Reconciliation found the refund refused while the request still waited; the request's own
    refusal, arriving second, is told the refund failed (its reversal already done, not done twice)."""
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "LATE-1", "1.00")
    order = await get_order(gateway.db, trade_no)
    upstream = HeldUpstream()

    request = asyncio.create_task(refund_order(gateway.db, upstream, order, 30, out_refund_no="RN-L"))
    _, answer = await upstream.pending.get()
    _, [in_flight], _ = await books(gateway, trade_no)
    await resolve_refund(gateway.db, order, in_flight, RefundOutcome(False, "refused, seen by reconciliation"))
    answer.set_result(RefundOutcome(False, "refused"))
    with pytest.raises(RefundError) as refused:
        await request
    assert refused.value.problem == RefundProblem.CHANNEL_FAILED

    order, [refund], journal = await books(gateway, trade_no)
    assert (order.refunded_fen, refund.status) == (0, "failed")
    assert journal == [
        ("payment", trade_no, 100, 100),
        ("refund", refund.refund_no, -30, 70),
        ("refund_undo", refund.refund_no, 30, 100),
    ]


async def test_a_refund_of_no_order_is_refused_as_order_not_found_with_nothing_more_to_say(gateway):
    with pytest.raises(RefundError) as refused:
        await refund_order(gateway.db, gateway, None, 30, out_refund_no="RN-NONE")
    assert (refused.value.problem, refused.value.detail) == (RefundProblem.ORDER_NOT_FOUND, "")


async def test_a_retry_of_the_refund_that_emptied_the_order_is_that_refund_not_an_excess(
    server, gateway, merchant, shop
):
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "FULL-1", "1.00")
    first = await refund_order(gateway.db, gateway, await get_order(gateway.db, trade_no), 100, out_refund_no="RN-ALL")

    again = await refund_order(gateway.db, gateway, await get_order(gateway.db, trade_no), 100, out_refund_no="RN-ALL")
    assert (again.repeated, again.refund.refund_no) == (True, first.refund.refund_no)
    assert again.order.status == OrderStatus.REFUNDED


async def test_an_unpaid_order_or_more_than_is_left_is_refused_for_what_it_is(server, gateway, merchant, shop):
    async with server.client() as client:
        params = order_params(merchant.pid, shop.url, "UNPAID-1", money="1.00", clientip="203.0.113.9")
        unpaid = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()["trade_no"]
        paid = await paid_order(client, merchant, shop.url, "LEFT-1", "1.00")
    await refund_order(gateway.db, gateway, await get_order(gateway.db, paid), 60)

    for trade_no, amount, problem in ((unpaid, 30, RefundProblem.NOT_PAID), (paid, 41, RefundProblem.EXCEEDS_ORDER)):
        with pytest.raises(RefundError) as refused:
            await refund_order(gateway.db, gateway, await get_order(gateway.db, trade_no), amount)
        assert refused.value.problem == problem


class RecordingUpstream(HeldUpstream):
    """An upstream that answers at once (or raises ``error``) and keeps what each call was given."""

    def __init__(self, answer: RefundOutcome | None = None, error: Exception | None = None) -> None:
        super().__init__()
        self.answer, self.error = answer, error
        self.calls: list[tuple] = []

    async def account(self, channel: str, ref: str):  # type: ignore[no-untyped-def]
        return self.implicit() if channel == self.name and ref == "7" else None

    async def _answer(self, call: str, account, order, amount_fen, refund_no) -> RefundOutcome:  # type: ignore[no-untyped-def]
        self.calls.append((call, account.channel, order.trade_no, amount_fen, refund_no))
        if self.error is not None:
            raise self.error
        return self.answer

    async def refund(self, account, order, amount_fen, refund_no):  # type: ignore[no-untyped-def]
        return await self._answer("refund", account, order, amount_fen, refund_no)

    async def query_refund(self, account, order, amount_fen, refund_no):  # type: ignore[no-untyped-def]
        return await self._answer("query_refund", account, order, amount_fen, refund_no)


def order_on_account(trade_no: str, channel: str | None = "sandbox") -> Order:
    return Order(trade_no=trade_no, channel=channel, channel_account_id=7, pay_type="alipay", pay_amount_fen=100)


async def test_the_channel_is_asked_on_the_orders_account_with_its_order_amount_and_refund_number():
    done = RefundOutcome(True, channel_refund_no="UP-1")
    upstream = RecordingUpstream(done)
    order, refund = order_on_account("T-ASK"), Refund(amount_fen=30, refund_no="R-ASK")
    assert await ask_channel(upstream, order, refund) == done
    assert await ask_channel(upstream, order, refund, again=True) == done
    assert upstream.calls == [
        ("refund", "sandbox", "T-ASK", 30, "R-ASK"),
        ("query_refund", "sandbox", "T-ASK", 30, "R-ASK"),
    ]


async def test_a_channel_not_enabled_is_a_failure_first_and_still_unknown_when_asked_again():
    upstream = RecordingUpstream(RefundOutcome(True))
    refund = Refund(amount_fen=30, refund_no="R-OFF")
    for order in (order_on_account("T-OFF", "alipay"), order_on_account("T-NONE", None)):
        not_enabled = f"channel {order.channel} is not enabled"
        assert await ask_channel(upstream, order, refund) == RefundOutcome(False, not_enabled)
        assert await ask_channel(upstream, order, refund, again=True) == RefundOutcome(False, not_enabled, pending=True)
    unknown_account = Order(trade_no="T-ACC", channel="sandbox", channel_account_id=8)
    assert await ask_channel(upstream, unknown_account, refund) == RefundOutcome(
        False, "channel sandbox is not enabled"
    )
    assert upstream.calls == []


async def test_an_error_the_channel_raises_leaves_the_refund_unknown_and_says_what_it_was():
    order, refund = order_on_account("T-ERR"), Refund(amount_fen=30, refund_no="R-ERR")
    for error, message in ((RuntimeError("upstream reset the connection"), "upstream reset the connection"),
                           (TimeoutError(), "TimeoutError")):  # fmt: skip
        for again in (False, True):
            outcome = await ask_channel(RecordingUpstream(error=error), order, refund, again=again)
            assert outcome == RefundOutcome(False, message, pending=True)


async def test_an_unsure_or_impossible_refund_is_reported_as_such_with_the_channels_words(
    server, gateway, merchant, shop
):
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "UNSURE-1", "1.00")
    for answer, problem in (
        (RefundOutcome(False, "timed out", pending=True), RefundProblem.CHANNEL_PENDING),
        (RefundOutcome(False, "personal codes cannot refund", unsupported=True), RefundProblem.CHANNEL_CANNOT_REFUND),
    ):
        upstream = HeldUpstream()
        request = asyncio.create_task(refund_order(gateway.db, upstream, await get_order(gateway.db, trade_no), 10))
        _, held = await upstream.pending.get()
        held.set_result(answer)
        with pytest.raises(RefundError) as refused:
            await request
        assert (refused.value.problem, refused.value.detail) == (problem, answer.message)


async def test_a_refund_reserves_and_settles_its_own_order_only(server, gateway, merchant, shop):
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "ONLY-1", "1.00")
        other_trade_no = await paid_order(client, merchant, shop.url, "ONLY-2", "1.00")
    await refund_order(gateway.db, gateway, await get_order(gateway.db, trade_no), 40)

    order = await get_order(gateway.db, trade_no)
    other = await get_order(gateway.db, other_trade_no)
    assert (order.status, order.refunded_fen) == (OrderStatus.PARTIALLY_REFUNDED, 40)
    assert (other.status, other.refunded_fen) == (OrderStatus.PAID, 0)


async def test_a_refund_larger_than_the_balance_is_refused_as_insufficient_balance(server, gateway, merchant, shop):
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "BAL-1", "1.00")
    async with gateway.db.session() as session:
        await session.execute(update(Merchant).where(Merchant.pid == merchant.pid).values(balance_fen=20))
    with pytest.raises(RefundError) as refused:
        await refund_order(gateway.db, gateway, await get_order(gateway.db, trade_no), 30)
    assert refused.value.problem == RefundProblem.INSUFFICIENT_BALANCE
    assert (await get_order(gateway.db, trade_no)).refunded_fen == 0


async def test_a_success_arriving_after_reconciliation_settled_the_refund_reports_it_settled(
    server, gateway, merchant, shop
):
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "LATE-2", "1.00")
    order = await get_order(gateway.db, trade_no)
    upstream = HeldUpstream()

    request = asyncio.create_task(refund_order(gateway.db, upstream, order, 30, out_refund_no="RN-S"))
    _, answer = await upstream.pending.get()
    _, [in_flight], _ = await books(gateway, trade_no)
    await resolve_refund(gateway.db, order, in_flight, RefundOutcome(True, channel_refund_no="UP-S"))
    answer.set_result(RefundOutcome(True, channel_refund_no="UP-S"))
    result = await request

    assert (result.repeated, result.refund.status) == (False, "succeeded")
    order, [refund], journal = await books(gateway, trade_no)
    assert (order.status, order.refunded_fen, refund.status) == (OrderStatus.PARTIALLY_REFUNDED, 30, "succeeded")
    assert journal == [("payment", trade_no, 100, 100), ("refund", refund.refund_no, -30, 70)]


async def test_a_refund_settling_after_another_emptied_the_order_reports_the_order_as_stored(
    server, gateway, merchant, shop
):
    async with server.client() as client:
        trade_no = await paid_order(client, merchant, shop.url, "LATE-3", "1.00")
    order = await get_order(gateway.db, trade_no)
    upstream = HeldUpstream()

    first = asyncio.create_task(refund_order(gateway.db, upstream, order, 30, out_refund_no="RN-A"))
    _, first_answer = await upstream.pending.get()
    second = asyncio.create_task(refund_order(gateway.db, upstream, order, 70, out_refund_no="RN-B"))
    _, second_answer = await upstream.pending.get()
    second_answer.set_result(RefundOutcome(True, channel_refund_no="UP-B"))
    assert (await second).order.status == OrderStatus.REFUNDED  # the reservations count: 30 + 70 of 100
    first_answer.set_result(RefundOutcome(True, channel_refund_no="UP-A"))
    result = await first

    assert (result.refund.status, result.order.status, result.order.refunded_fen) == (
        "succeeded",
        OrderStatus.REFUNDED,
        100,
    )
