"""Refunds from an order's page in the console: through the core's guards (never more than was paid), an
uncertain channel answer shown as processing, each audited, every refund on the order's timeline."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from openepay.admin.roles import Role
from openepay.db.models import AuditEntry, Refund
from tests.support.admin import ConsoleClient, make_user
from tests.support.epay import order_params, signed
from tests.support.fake_epay import FakeEpay
from tests.support.notify import paid_order
from tests.support.orders import stored_order


@pytest.fixture
def upstream() -> Iterator[FakeEpay]:
    fake = FakeEpay().start()
    yield fake
    fake.stop()


async def test_an_operator_refunds_part_then_the_rest_and_is_refused_more(server, gateway, merchant):
    trade_no = await paid_order(server, merchant, "http://127.0.0.1:9/notify", "R-1", money="12.30")
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    page_of = f"/admin/orders/{trade_no}"
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(operator)
        page = await browser.get(page_of)
        assert 'id="refund-amount" inputmode="decimal" value="12.30"' in page.text
        too_much = await browser.post(f"{page_of}/refund", {"amount": "20.00", "reason": "顾客退货"})
        assert too_much.status_code == 409 and "退款金额超过可退金额" in too_much.text
        unreadable = await browser.post(f"{page_of}/refund", {"amount": "1,00", "reason": "顾客退货"})
        assert unreadable.status_code == 400 and "退款金额应为大于 0 的元金额" in unreadable.text
        no_reason = await browser.post(f"{page_of}/refund", {"amount": "2.30", "reason": " "})
        assert no_reason.status_code == 409 and "请填写退款原因" in no_reason.text
        assert (await stored_order(gateway, trade_no)).refunded_fen == 0

        part = await browser.post(f"{page_of}/refund", {"amount": "2.30", "reason": "顾客退了一件"})
        assert part.status_code == 303
        page = await browser.get(part.headers["location"])
        assert "退款成功。" in page.text and 'data-status="partially_refunded"' in page.text
        assert 'id="order-refunded">¥2.30<' in page.text and 'value="10.00"' in page.text
        assert page.text.count('class="event ev_refund_succeeded"') == 1 and "¥2.30" in page.text

        rest = await browser.post(f"{page_of}/refund", {"amount": "10.00", "reason": "整单退款"})
        assert rest.status_code == 303
        page = await browser.get(page_of)
        assert 'data-status="refunded"' in page.text and 'id="refund-form"' not in page.text
        assert page.text.count('class="event ev_refund_succeeded"') == 2
        again = await browser.post(f"{page_of}/refund", {"amount": "0.01", "reason": "再退一分"})
        assert again.status_code == 409 and "订单未支付" in again.text
    order = await stored_order(gateway, trade_no)
    assert (order.status, order.refunded_fen) == ("refunded", 1230)
    async with gateway.db.session() as session:
        entries = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "order.refund"))).all()
    assert [(entry.actor, entry.reason, entry.after["amount_fen"]) for entry in entries] == [
        ("olga", "顾客退了一件", 230),
        ("olga", "整单退款", 1000),
    ]
    assert entries[0].before == {"status": "paid", "refunded_fen": 0}


async def test_a_refund_the_upstream_does_not_confirm_stays_processing_with_its_amount_reserved(
    server, gateway, merchant, upstream
):
    account = await gateway.accounts.add("epay_upstream", "up-1", upstream.account_config())
    await gateway.merchants.update(merchant.pid, channel_accounts=[account.id])
    params = order_params(merchant.pid, "http://shop.example", "U-1", money="50.00", clientip="203.0.113.9")
    async with server.client() as client:
        answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert answer["code"] == 1, answer
    trade_no = answer["trade_no"]
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(operator)
        await browser.get(f"/admin/orders/{trade_no}")
        confirmed = await browser.post(f"/admin/orders/{trade_no}/confirm", {"reason": "上游已收款"})
        assert confirmed.status_code == 303
        await browser.get(f"/admin/orders/{trade_no}")
        upstream.refund_behaviour = "broken"
        sent = await browser.post(f"/admin/orders/{trade_no}/refund", {"amount": "50.00", "reason": "买家申请"})
        assert sent.status_code == 303
        page = await browser.get(sent.headers["location"])
        assert "退款处理中，金额已预留" in html.unescape(page.text)
        assert page.text.count('class="event ev_refund_processing"') == 1 and 'id="refund-form"' not in page.text
        # The amount stays reserved: a second refund cannot take it again while the first is unsure.
        await browser.get(f"/admin/orders/{trade_no}")
        twice = await browser.post(f"/admin/orders/{trade_no}/refund", {"amount": "50.00", "reason": "再试一次"})
        assert twice.status_code == 409 and "退款金额超过可退金额" in twice.text
    assert len(upstream.refunds) == 1 and upstream.refunds[0]["money"] == "50.00"
    order = await stored_order(gateway, trade_no)
    async with gateway.db.session() as session:
        [refund] = (await session.scalars(select(Refund).where(Refund.order_id == order.id))).all()
        [entry] = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "order.refund"))).all()
    assert refund.status == "processing" and order.refunded_fen == 5000 and order.status == "paid"
    assert entry.after["refund"] == "processing"


async def test_refunds_refuse_viewers_and_a_missing_token(server, gateway, merchant):
    trade_no = await paid_order(server, merchant, "http://127.0.0.1:9/notify", "R-2", money="5.00")
    viewer = await make_user(gateway, "vic", Role.VIEWER)
    operator = await make_user(gateway, "olga", Role.OPERATOR)
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(viewer)
        page = await browser.get(f"/admin/orders/{trade_no}")
        assert 'id="refund-form"' not in page.text
        refused = await browser.post(f"/admin/orders/{trade_no}/refund", {"amount": "5.00", "reason": "x"})
        assert refused.status_code == 403
    async with ConsoleClient(server.url) as browser:
        await browser.sign_in(operator)
        forged = await browser.post(f"/admin/orders/{trade_no}/refund", {"amount": "5.00", "reason": "x", "csrf": "no"})
        assert forged.status_code == 403 and 'data-refusal="csrf"' in forged.text
        assert (await browser.post("/admin/orders/NOSUCH/refund", {"amount": "1", "reason": "x"})).status_code == 404
    assert (await stored_order(gateway, trade_no)).refunded_fen == 0
