"""Placing, reusing, reopening and closing orders, with the database's guards doing the work."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from openepay.channels.base import PaymentOffer
from openepay.channels.sandbox.simulator import simulate_buyer_payment
from openepay.core.ids import trade_numbers
from openepay.core.orders import (
    DuplicateOutTradeNo,
    OrderAlreadyPaid,
    OrderNotPayable,
    OrderSummary,
    OrderTermsChanged,
    attach_payment,
    close_expired,
    close_if_expired,
    find_merchant_order_summary,
    get_order,
    place_order,
)
from openepay.core.states import OrderStatus
from openepay.db.models import Order
from openepay.db.types import utcnow
from tests.support.orders import new_order, sandbox_order

THIRTY_MINUTES = timedelta(minutes=30)


async def _count_orders(gateway) -> int:
    async with gateway.db.session() as session:
        return await session.scalar(select(func.count()).select_from(Order))


async def _expire(gateway, order_id: int) -> None:
    async with gateway.db.session() as session:
        await session.execute(
            update(Order).where(Order.id == order_id).values(expires_at=utcnow() - timedelta(seconds=1))
        )


async def test_a_new_order_starts_created_and_expires_after_the_timeout(gateway, merchant):
    placed = await place_order(gateway.db, new_order(merchant.pid), timeout=THIRTY_MINUTES, reopen_identical=True)
    order = placed.order
    assert not placed.reused
    assert order.status == OrderStatus.CREATED
    assert order.amount_fen == order.pay_amount_fen == 100
    assert timedelta(minutes=29) < order.expires_at - order.created_at <= THIRTY_MINUTES


async def test_identical_repeat_is_the_same_order_and_changed_terms_are_refused(gateway, merchant):
    first = await place_order(gateway.db, new_order(merchant.pid), timeout=THIRTY_MINUTES, reopen_identical=True)
    again = await place_order(gateway.db, new_order(merchant.pid), timeout=THIRTY_MINUTES, reopen_identical=True)
    assert again.reused and again.order.trade_no == first.order.trade_no
    for change in (
        {"amount_fen": 101, "money": "1.01"},
        {"name": "x"},
        {"notify_url": "http://a.b/n"},
        {"return_url": None},
        {"param": "p"},
    ):
        with pytest.raises(OrderTermsChanged):
            await place_order(
                gateway.db, new_order(merchant.pid, **change), timeout=THIRTY_MINUTES, reopen_identical=True
            )
    assert await _count_orders(gateway) == 1


async def test_money_written_differently_is_the_same_amount(gateway, merchant):
    first = await place_order(gateway.db, new_order(merchant.pid), timeout=THIRTY_MINUTES, reopen_identical=True)
    again = await place_order(
        gateway.db, new_order(merchant.pid, money="1"), timeout=THIRTY_MINUTES, reopen_identical=True
    )
    assert again.order.trade_no == first.order.trade_no


async def test_dialects_that_forbid_reuse_get_duplicate(gateway, merchant):
    await place_order(gateway.db, new_order(merchant.pid), timeout=THIRTY_MINUTES, reopen_identical=False)
    with pytest.raises(DuplicateOutTradeNo):
        await place_order(gateway.db, new_order(merchant.pid), timeout=THIRTY_MINUTES, reopen_identical=False)


async def test_a_paid_order_cannot_be_placed_again(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    await simulate_buyer_payment(gateway, order.trade_no)
    with pytest.raises(OrderAlreadyPaid):
        await place_order(gateway.db, new_order(merchant.pid), timeout=THIRTY_MINUTES, reopen_identical=True)


async def test_concurrent_identical_requests_make_one_order(gateway, merchant):
    results = await asyncio.gather(
        *(
            place_order(gateway.db, new_order(merchant.pid), timeout=THIRTY_MINUTES, reopen_identical=True)
            for _ in range(12)
        )
    )
    assert len({placed.order.trade_no for placed in results}) == 1
    assert await _count_orders(gateway) == 1


async def test_expired_order_closes_and_an_identical_repeat_reopens_it(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    await _expire(gateway, order.id)
    [closed] = await close_expired(gateway.db)
    assert closed.trade_no == order.trade_no and closed.status == OrderStatus.CLOSED
    assert await close_expired(gateway.db) == []

    reopened = await place_order(gateway.db, new_order(merchant.pid), timeout=THIRTY_MINUTES, reopen_identical=True)
    assert reopened.order.trade_no == order.trade_no
    assert reopened.order.status == OrderStatus.CREATED
    assert reopened.order.expires_at > utcnow() + timedelta(minutes=29)
    assert reopened.order.qrcode is None and reopened.order.pay_url is None


async def test_close_on_sight_only_touches_expired_unpaid_orders(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    assert (await close_if_expired(gateway.db, order)).status == OrderStatus.PAYING
    await _expire(gateway, order.id)
    reloaded = await get_order(gateway.db, order.trade_no)
    assert (await close_if_expired(gateway.db, reloaded)).status == OrderStatus.CLOSED


async def test_an_offer_cannot_be_attached_to_a_closed_order(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    await _expire(gateway, order.id)
    await close_expired(gateway.db)
    with pytest.raises(OrderNotPayable) as refused:
        await attach_payment(
            gateway.db, order.id, channel="sandbox", pay_type="alipay", device="pc", offer=PaymentOffer(qrcode="x")
        )
    assert refused.value.status == OrderStatus.CLOSED


async def test_a_channel_can_set_the_amount_to_pay(gateway, merchant):
    placed = await place_order(gateway.db, new_order(merchant.pid), timeout=THIRTY_MINUTES, reopen_identical=True)
    order = await attach_payment(
        gateway.db,
        placed.order.id,
        channel="sandbox",
        pay_type="wxpay",
        device="pc",
        offer=PaymentOffer(qrcode="wxp://x", pay_amount_fen=101),
    )
    assert (order.amount_fen, order.pay_amount_fen, order.status) == (100, 101, OrderStatus.PAYING)


async def test_an_order_number_another_process_already_drew_is_drawn_again(gateway, merchant, monkeypatch):
    """Two processes can draw one number in one millisecond; the UNIQUE constraint refuses the second,
    which draws again. The generator is made to repeat a stored number, as the other process would."""
    taken = (
        await place_order(gateway.db, new_order(merchant.pid), timeout=THIRTY_MINUTES, reopen_identical=True)
    ).order
    draws = iter([taken.trade_no, taken.trade_no])
    real_next = trade_numbers.next
    monkeypatch.setattr(trade_numbers, "next", lambda: next(draws, None) or real_next())
    placed = await place_order(
        gateway.db, new_order(merchant.pid, "O-2"), timeout=THIRTY_MINUTES, reopen_identical=True
    )
    assert not placed.reused
    assert placed.order.out_trade_no == "O-2" and placed.order.trade_no != taken.trade_no
    assert await _count_orders(gateway) == 2


async def test_a_new_order_keeps_everything_the_merchant_sent_and_starts_unpaid_and_unrefunded(gateway, merchant):
    sent = new_order(
        merchant.pid,
        pay_type="wxpay",
        param="p=1",
        sitename="Shop",
        clientip="203.0.113.9",
        device="mobile",
        attrs={"sub_openid": "o-1"},
    )
    placed = await place_order(gateway.db, sent, timeout=THIRTY_MINUTES, reopen_identical=True)
    for order in (placed.order, await get_order(gateway.db, placed.order.trade_no)):
        assert (order.merchant_pid, order.dialect, order.out_trade_no, order.money, order.name) == (
            merchant.pid,
            "epay",
            "O-1",
            "1.00",
            "VIP会员",
        )
        assert (order.notify_url, order.return_url, order.param) == (sent.notify_url, sent.return_url, "p=1")
        assert (order.pay_type, order.sitename, order.clientip, order.device, order.attrs) == (
            "wxpay",
            "Shop",
            "203.0.113.9",
            "mobile",
            {"sub_openid": "o-1"},
        )
        assert (order.status, order.refunded_fen, order.paid_late, order.qrcode_any_amount) == (
            OrderStatus.CREATED,
            0,
            False,
            False,
        )
        assert (order.paid_fen, order.paid_at, order.channel) == (None, None, None)
        assert order.expires_at - order.created_at == THIRTY_MINUTES


async def _paying_by_alipay(gateway, sent):
    """``sent`` placed and offered on its Alipay channel, as ``mapi.php`` does it."""
    return await gateway.place_and_start_payment(
        sent,
        pay_type="alipay",
        device="pc",
        request_base_url="http://gateway.test",
        reopen_identical=True,
        keep_unoffered=True,
    )


async def test_an_order_written_with_its_offer_is_handed_back_as_stored(gateway, merchant):
    sent = new_order(merchant.pid, param="p=1", clientip="203.0.113.9", device="pc", attrs={"sub_openid": "o-1"})
    order = await _paying_by_alipay(gateway, sent)
    stored = await get_order(gateway.db, order.trade_no)
    columns = Order.__table__.c.keys()
    assert {name: getattr(order, name) for name in columns} == {name: getattr(stored, name) for name in columns}
    assert order.status == OrderStatus.PAYING and order.routing == stored.routing is not None


async def test_an_orders_summary_is_its_own_columns_as_stored_found_by_either_number_for_its_merchant_only(
    gateway, merchant
):
    order = await _paying_by_alipay(gateway, new_order(merchant.pid, param="p=1"))
    stored = await get_order(gateway.db, order.trade_no)
    by_ours = await find_merchant_order_summary(gateway.db, merchant.pid, trade_no=order.trade_no)
    by_theirs = await find_merchant_order_summary(gateway.db, merchant.pid, out_trade_no=order.out_trade_no)

    assert by_ours == by_theirs == OrderSummary(*(getattr(stored, name) for name in OrderSummary._fields))
    assert by_ours.created_at.tzinfo is not None and by_ours.pay_url and by_ours.param == "p=1"
    assert await find_merchant_order_summary(gateway.db, merchant.pid + 1, trade_no=order.trade_no) is None
    assert await find_merchant_order_summary(gateway.db, merchant.pid, out_trade_no="NO-SUCH-ORDER") is None
    assert await find_merchant_order_summary(gateway.db, merchant.pid) is None
