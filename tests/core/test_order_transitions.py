"""Each order transition moves only its own order, only from the states it names, and records when.

The guards are what a stale read meets: an order paid or reopened since the caller looked is
left as it now is. Orders are made through the core (``tests/support/orders.py``).
"""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from openepay.channels.base import PaymentOffer, RoutingRules
from openepay.channels.sandbox.simulator import simulate_buyer_payment
from openepay.core import usage
from openepay.core.orders import (
    DuplicateOutTradeNo,
    OrderAlreadyPaid,
    OrderNotPayable,
    OrderTermsChanged,
    attach_payment,
    channel_view,
    close_expired,
    close_if_expired,
    close_order,
    discard_unoffered,
    find_merchant_order,
    get_order,
    place_order,
)
from openepay.core.states import OrderStatus
from openepay.db.models import ChannelAccountUsage, Order
from openepay.db.types import utcnow
from tests.support.locks import changed_while_it_waits
from tests.support.orders import new_order, sandbox_order

THIRTY_MINUTES = timedelta(minutes=30)


async def _set(gateway, order_id: int, **values: object) -> None:
    async with gateway.db.session() as session:
        await session.execute(update(Order).where(Order.id == order_id).values(**values))


async def _status(gateway, order: Order) -> str:
    return (await get_order(gateway.db, order.trade_no)).status


async def _place(gateway, pid: int, number: str = "O-1", *, reopen: bool = True, now=None, **overrides: object):
    new = new_order(pid, number, **overrides)
    return await place_order(gateway.db, new, timeout=THIRTY_MINUTES, reopen_identical=reopen, now=now)


def _paid(order: Order):
    """The order paid by another transaction (a callback crediting it)."""
    return update(Order).where(Order.id == order.id).values(status=OrderStatus.PAID, paid_fen=100, paid_at=utcnow())


def _row(order: Order):
    return select(Order).where(Order.id == order.id)


async def test_each_refused_repeat_names_the_merchants_number(gateway, merchant):
    """The dialects put the number in their error messages."""
    await _place(gateway, merchant.pid, "DUP-1", reopen=False)
    with pytest.raises(DuplicateOutTradeNo) as duplicate:
        await _place(gateway, merchant.pid, "DUP-1", reopen=False)
    await _place(gateway, merchant.pid, "CHG-1")
    with pytest.raises(OrderTermsChanged) as changed:
        await _place(gateway, merchant.pid, "CHG-1", name="other")
    paid = await sandbox_order(gateway, merchant.pid, "PAID-1")
    await simulate_buyer_payment(gateway, paid.trade_no)
    with pytest.raises(OrderAlreadyPaid) as already:
        await _place(gateway, merchant.pid, "PAID-1")
    numbers = [refused.value.out_trade_no for refused in (duplicate, changed, already)]
    assert numbers == ["DUP-1", "CHG-1", "PAID-1"]


async def test_a_repeat_without_a_return_url_is_the_same_order_however_the_absence_is_written(gateway, merchant):
    first = await _place(gateway, merchant.pid, return_url=None)
    for absent in (None, ""):
        again = await _place(gateway, merchant.pid, return_url=absent)
        assert again.reused and again.order.trade_no == first.order.trade_no


