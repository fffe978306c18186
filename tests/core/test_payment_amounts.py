"""A payment is credited only for exactly the order's amount: more money is not "paid in full" either.

An over-payment is as suspect as an under-payment (a confirmation for another order, a forged
or misread amount), so it is refused the same way: nothing credited, no notification, the
order still waiting for its own amount.
"""

from sqlalchemy import func, select

from openepay.channels.base import Confirmation
from openepay.core.orders import get_order
from openepay.core.payments import PaymentDecision, confirm_payment, mark_paid
from openepay.core.states import OrderStatus
from openepay.db.models import BalanceEntry, Merchant, NotifyTask, Order
from tests.support.orders import sandbox_order


async def _nothing_credited(gateway, merchant, trade_no: str) -> None:
    order = await get_order(gateway.db, trade_no)
    assert (order.status, order.paid_fen, order.paid_at) == (OrderStatus.PAYING, None, None)
    async with gateway.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(NotifyTask)) == 0
        assert await session.scalar(select(func.count()).select_from(BalanceEntry)) == 0
        assert (await session.get(Merchant, merchant.pid)).balance_fen == 0


async def test_an_over_payment_is_refused_and_credits_nothing(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    assert order.pay_amount_fen == 100
    for paid_fen in (101, 200, 100_000):
        assert (
            await confirm_payment(gateway.db, "sandbox", Confirmation(order.trade_no, paid_fen))
            == PaymentDecision.AMOUNT_MISMATCH
        )
    await _nothing_credited(gateway, merchant, order.trade_no)


async def test_the_exact_amount_still_pays_after_a_refused_over_payment(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    assert (
        await confirm_payment(gateway.db, "sandbox", Confirmation(order.trade_no, 101))
        == PaymentDecision.AMOUNT_MISMATCH
    )
    assert await confirm_payment(gateway.db, "sandbox", Confirmation(order.trade_no, 100)) == PaymentDecision.PAID
    paid = await get_order(gateway.db, order.trade_no)
    assert (paid.status, paid.paid_fen) == (OrderStatus.PAID, 100)
    async with gateway.db.session() as session:
        assert (await session.get(Merchant, merchant.pid)).balance_fen == 100


async def test_a_payment_of_more_than_the_amount_the_caller_expected_is_refused(gateway, merchant):
    """The personal-code matcher passes the amount a reservation showed the buyer; more than that is refused too."""
    order = await sandbox_order(gateway, merchant.pid)
    async with gateway.db.session() as session:
        stored = await session.get(Order, order.id)
        for paid_fen in (91, 100):
            decision = await mark_paid(session, stored, Confirmation(order.trade_no, paid_fen), expected_fen=90)
            assert decision == PaymentDecision.AMOUNT_MISMATCH
    await _nothing_credited(gateway, merchant, order.trade_no)
