"""The sandbox channel: its simulated upstream page, its signed callbacks, and what it refuses."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from openepay.app import create_app
from openepay.channels.base import UpstreamState
from openepay.channels.sandbox import SandboxChannel
from openepay.channels.sandbox.simulator import SandboxRefusal, simulate_buyer_payment
from openepay.core.orders import channel_view, get_order
from openepay.db.models import ChannelCallback, NotifyTask, Order
from openepay.gateway import Gateway
from tests.conftest import make_settings
from tests.support.database import refused_writes, stored_order
from tests.support.epay import order_params, signed
from tests.support.links import cashier_path, sandbox_path, trade_no_of
from tests.support.servers import ServerThread
from tests.support.waiting import eventually
from tests.web.test_cashier import Page, expire, mapi_order


def sandbox_of(gateway: Gateway) -> SandboxChannel:
    channel = gateway.channels.get("sandbox")
    assert isinstance(channel, SandboxChannel)
    return channel


async def callbacks_for(gateway: Gateway, trade_no: str) -> list[ChannelCallback]:
    async with gateway.db.session() as session:
        rows = await session.scalars(
            select(ChannelCallback).where(ChannelCallback.trade_no == trade_no).order_by(ChannelCallback.id)
        )
        return list(rows.all())


async def test_sandbox_page_shows_the_banner_the_order_and_the_amount(server, merchant, shop):
    async with server.client() as client:
        answer = await mapi_order(client, merchant, shop, "S-1", name="年度会员 <b>", money="88.80")
        response = await client.get(sandbox_path(answer["trade_no"]))

    assert response.status_code == 200
    page = Page(response.text)
    assert "SANDBOX" in page.body_text
    assert "不产生真实交易" in page.body_text
    assert page.text("product-name") == "年度会员 <b>"
    assert page.text("amount") == "¥88.80"
    assert answer["trade_no"] in page.body_text
    assert page.text("simulate-pay") == "模拟支付成功 / Simulate payment"


async def test_paying_twice_pays_once_and_notifies_once(server, merchant, shop, gateway, worker):
    async with server.client() as client:
        trade_no = (await mapi_order(client, merchant, shop, "S-2"))["trade_no"]
        first = await client.post(sandbox_path(trade_no))
        second = await client.post(sandbox_path(trade_no))
        page_after = Page((await client.get(sandbox_path(trade_no))).text)

    assert first.status_code == 303
    assert first.headers["location"] == cashier_path(trade_no)
    assert second.status_code == 409
    assert "该订单已支付" in Page(second.text).body_text
    assert not page_after.has("simulate-pay")
    assert page_after.text("message") == "该订单已支付"

    [notification] = await eventually(lambda: shop.notifications())
    assert notification.signature_ok is True
    assert notification.params["trade_no"] == trade_no
    [callback] = await callbacks_for(gateway, trade_no)
    assert (callback.channel, callback.verified, callback.decision) == ("sandbox", True, "paid")

    async def delivered_tasks() -> list[NotifyTask]:
        async with gateway.db.session() as session:
            rows = await session.scalars(select(NotifyTask).join(Order).where(Order.trade_no == trade_no))
            tasks = list(rows.all())
        return tasks if all(task.status == "succeeded" for task in tasks) else []

    [task] = await eventually(delivered_tasks)
    assert task.attempts == 1
    assert len(shop.notifications()) == 1


async def test_forged_callbacks_are_refused_stored_unverified_and_never_pay(server, merchant, shop, gateway):
    async with server.client() as client:
        trade_no = (await mapi_order(client, merchant, shop, "S-3", money="9.99"))["trade_no"]
        genuine = sandbox_of(gateway).payment_callback(trade_no, 999)
        forgeries = {
            "bad sign": {**genuine, "sign": "0" * 64},
            "missing fields": {"trade_no": trade_no, "amount_fen": "999", "sign": genuine["sign"]},
            "amount tampered": {**genuine, "amount_fen": "1"},
        }
        replies = {name: await client.post("/channels/sandbox/notify", data=form) for name, form in forgeries.items()}
        status = (await client.get(f"{cashier_path(trade_no)}/status")).json()

    for name, reply in replies.items():
        assert (reply.status_code, reply.text) == (400, "fail"), name
    assert status == {"status": "paying", "paid": False}
    stored = await callbacks_for(gateway, trade_no)
    assert len(stored) == 3
    assert all(row.verified is False for row in stored)
    assert {row.decision for row in stored}.isdisjoint({"paid", "paid_late", "already_paid"})


async def test_signed_callback_for_another_amount_is_stored_as_mismatch_and_does_not_pay(
    server, merchant, shop, gateway
):
    async with server.client() as client:
        trade_no = (await mapi_order(client, merchant, shop, "S-4", money="10.00"))["trade_no"]
        callback = sandbox_of(gateway).payment_callback(trade_no, 1)
        reply = await client.post("/channels/sandbox/notify", data=callback)
        status = (await client.get(f"{cashier_path(trade_no)}/status")).json()

    assert (reply.status_code, reply.text) == (200, "success")
    assert status == {"status": "paying", "paid": False}
    [stored] = await callbacks_for(gateway, trade_no)
    assert (stored.verified, stored.decision) == (True, "amount_mismatch")


async def test_a_correctly_signed_callback_pays_the_order(server, merchant, shop, gateway):
    async with server.client() as client:
        trade_no = (await mapi_order(client, merchant, shop, "S-5", money="10.00"))["trade_no"]
        reply = await client.post("/channels/sandbox/notify", data=sandbox_of(gateway).payment_callback(trade_no, 1000))
        status = (await client.get(f"{cashier_path(trade_no)}/status")).json()
    assert (reply.status_code, reply.text) == (200, "success")
    assert status == {"status": "paid", "paid": True}


async def test_sandbox_is_absent_from_a_gateway_without_sandbox(database_url, merchant, shop, gateway):
    production = ServerThread(create_app(make_settings(database_url, sandbox=False))).start()
    try:
        async with httpx.AsyncClient(base_url=production.url, timeout=10) as client:
            page = await client.get("/sandbox/pay/20990101000000000000")
            pay = await client.post("/sandbox/pay/20990101000000000000")
            notify = await client.post("/channels/sandbox/notify", data={"trade_no": "1"})
            params = order_params(merchant.pid, shop.url, "S-6", clientip="203.0.113.9", device="pc")
            answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
            chooser = Page((await client.get(answer["payurl"].removeprefix(production.url))).text)
    finally:
        production.stop()

    assert page.status_code == 404
    assert pay.status_code == 404
    assert notify.status_code == 404
    # No channel takes the order: the buyer is sent to choose another way to pay, with a note saying so.
    trade_no = answer["trade_no"]
    assert answer == {"code": 1, "trade_no": trade_no, "payurl": f"{production.url}{cashier_path(trade_no)}?other=1"}
    assert chooser.text("note") == "该支付方式暂不可用，请选择其他支付方式"
    assert (await stored_order(gateway, trade_no)).channel is None


async def test_query_reports_pending_before_and_paid_with_the_amount_after(server, merchant, shop, gateway):
    async with server.client() as client:
        trade_no = (await mapi_order(client, merchant, shop, "S-7", money="6.66"))["trade_no"]
        order = await get_order(gateway.db, trade_no)
        assert order is not None
        before = await sandbox_of(gateway).query(sandbox_of(gateway).implicit(), channel_view(order))
        await client.post(sandbox_path(trade_no))
        after = await sandbox_of(gateway).query(sandbox_of(gateway).implicit(), channel_view(order))

    assert before.state == UpstreamState.PENDING
    assert after.state == UpstreamState.PAID
    assert after.paid_fen == 666
    assert after.channel_trade_no and after.channel_trade_no.startswith("SB")


async def test_simulator_refuses_what_the_upstream_would_refuse(server, merchant, shop, gateway, database_url):
    async with server.client() as client:
        paid = (await mapi_order(client, merchant, shop, "S-8"))["trade_no"]
        closed = (await mapi_order(client, merchant, shop, "S-9"))["trade_no"]
        no_channel = await client.get(
            "/submit.php", params=signed(order_params(merchant.pid, shop.url, "S-10", type=None), merchant.key)
        )
    unchosen = trade_no_of(no_channel.headers["location"])

    await simulate_buyer_payment(gateway, paid)
    with pytest.raises(SandboxRefusal, match="^该订单已支付$"):
        await simulate_buyer_payment(gateway, paid)

    await expire(gateway, closed)
    with pytest.raises(SandboxRefusal, match="^订单已关闭，模拟上游拒绝收款$"):
        await simulate_buyer_payment(gateway, closed)

    with pytest.raises(SandboxRefusal, match="^该订单不是 Sandbox 通道的订单$"):
        await simulate_buyer_payment(gateway, unchosen)

    with pytest.raises(SandboxRefusal, match="^订单不存在$"):
        await simulate_buyer_payment(gateway, "20990101000000000000")

    production = Gateway.from_settings(make_settings(database_url, sandbox=False))
    try:
        async with server.client() as client:
            pending = (await mapi_order(client, merchant, shop, "S-11"))["trade_no"]
        with pytest.raises(SandboxRefusal, match=r"^Sandbox 通道未启用（OPENEPAY_SANDBOX=1）$"):
            await simulate_buyer_payment(production, pending)
    finally:
        await production.aclose()

    statuses = [(await get_order(gateway.db, t)) for t in (paid, closed, unchosen, pending)]
    assert [order.status for order in statuses if order] == ["paid", "closed", "created", "paying"]


async def test_a_payment_the_gateway_failed_to_record_is_reported_and_changes_nothing(server, merchant, shop, gateway):
    async with server.client() as client:
        trade_no = (await mapi_order(client, merchant, shop, "S-12", money="3.00"))["trade_no"]
        paid_by_trade_no = f"NEW.status = 'paid' AND NEW.trade_no = '{trade_no}'"
        async with refused_writes(gateway, "UPDATE", "orders", paid_by_trade_no):
            pressed = await client.post(sandbox_path(trade_no))
        status = (await client.get(f"{cashier_path(trade_no)}/status")).json()
        order = await stored_order(gateway, trade_no)
        async with gateway.db.session() as session:
            tasks = (await session.scalars(select(NotifyTask).where(NotifyTask.order_id == order.id))).all()
        balance = (await gateway.merchants.get(merchant.pid)).balance_fen
        again = await client.post(sandbox_path(trade_no))  # once the database takes writes again, so does the button

    assert pressed.status_code == 503
    assert Page(pressed.text).text("message") == "支付未能记录：网关暂时无法保存支付结果，订单仍未支付，请稍后重试"
    assert status == {"status": "paying", "paid": False}
    assert (order.paid_at, order.paid_fen, tasks, balance) == (None, None, [], 0)
    assert again.status_code == 303
    assert (await stored_order(gateway, trade_no)).status == "paid"


async def test_a_payment_recorded_before_the_callback_log_failed_is_shown_as_paid(server, merchant, shop, gateway):
    async with server.client() as client:
        trade_no = (await mapi_order(client, merchant, shop, "S-13"))["trade_no"]
        async with refused_writes(gateway, "INSERT", "channel_callbacks", f"NEW.trade_no = '{trade_no}'"):
            pressed = await client.post(sandbox_path(trade_no))
        status = (await client.get(f"{cashier_path(trade_no)}/status")).json()

    assert (pressed.status_code, pressed.headers["location"]) == (303, cashier_path(trade_no))
    assert status == {"status": "paid", "paid": True}
    assert len(await callbacks_for(gateway, trade_no)) == 0
