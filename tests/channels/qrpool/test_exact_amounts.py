"""A reported payment pays only the order holding exactly that amount: never one holding a little less or more.

Personal codes tell orders apart by the fen alone, so a payment one fen above a held amount is
another buyer's money (or a mistake), and crediting it to the nearest order would pay the wrong one.
"""

from __future__ import annotations

from sqlalchemy import select

from openepay.channels.qrpool.matching import Decision, PaymentReport, event_key, record_payment
from openepay.core.states import OrderStatus
from openepay.db.models import QrAccount, QrDevice
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from tests.support.qrpool import offered, qrpool_gateway, receiving_account
from tests.support.vmq_phone import notifications, reload


async def device_of(gateway: Gateway, account: QrAccount) -> QrDevice:
    async with gateway.db.session() as session:
        return (await session.scalars(select(QrDevice).where(QrDevice.account_id == account.id))).one()


async def report(gateway: Gateway, device: QrDevice, name: str, amount_fen: int):  # type: ignore[no-untyped-def]
    return await record_payment(
        gateway.db,
        gateway.settings,
        PaymentReport(
            event_key=event_key("exact", name),
            source="device",
            device=device,
            pay_type="wxpay",
            amount_fen=amount_fen,
            amount_text=str(amount_fen),
            occurred_at=utcnow(),
            payload="{}",
        ),
    )


async def test_a_payment_slightly_above_or_below_a_held_amount_pays_nothing(gateway, merchant, database_url):
    async with qrpool_gateway(database_url, qrpool_max_offset_fen=0) as qr:
        account = await receiving_account(qr)
        device = await device_of(qr, account)
        order = await offered(qr, merchant.pid, "EXACT-1", 1000)
        assert order.pay_amount_fen == 1000
        above = await report(qr, device, "above", 1001)
        below = await report(qr, device, "below", 999)
        assert (above.decision, above.trade_no) == (Decision.UNMATCHED, None)
        assert (below.decision, below.trade_no) == (Decision.UNMATCHED, None)
        assert "no order is waiting for 10.01" in above.reason
        assert (await reload(qr, order)).status == OrderStatus.PAYING
        assert await notifications(qr) == {}
        assert (await qr.merchants.get(merchant.pid)).balance_fen == 0

        exact = await report(qr, device, "exact", 1000)
    assert (exact.decision, exact.trade_no) == (Decision.PAID, order.trade_no)
    assert await notifications(gateway) == {order.trade_no: 1}


async def test_of_two_neighbouring_amounts_each_payment_pays_its_own_order(gateway, merchant, database_url):
    async with qrpool_gateway(database_url, qrpool_max_offset_fen=5) as qr:
        account = await receiving_account(qr)
        device = await device_of(qr, account)
        lower = await offered(qr, merchant.pid, "NEAR-1", 1000)
        upper = await offered(qr, merchant.pid, "NEAR-2", 1000)
        assert (lower.pay_amount_fen, upper.pay_amount_fen) == (1000, 1001)

        paid_upper = await report(qr, device, "upper", 1001)
        assert (paid_upper.decision, paid_upper.trade_no) == (Decision.PAID, upper.trade_no)
        assert (await reload(qr, lower)).status == OrderStatus.PAYING
        paid_lower = await report(qr, device, "lower", 1000)
        assert (paid_lower.decision, paid_lower.trade_no) == (Decision.PAID, lower.trade_no)
    assert await notifications(gateway) == {upper.trade_no: 1, lower.trade_no: 1}
    assert (await gateway.merchants.get(merchant.pid)).balance_fen == 2001
