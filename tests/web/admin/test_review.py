"""Personal-code payments waiting for a person: an operator attaches one to the order it pays."""

from __future__ import annotations

from sqlalchemy import select, update

from openepay.admin.roles import Role
from openepay.core.states import OrderStatus
from openepay.db.models import AuditEntry, NotifyTask, Order, PaymentEvent
from openepay.db.types import utcnow
from tests.support.admin import ConsoleClient, make_user
from tests.support.orders import sandbox_order


async def _event(gateway, key: str, fen: int) -> int:  # type: ignore[no-untyped-def]
    now = utcnow()
    event = PaymentEvent(
        event_key=key,
        source="push",
        pay_type="wxpay",
        amount_fen=fen,
        amount_text=f"{fen / 100:.2f}",
        occurred_at=now,
        received_at=now,
        decision="unmatched",
        reason="no order waits for this amount",
        payload="",
    )
    async with gateway.db.session() as session:
        session.add(event)
        await session.flush()
        return event.id


async def test_an_operator_attaches_a_waiting_payment_to_its_order_and_a_viewer_only_reads(server, gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid, "Q-1")
    async with gateway.db.session() as session:
        await session.execute(update(Order).where(Order.id == order.id).values(channel="qrpool", pay_amount_fen=991))
    wrong = await _event(gateway, "e-wrong", 500)
    right = await _event(gateway, "e-right", 991)
    viewer = await make_user(gateway, "vic", Role.VIEWER)
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    async with ConsoleClient(server.url) as reader:
        await reader.sign_in(viewer)
        page = await reader.get("/admin/qrpool/review")
        assert page.text.count('class="panel event-item"') == 2 and "¥9.91" in page.text
        assert 'class="attach"' not in page.text
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(operator)
        await browser.get("/admin/qrpool/review")
        refused = await browser.post(f"/admin/qrpool/review/{wrong}/attach", {"trade_no": order.trade_no})
        assert refused.status_code == 409 and "not attached" in refused.text
        attached = await browser.post(
            f"/admin/qrpool/review/{right}/attach", {"trade_no": order.trade_no, "reason": "买家发来转账截图"}
        )
        assert attached.status_code == 303
        after = await browser.get(attached.headers["location"])
        assert "已关联" in after.text and after.text.count('class="panel event-item"') == 1
    async with gateway.db.session() as session:
        paid = await session.get(Order, order.id)
        task = await session.scalar(select(NotifyTask).where(NotifyTask.order_id == order.id))
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "attach_event"))
    assert paid.status == OrderStatus.PAID and task is not None
    assert (entry.actor, entry.trade_no, entry.event_id, entry.reason) == (
        "olga",
        order.trade_no,
        right,
        "买家发来转账截图",
    )