async def test_a_repeat_of_a_live_order_keeps_its_offer_and_expiry(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    again = await _place(gateway, merchant.pid)
    assert again.reused
    kept = again.order
    assert (kept.trade_no, kept.status, kept.qrcode, kept.pay_url) == (
        order.trade_no,
        OrderStatus.PAYING,
        order.qrcode,
        order.pay_url,
    )
    assert kept.expires_at == order.expires_at


async def test_a_repeat_reopens_an_order_the_merchant_closed_before_it_expired_and_only_that_order(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    neighbour = await sandbox_order(gateway, merchant.pid, "O-2")
    await _set(gateway, order.id, urlscheme="alipays://x")
    assert (await close_order(gateway.db, order)).status == OrderStatus.CLOSED
    await _set(gateway, neighbour.id, status=OrderStatus.CLOSED, closed_at=utcnow())
    reopened = (await _place(gateway, merchant.pid)).order
    stored = await get_order(gateway.db, order.trade_no)
    for shown in (reopened, stored):
        assert (shown.trade_no, shown.status, shown.closed_at) == (order.trade_no, OrderStatus.CREATED, None)
        assert (shown.pay_url, shown.qrcode, shown.urlscheme) == (None, None, None)
    assert await _status(gateway, neighbour) == OrderStatus.CLOSED


async def test_a_repeat_at_the_very_moment_its_order_expires_reopens_it_and_a_moment_before_keeps_it(gateway, merchant):
    placed_at = utcnow().replace(microsecond=0)
    order = (await _place(gateway, merchant.pid, now=placed_at)).order
    assert order.expires_at == placed_at + THIRTY_MINUTES
    before = await _place(gateway, merchant.pid, now=order.expires_at - timedelta(microseconds=1))
    assert (before.reused, before.order.expires_at) == (True, order.expires_at)
    at_expiry = await _place(gateway, merchant.pid, now=order.expires_at)
    assert (at_expiry.reused, at_expiry.order.trade_no) == (True, order.trade_no)
    assert at_expiry.order.expires_at == order.expires_at + THIRTY_MINUTES
    assert (await get_order(gateway.db, order.trade_no)).expires_at == order.expires_at + THIRTY_MINUTES


async def test_a_repeat_whose_expired_order_is_paid_before_it_reopens_it_is_refused_as_paid(gateway, merchant):
    """The repeat read the order unpaid and expired; a payment committed before its reopening update."""
    order = await sandbox_order(gateway, merchant.pid)
    await _set(gateway, order.id, expires_at=utcnow() - timedelta(seconds=1))
    with pytest.raises(OrderAlreadyPaid) as refused:
        await changed_while_it_waits(gateway, _row(order), _paid(order), _place(gateway, merchant.pid))
    assert refused.value.out_trade_no == "O-1"
    assert await _status(gateway, order) == OrderStatus.PAID


async def test_the_sweeper_closes_orders_from_the_moment_they_expire_and_says_when(gateway, merchant):
    due = await sandbox_order(gateway, merchant.pid)
    later = await sandbox_order(gateway, merchant.pid, "O-2")
    now = utcnow()
    await _set(gateway, due.id, expires_at=now)
    await _set(gateway, later.id, expires_at=now + timedelta(seconds=1))
    [closed] = await close_expired(gateway.db, now)
    assert (closed.trade_no, closed.status, closed.closed_at) == (due.trade_no, OrderStatus.CLOSED, now)
    assert (await get_order(gateway.db, due.trade_no)).closed_at == now
    assert await _status(gateway, later) == OrderStatus.PAYING


async def test_the_sweeper_leaves_an_order_paid_while_it_was_closing_it(gateway, merchant):
    """The sweep's choice read the order unpaid and expired; a payment committed before its update."""
    order = await sandbox_order(gateway, merchant.pid)
    await _set(gateway, order.id, expires_at=utcnow() - timedelta(seconds=1))
    closed = await changed_while_it_waits(gateway, _row(order), _paid(order), close_expired(gateway.db))
    assert closed == []
    assert await _status(gateway, order) == OrderStatus.PAID


async def test_a_sweep_of_few_orders_at_a_time_spends_them_on_orders_still_unpaid(gateway, merchant):
    """A paid order past its expiry is not the sweeper's; it must not crowd out one that is."""
    paid = await sandbox_order(gateway, merchant.pid)
    await simulate_buyer_payment(gateway, paid.trade_no)
    unpaid = await sandbox_order(gateway, merchant.pid, "O-2")
    now = utcnow()
    await _set(gateway, paid.id, expires_at=now - timedelta(minutes=2))
    await _set(gateway, unpaid.id, expires_at=now - timedelta(minutes=1))
    [closed] = await close_expired(gateway.db, now, limit=1)
    assert closed.trade_no == unpaid.trade_no
    assert await _status(gateway, paid) == OrderStatus.PAID


async def test_a_sweep_closes_at_most_500_orders_at_a_time(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    values = {column: getattr(order, column) for column in Order.__table__.c.keys() if column != "id"}
    past = utcnow() - timedelta(minutes=1)
    async with gateway.db.session() as session:
        session.add_all(
            Order(**{**values, "trade_no": f"T{i}", "out_trade_no": f"X{i}", "expires_at": past}) for i in range(500)
        )
    await _set(gateway, order.id, expires_at=past)
    assert len(await close_expired(gateway.db)) == 500
    assert len(await close_expired(gateway.db)) == 1


async def test_closing_on_sight_closes_only_this_order_and_records_when(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    neighbour = await sandbox_order(gateway, merchant.pid, "O-2")
    for expired in (order, neighbour):
        await _set(gateway, expired.id, expires_at=utcnow() - timedelta(seconds=1))
    closed = await close_if_expired(gateway.db, await get_order(gateway.db, order.trade_no))
    assert (closed.trade_no, closed.status) == (order.trade_no, OrderStatus.CLOSED)
    assert closed.closed_at is not None and (await get_order(gateway.db, order.trade_no)).closed_at == closed.closed_at
    assert await _status(gateway, neighbour) == OrderStatus.PAYING


async def test_closing_on_sight_closes_an_order_from_the_very_moment_it_expires(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    moment_before = order.expires_at - timedelta(microseconds=1)
    assert (await close_if_expired(gateway.db, order, now=moment_before)).status == OrderStatus.PAYING
    assert await _status(gateway, order) == OrderStatus.PAYING
    closed = await close_if_expired(gateway.db, order, now=order.expires_at)
    assert (closed.status, closed.closed_at) == (OrderStatus.CLOSED, order.expires_at)
    assert await _status(gateway, order) == OrderStatus.CLOSED


async def test_closing_on_sight_a_stale_view_answers_the_order_as_it_now_is(gateway, merchant):
    """The cashier read the order unpaid and expired; meanwhile it was paid, or repeated and reopened."""
    paid = await sandbox_order(gateway, merchant.pid)
    reopened = await sandbox_order(gateway, merchant.pid, "O-2")
    for order in (paid, reopened):
        await _set(gateway, order.id, expires_at=utcnow() - timedelta(seconds=1))
    stale_paid = await get_order(gateway.db, paid.trade_no)
    stale_reopened = await get_order(gateway.db, reopened.trade_no)
    await _set(gateway, paid.id, status=OrderStatus.PAID, paid_fen=100, paid_at=utcnow())
    await _set(gateway, reopened.id, expires_at=utcnow() + THIRTY_MINUTES)
    assert (await close_if_expired(gateway.db, stale_paid)).status == OrderStatus.PAID
    assert (await close_if_expired(gateway.db, stale_reopened)).status == OrderStatus.PAYING
    assert (await _status(gateway, paid), await _status(gateway, reopened)) == (OrderStatus.PAID, OrderStatus.PAYING)


async def test_a_merchant_closes_only_its_unpaid_order_and_its_expiry_stays(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    neighbour = await sandbox_order(gateway, merchant.pid, "O-2")
    before = utcnow()
    closed = await close_order(gateway.db, order)
    assert (closed.trade_no, closed.status, closed.expires_at) == (order.trade_no, OrderStatus.CLOSED, order.expires_at)
    assert closed.closed_at >= before
    stored = await get_order(gateway.db, order.trade_no)
    assert (stored.status, stored.closed_at) == (OrderStatus.CLOSED, closed.closed_at)
    assert await _status(gateway, neighbour) == OrderStatus.PAYING
    assert await close_order(gateway.db, order) is None
    await simulate_buyer_payment(gateway, neighbour.trade_no)
    assert await close_order(gateway.db, neighbour) is None
    assert await _status(gateway, neighbour) == OrderStatus.PAID


async def test_only_an_order_nobody_was_offered_a_way_to_pay_is_forgotten(gateway, merchant):
    offers = {
        "status": OrderStatus.PAYING,
        "channel": "sandbox",
        "pay_url": "http://x/pay",
        "qrcode": "qr",
        "urlscheme": "alipays://x",
        "pay_info": "{}",
    }
    for number, (column, value) in enumerate(offers.items()):
        kept = (await _place(gateway, merchant.pid, f"K-{number}")).order
        await _set(gateway, kept.id, **{column: value})
        assert not await discard_unoffered(gateway.db, kept.id), column
        assert await get_order(gateway.db, kept.trade_no) is not None
    unoffered = (await _place(gateway, merchant.pid, "GONE")).order
    also_unoffered = (await _place(gateway, merchant.pid, "STAYS")).order
    assert await discard_unoffered(gateway.db, unoffered.id)
    assert await get_order(gateway.db, unoffered.trade_no) is None
    assert await get_order(gateway.db, also_unoffered.trade_no) is not None
    assert not await discard_unoffered(gateway.db, unoffered.id)


async def test_an_offer_for_an_order_that_is_gone_is_refused_as_not_payable(gateway, merchant):
    """The order can be forgotten (``discard_unoffered``) while a payment for it is being started."""
    order = (await _place(gateway, merchant.pid)).order
    assert await discard_unoffered(gateway.db, order.id)
    with pytest.raises(OrderNotPayable) as refused:
        await attach_payment(
            gateway.db, order.id, channel="sandbox", pay_type="alipay", device="pc", offer=PaymentOffer(qrcode="x")
        )
    assert refused.value.status == "missing"


async def test_a_merchant_finds_only_its_own_orders_by_either_number_and_ours_wins(gateway, merchant):
    other = await gateway.merchants.create("Other Shop")
    mine = (await _place(gateway, merchant.pid, "SAME")).order
    theirs = (await _place(gateway, other.pid, "SAME")).order
    second = (await _place(gateway, merchant.pid, "SECOND")).order
    find = find_merchant_order
    assert (await find(gateway.db, merchant.pid, trade_no=mine.trade_no)).id == mine.id
    assert (await find(gateway.db, merchant.pid, out_trade_no="SAME")).id == mine.id
    assert (await find(gateway.db, other.pid, out_trade_no="SAME")).id == theirs.id
    assert (await find(gateway.db, merchant.pid, trade_no=second.trade_no, out_trade_no="SAME")).id == second.id
    assert await find(gateway.db, merchant.pid, trade_no=theirs.trade_no) is None
    assert await find(gateway.db, merchant.pid, trade_no=theirs.trade_no, out_trade_no="SAME") is None
    assert await find(gateway.db, merchant.pid, out_trade_no="NONE") is None
    assert await find(gateway.db, merchant.pid) is None


async def test_a_channel_sees_the_order_it_is_asked_to_take(gateway, merchant):
    attrs = {"sub_openid": "openid-1", "sub_appid": "wx-app"}
    placed = (await _place(gateway, merchant.pid, attrs=attrs, name="会员", clientip="203.0.113.9")).order
    await _set(gateway, placed.id, pay_type="wxpay", device="jsapi", channel_trade_no="UP-9", pay_amount_fen=99)
    order = await get_order(gateway.db, placed.trade_no)
    view = channel_view(order)
    assert (view.trade_no, view.pay_type, view.pay_amount_fen, view.name) == (order.trade_no, "wxpay", 99, "会员")
    assert (view.created_at, view.expires_at) == (order.created_at, order.expires_at)
    assert (view.device, view.clientip, view.channel_trade_no) == ("jsapi", "203.0.113.9", "UP-9")
    assert (view.openid, view.appid) == ("openid-1", "wx-app")
    bare = channel_view(await get_order(gateway.db, (await _place(gateway, merchant.pid, "O-2")).order.trade_no))
    assert (bare.pay_type, bare.device, bare.clientip, bare.channel_trade_no, bare.openid, bare.appid) == (
        "",
        None,
        None,
        None,
        None,
        None,
    )


async def test_an_offer_records_its_account_day_routing_and_the_earlier_account_stops_counting(gateway, merchant):
    first = (await gateway.accounts.add("sandbox", "first", {})).id
    second = (await gateway.accounts.add("sandbox", "second", {})).id
    order = (await _place(gateway, merchant.pid)).order
    day = utcnow().date().isoformat()
    for account_id, pay_type, device in ((first, "alipay", "pc"), (second, "wxpay", "mobile")):
        assert await usage.count(gateway.db, account_id, day, 100, RoutingRules())
        offered = await attach_payment(
            gateway.db,
            order.id,
            channel="sandbox",
            pay_type=pay_type,
            device=device,
            offer=PaymentOffer(qrcode=f"qr-{pay_type}"),
            account_id=account_id,
            usage_day=day,
            routing={"chosen": account_id},
        )
    stored = await get_order(gateway.db, order.trade_no)
    for shown in (offered, stored):
        assert (shown.channel_account_id, shown.usage_day, shown.routing) == (second, day, {"chosen": second})
        assert (shown.pay_type, shown.device, shown.qrcode, shown.status) == ("wxpay", "mobile", "qr-wxpay", "paying")
    assert await _usage(gateway, first, day) == (0, 0)
    assert await _usage(gateway, second, day) == (100, 1)


async def _usage(gateway, account_id: int, day: str) -> tuple[int, int]:
    async with gateway.db.session() as session:
        row = await session.get(ChannelAccountUsage, (account_id, day))
    return (row.amount_fen, row.count) if row else (0, 0)
