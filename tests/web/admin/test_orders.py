"""Orders in the console: the search and its totals, pages and CSV, the timeline, resend, close and 补单."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import select, update

from openepay.admin.roles import Role
from openepay.core.orders import place_order
from openepay.core.states import NotifyStatus
from openepay.db.models import AuditEntry, Order
from openepay.db.types import utcnow
from tests.support.admin import ConsoleClient, make_user
from tests.support.notify import delivery_log, paid_order, settled
from tests.support.orders import new_order, sandbox_order
from tests.support.waiting import eventually


async def test_an_operator_finds_a_paid_order_reads_its_timeline_and_resends_its_notification(
    server, gateway, merchant, shop, worker
):
    trade_no = await paid_order(server, merchant, f"{shop.url}/notify", "A-1", money="12.30")
    await sandbox_order(gateway, merchant.pid, "A-2")
    await eventually(settled(gateway, trade_no, NotifyStatus.SUCCEEDED))
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(operator)
        found = await browser.get("/admin/orders", params={"out_trade_no": "A-1"})
        assert found.text.count('class="order-row"') == 1 and trade_no in found.text
        assert 'id="total-count">1<' in found.text and 'id="total-amount">¥12.30<' in found.text

        page = await browser.get(f"/admin/orders/{trade_no}")
        assert page.status_code == 200
        # The timeline reads oldest first: created, the account chosen, paid, the merchant notified.
        assert page.text.index("创建订单") < page.text.index("选择收款账户") < page.text.index("支付成功")
        assert page.text.index("支付成功") < page.text.index("通知商户")
        assert page.text.count("ev_attempt") == 1 and "HTTP 200" in page.text and "&#39;success&#39;" in page.text

        resent = await browser.post(f"/admin/orders/{trade_no}/resend")
        assert resent.status_code == 303
        assert "已重新排队发送通知" in (await browser.get(resent.headers["location"])).text

    async def two_attempts():  # type: ignore[no-untyped-def]
        task, attempts = await delivery_log(gateway, trade_no)
        return len(shop.notifications()) == 2 and task.status == NotifyStatus.SUCCEEDED

    await eventually(two_attempts)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(operator)
        assert (await browser.get(f"/admin/orders/{trade_no}")).text.count("ev_attempt") == 2
    async with gateway.db.session() as session:
        [entry] = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "order.resend"))).all()
    assert (entry.actor, entry.target, entry.address) == ("olga", f"order:{trade_no}", "127.0.0.1")


async def test_the_search_filters_totals_pages_and_exports_what_it_found(server, gateway, merchant):
    other = await gateway.merchants.create("Other Shop")
    for number in range(53):
        await place_order(
            gateway.db,
            new_order(merchant.pid, f"P-{number:02d}", amount_fen=100 + number, money="x"),
            timeout=timedelta(minutes=30),
            reopen_identical=False,
        )
    await place_order(
        gateway.db,
        new_order(other.pid, "=HYPERLINK(1)", amount_fen=999, name="=cmd|' /C calc'!A0"),
        timeout=timedelta(minutes=30),
        reopen_identical=False,
    )
    # One of the merchant's orders is from two days ago, in the operator's time zone.
    async with gateway.db.session() as session:
        await session.execute(
            update(Order).where(Order.out_trade_no == "P-00").values(created_at=utcnow() - timedelta(days=2))
        )
    viewer = await make_user(gateway, "vic", Role.VIEWER)
    today = utcnow().astimezone(server.settings.zone).date()
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(viewer)
        first = await browser.get("/admin/orders", params={"merchant": str(merchant.pid)})
        assert 'id="total-count">53<' in first.text
        total = sum(100 + number for number in range(53))
        assert f'id="total-amount">¥{total // 100}.{total % 100:02d}<' in first.text
        assert first.text.count('class="order-row"') == 50 and 'id="page">1 / 2<' in first.text
        second = await browser.get("/admin/orders", params={"merchant": str(merchant.pid), "page": "2"})
        assert second.text.count('class="order-row"') == 3 and "P-00" in second.text

        recent = await browser.get(
            "/admin/orders", params={"merchant": str(merchant.pid), "date_from": today.isoformat()}
        )
        assert 'id="total-count">52<' in recent.text
        old = await browser.get(
            "/admin/orders", params={"date_to": (today - timedelta(days=1)).isoformat(), "status": "created"}
        )
        assert 'id="total-count">1<' in old.text and "P-00" in old.text
        none = await browser.get("/admin/orders", params={"status": "paid"})
        assert 'id="total-count">0<' in none.text and 'id="no-orders"' in none.text

        bad = await browser.get("/admin/orders", params={"merchant": "abc"})
        assert bad.status_code == 400 and "无法识别的筛选条件" in bad.text
        assert (await browser.get("/admin/orders", params={"date_from": "2026-13-01"})).status_code == 400

        exported = await browser.get("/admin/orders.csv", params={"merchant": str(other.pid)})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][:3] == ["trade_no", "out_trade_no", "merchant"]
    [row] = rows[1:]
    assert row[1] == "'=HYPERLINK(1)" and row[-1] == "'=cmd|' /C calc'!A0"
    assert row[6] == "9.99" and row[3] == "created"


async def test_an_operator_closes_an_order_and_confirms_another_by_hand_with_a_reason(
    server, gateway, merchant, shop, worker
):
    to_close = await sandbox_order(gateway, merchant.pid, "C-1")
    to_confirm = await sandbox_order(gateway, merchant.pid, "C-2", notify_url=f"{shop.url}/notify")
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(operator)
        await browser.get(f"/admin/orders/{to_close.trade_no}")
        assert (await browser.post(f"/admin/orders/{to_close.trade_no}/close")).status_code == 303
        again = await browser.post(f"/admin/orders/{to_close.trade_no}/close")
        assert again.status_code == 409 and "无法关闭" in again.text

        no_reason = await browser.post(f"/admin/orders/{to_confirm.trade_no}/confirm", {"reason": "  "})
        assert no_reason.status_code == 409 and "请填写补单原因" in no_reason.text
        confirmed = await browser.post(
            f"/admin/orders/{to_confirm.trade_no}/confirm", {"reason": "买家提供了支付宝账单截图"}
        )
        assert confirmed.status_code == 303
        twice = await browser.post(f"/admin/orders/{to_confirm.trade_no}/confirm", {"reason": "again"})
        assert twice.status_code == 409 and "该订单已支付，无需补单" in twice.text
        page = await browser.get(f"/admin/orders/{to_confirm.trade_no}")
        assert 'id="order-status" data-status="paid">已支付' in page.text
        assert "买家提供了支付宝账单截图" in page.text
        assert "olga: order.confirm" in page.text
        assert (await browser.get("/admin/orders/NO-SUCH-ORDER")).status_code == 404

    [notification] = await eventually(lambda: shop.notifications())
    assert notification.signature_ok and notification.params["out_trade_no"] == "C-2"
    assert notification.params["trade_status"] == "TRADE_SUCCESS"
    async with gateway.db.session() as session:
        closed = await session.scalar(select(Order).where(Order.trade_no == to_close.trade_no))
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert closed.status == "closed"
    closing, confirming = [entry for entry in entries if entry.action.startswith("order.")]
    assert (closing.action, closing.before, closing.after) == (
        "order.close",
        {"status": "paying"},
        {"status": "closed"},
    )
    assert (confirming.action, confirming.reason, confirming.before) == (
        "order.confirm",
        "买家提供了支付宝账单截图",
        {"status": "paying"},
    )
