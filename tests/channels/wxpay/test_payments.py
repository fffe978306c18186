"""The ``wxpay`` channel against a fake WeChat Pay v3 on loopback that checks our signatures and signs its own.

A merchant orders through ``mapi.php`` with ``type=wxpay``; the order is placed at WeChat as a
Native order (a ``weixin://`` QR for desktops) or an H5 order (a pay page for phones); the
buyer pays, WeChat's encrypted, signed notification is verified and the merchant notified;
the merchant queries and refunds through ``api.php``. An order whose notification never came
is found by reconciliation; an expired order is closed at WeChat; ``channel test`` checks the
credentials live.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select, update

from openepay.db.models import ChannelCallback, NotifyTask, Order, Refund
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.notify.worker import NotifyWorker
from tests.support.channel_orders import mapi_order, paid_mapi_order
from tests.support.epay import order_params, signed
from tests.support.fake_wxpay import APPID, MCHID, FakeWxPay, new_key, private_pem, public_pem, running_fake_wxpay
from tests.support.orders import stored_order
from tests.support.settings import make_settings
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def wechat() -> Iterator[FakeWxPay]:
    with running_fake_wxpay() as fake:
        yield fake


async def wx_account(gateway: Gateway, wechat: FakeWxPay, name: str = "wx", **overrides: object) -> int:
    return (await gateway.accounts.add("wxpay", name, wechat.account_config(**overrides))).id


async def wx_order(client: httpx.AsyncClient, merchant, shop, out_trade_no: str, **overrides: str) -> dict:  # type: ignore[no-untyped-def]
    return await mapi_order(client, merchant, shop, out_trade_no, type="wxpay", **overrides)


async def test_a_native_order_is_paid_notified_queried_and_refunded(server, gateway, merchant, shop, worker, wechat):
    account_id = await wx_account(gateway, wechat)

    async def placed(answer: dict) -> None:
        at_wechat = wechat.orders[answer["trade_no"]]
        # WeChat got the amount in fen, our number, this account's callback URL; the buyer gets the code_url.
        assert (at_wechat["kind"], at_wechat["amount"], at_wechat["mchid"], at_wechat["appid"]) == (
            "native",
            {"total": 1234, "currency": "CNY"},
            MCHID,
            APPID,
        )
        assert at_wechat["notify_url"] == f"{server.url}/channels/wxpay/{account_id}/notify"
        assert answer["qrcode"].startswith("weixin://wxpay/bizpayurl?pr=")
        order = await stored_order(gateway, answer["trade_no"])
        assert (order.channel, order.channel_account_id, order.status) == ("wxpay", account_id, "paying")

    async with server.client() as client:
        paid = await paid_mapi_order(
            client, merchant, shop, "WX-1", pay=wechat.pay, placed=placed, type="wxpay", money="12.34"
        )
        trade_no, (reply, _) = paid.trade_no, paid.paid
        assert (reply.status_code, reply.json()) == (200, {"code": "SUCCESS"})
        assert paid.notification.params["money"] == "12.34"

        query = {"act": "order", "pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no}
        found = (await client.get("/api.php", params=query)).json()
        assert (found["status"], found["api_trade_no"]) == (1, wechat.orders[trade_no]["transaction_id"])
        assert found["buyer"] == "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"

        refund = {"pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no, "money": "2.00"}
        refunded = (await client.post("/api.php?act=refund", data=refund)).json()
        assert (refunded["code"], refunded["money"]) == (1, "2.00"), refunded
    [made] = [r for r in wechat.refunds if r["out_trade_no"] == trade_no]
    assert made["amount"] == {"refund": 200, "total": 1234, "currency": "CNY"}
    assert (await stored_order(gateway, trade_no)).status == "partially_refunded"


async def test_a_refund_whose_answer_was_lost_is_decided_by_wechats_record_of_it(
    server, gateway, merchant, shop, worker, wechat
):
    await wx_account(gateway, wechat)
    async with server.client() as client:
        trade_no = (await wx_order(client, merchant, shop, "WX-REFUND-LOST"))["trade_no"]
        await wechat.pay(trade_no)
        await eventually(lambda: _status_is(gateway, trade_no, "paid"))
        # WeChat takes the refund, then fails answering: its record says it was made.
        wechat.refund_failure = "after"
        refund = {"pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no, "money": "0.30"}
        refunded = (await client.post("/api.php?act=refund", data=refund)).json()
    assert (refunded["code"], refunded["money"]) == (1, "0.30"), refunded
    assert len([r for r in wechat.refunds if r["out_trade_no"] == trade_no]) == 1
    assert (await stored_order(gateway, trade_no)).status == "partially_refunded"


async def test_a_refund_wechat_failed_before_taking_stays_pending_until_reconciliation_sends_it_again(
    server, gateway, merchant, shop, worker, wechat, database_url
):
    await wx_account(gateway, wechat)
    async with server.client() as client:
        trade_no = (await wx_order(client, merchant, shop, "WX-REFUND-AGAIN"))["trade_no"]
        await wechat.pay(trade_no)
        await eventually(lambda: _status_is(gateway, trade_no, "paid"))
        wechat.refund_failure = "before"
        refund = {"pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no, "money": "0.30"}
        refunded = (await client.post("/api.php?act=refund", data=refund)).json()
    # Not refunded yet, not failed either: the merchant is told it is in progress.
    assert refunded["code"] != 1 and "处理中" in refunded["msg"], refunded
    assert not [r for r in wechat.refunds if r["out_trade_no"] == trade_no]
    order_id = (await stored_order(gateway, trade_no)).id
    async with gateway.db.session() as session:
        [pending] = (await session.scalars(select(Refund).where(Refund.order_id == order_id))).all()
    assert pending.status == "processing"

    sweeper = Gateway.from_settings(make_settings(database_url, reconcile_after_seconds=0))
    try:
        await NotifyWorker(sweeper, name="reconciler").sweep()
    finally:
        await sweeper.aclose()
    [made] = [r for r in wechat.refunds if r["out_trade_no"] == trade_no]
    assert (made["out_refund_no"], made["amount"]["refund"]) == (pending.refund_no, 30)
    assert (await stored_order(gateway, trade_no)).status == "partially_refunded"


async def _status_is(gateway: Gateway, trade_no: str, status: str) -> bool:
    return (await stored_order(gateway, trade_no)).status == status


async def test_a_phone_gets_the_h5_pay_page_and_comes_back_to_our_cashier(server, gateway, merchant, shop, wechat):
    await wx_account(gateway, wechat)
    async with server.client() as client:
        answer = await wx_order(client, merchant, shop, "WX-H5", device="mobile")
    placed = wechat.orders[answer["trade_no"]]
    assert (placed["kind"], placed["scene_info"]["payer_client_ip"]) == ("h5", "203.0.113.9")
    assert answer["payurl"].startswith("https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=")
    assert "&redirect_url=http%3A%2F%2F127.0.0.1" in answer["payurl"]


async def test_without_h5_a_phone_is_sent_to_our_cashier_with_the_native_code(server, gateway, merchant, shop, wechat):
    await wx_account(gateway, wechat, h5=False)
    async with server.client() as client:
        answer = await wx_order(client, merchant, shop, "WX-NOH5", device="mobile")
        assert wechat.orders[answer["trade_no"]]["kind"] == "native"
        cashier = await client.get(answer["payurl"])
    assert cashier.status_code == 200
    assert answer["payurl"].startswith(server.url)


async def test_an_account_wechat_refuses_creates_nothing_and_the_next_one_serves(
    server, gateway, merchant, shop, wechat
):
    # WeChat refuses the first account's orders (its AppID is not bound to the merchant number).
    await wx_account(gateway, wechat, "unbound", appid="wx0000000000000000")
    serving = await wx_account(gateway, wechat, "bound")
    await gateway.accounts.set_rules("unbound", {"priority": 10})
    async with server.client() as client:
        answer = await wx_order(client, merchant, shop, "WX-FALLBACK")
    order = await stored_order(gateway, answer["trade_no"])
    assert order.channel_account_id == serving
    assert answer["qrcode"].startswith("weixin://")
    assert not [placed for placed in wechat.orders.values() if placed["appid"] == "wx0000000000000000"]


async def test_an_answer_wechat_did_not_sign_is_not_believed_and_no_second_account_is_tried(
    server, gateway, merchant, shop, wechat
):
    # This account trusts another WeChat Pay public key: the fake's signed answers do not verify.
    await wx_account(gateway, wechat, "misconfigured", platform_public_key=public_pem(new_key()))
    await wx_account(gateway, wechat, "spare")
    await gateway.accounts.set_rules("misconfigured", {"priority": 10})
    before = len(wechat.orders)
    async with server.client() as client:
        params = order_params(merchant.pid, shop.url, "WX-UNSIGNED", type="wxpay", clientip="203.0.113.9", device="pc")
        answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert answer["code"] != 1 and "qrcode" not in answer, answer
    # WeChat may have taken the first order, so no second one was placed for the same purchase.
    assert len(wechat.orders) == before + 1


async def test_reconciliation_finds_a_payment_whose_notification_never_came(
    server, gateway, merchant, shop, database_url, wechat
):
    await wx_account(gateway, wechat)
    async with server.client() as client:
        trade_no = (await wx_order(client, merchant, shop, "WX-RECON"))["trade_no"]
    wechat.buyer_pays(trade_no)

    sweeper = Gateway.from_settings(make_settings(database_url, reconcile_after_seconds=0))
    try:
        await NotifyWorker(sweeper, name="reconciler").sweep()
    finally:
        await sweeper.aclose()
    order = await stored_order(gateway, trade_no)
    assert (order.status, order.paid_fen) == ("paid", 100)
    assert order.channel_trade_no == wechat.orders[trade_no]["transaction_id"]


async def test_an_expired_order_is_closed_at_wechat(server, gateway, merchant, shop, worker, wechat):
    await wx_account(gateway, wechat)
    async with server.client() as client:
        trade_no = (await wx_order(client, merchant, shop, "WX-CLOSE"))["trade_no"]
    async with gateway.db.session() as session:
        await session.execute(update(Order).where(Order.trade_no == trade_no).values(expires_at=utcnow()))
    await eventually(lambda: wechat.orders[trade_no]["trade_state"] == "CLOSED")
    assert (await stored_order(gateway, trade_no)).status == "closed"


async def test_a_payment_made_as_the_order_expired_is_found_by_the_last_look_before_closing(
    server, gateway, merchant, shop, wechat
):
    await wx_account(gateway, wechat)
    async with server.client() as client:
        trade_no = (await wx_order(client, merchant, shop, "WX-LATE"))["trade_no"]
    # The buyer pays just as the order expires; WeChat's notification is still on its way.
    on_its_way = wechat.notification(wechat.buyer_pays(trade_no))
    async with gateway.db.session() as session:
        await session.execute(update(Order).where(Order.trade_no == trade_no).values(expires_at=utcnow()))
    sweeper = NotifyWorker(gateway, name="sweeper")
    try:
        await sweeper.sweep()
    finally:
        await sweeper.aclose()
    order = await stored_order(gateway, trade_no)
    assert (order.status, order.paid_late) == ("paid", False)
    assert order.channel_trade_no == wechat.orders[trade_no]["transaction_id"]
    # The notification, when it comes, is taken and credits nothing more.
    reply = await wechat.send(wechat.orders[trade_no]["notify_url"], on_its_way)
    assert (reply.status_code, reply.json()) == (200, {"code": "SUCCESS"})
    async with gateway.db.session() as session:
        [kept] = (await session.scalars(select(ChannelCallback).where(ChannelCallback.trade_no == trade_no))).all()
        notifications = await session.scalar(select(func.count()).select_from(NotifyTask))
    assert (kept.decision, notifications) == ("already_paid", 1)


async def test_channel_test_checks_the_credentials_live(gateway, wechat):
    await wx_account(gateway, wechat, "right")
    await wx_account(gateway, wechat, "wrong-private-key", merchant_private_key=private_pem(new_key()))
    await wx_account(gateway, wechat, "wrong-wechat-key", platform_public_key=public_pem(new_key()))
    channel = gateway.channel("wxpay")
    assert channel is not None
    results = {}
    for name in ("right", "wrong-private-key", "wrong-wechat-key"):
        check = await channel.check_credentials(gateway.accounts.open(await gateway.accounts.record(name)))
        results[name] = check.ok
        assert "PRIVATE KEY" not in check.detail
    assert results == {"right": True, "wrong-private-key": False, "wrong-wechat-key": False}
    assert "bad signature" in wechat.refused


async def test_every_callback_is_kept_with_what_was_decided(server, gateway, merchant, shop, worker, wechat):
    await wx_account(gateway, wechat)
    async with server.client() as client:
        trade_no = (await wx_order(client, merchant, shop, "WX-KEPT"))["trade_no"]
    _, sent = await wechat.pay(trade_no)
    async with gateway.db.session() as session:
        [kept] = (await session.scalars(select(ChannelCallback).where(ChannelCallback.trade_no == trade_no))).all()
    assert (kept.channel, kept.verified, kept.decision) == ("wxpay", True, "paid")
    # What is kept is the envelope WeChat sent, still encrypted.
    assert json.loads(kept.payload)["resource"]["ciphertext"] == json.loads(sent.body)["resource"]["ciphertext"]
