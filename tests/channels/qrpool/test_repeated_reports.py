"""A payment reported again (a device retrying its batch) gets the earlier answer: the same order, not paid twice."""

from __future__ import annotations

from sqlalchemy import select

from openepay.channels.qrpool.matching import Decision, PaymentReport, event_key, record_payment
from openepay.db.models import QrDevice
from openepay.db.types import utcnow
from tests.support.qrpool import offered, qrpool_gateway, receiving_account
from tests.support.vmq_phone import notifications


async def test_a_repeated_report_names_the_order_the_first_one_paid(gateway, merchant, database_url):
    async with qrpool_gateway(database_url, qrpool_max_offset_fen=3) as qr:
        account = await receiving_account(qr)
        async with qr.db.session() as session:
            device = (await session.scalars(select(QrDevice).where(QrDevice.account_id == account.id))).one()
        # Two orders, so that "the order" cannot be found by accident: the first report pays the second.
        await offered(qr, merchant.pid, "REPEAT-1", 300)
        second = await offered(qr, merchant.pid, "REPEAT-2", 300)
        assert second.pay_amount_fen == 301
        report = PaymentReport(event_key("repeat", 1), "device", device, "wxpay", 301, "3.01", utcnow(), "{}")
        first = await record_payment(qr.db, qr.settings, report)
        again = await record_payment(qr.db, qr.settings, report)
    assert (first.decision, first.trade_no, first.repeated) == (Decision.PAID, second.trade_no, False)
    assert (again.event_id, again.decision, again.reason, again.trade_no, again.repeated) == (
        first.event_id,
        Decision.PAID,
        first.reason,
        second.trade_no,
        True,
    )
    assert await notifications(gateway) == {second.trade_no: 1}


async def test_a_repeated_report_that_paid_nothing_names_no_order(gateway, merchant, database_url):
    async with qrpool_gateway(database_url) as qr:
        account = await receiving_account(qr)
        async with qr.db.session() as session:
            device = (await session.scalars(select(QrDevice).where(QrDevice.account_id == account.id))).one()
        await offered(qr, merchant.pid, "REPEAT-3", 300)
        report = PaymentReport(event_key("repeat", 2), "device", device, "wxpay", 999, "9.99", utcnow(), "{}")
        first = await record_payment(qr.db, qr.settings, report)
        again = await record_payment(qr.db, qr.settings, report)
    assert (first.decision, first.trade_no) == (Decision.UNMATCHED, None)
    assert (again.event_id, again.decision, again.trade_no, again.repeated) == (
        first.event_id,
        Decision.UNMATCHED,
        None,
        True,
    )
