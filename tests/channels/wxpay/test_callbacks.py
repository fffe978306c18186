"""Forged, tampered, stale and replayed WeChat Pay notifications change nothing.

Each is sent over real HTTP to an account's callback URL, as WeChat would send it. Unverified
ones are answered with a 4xx and ``{"code":"FAIL"}`` (WeChat retries those, and a forger gets
nothing); genuine ones that the order refuses (wrong amount, another account's order) are
taken so WeChat stops, and recorded for the operator. Only the one genuine payment is credited
and notified, once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from openepay.db.models import ChannelCallback
from openepay.gateway import Gateway
from tests.support.channel_orders import mapi_order
from tests.support.fake_wxpay import FakeWxPay, Notification, new_key, running_fake_wxpay, wechat_headers
from tests.support.orders import payments_and_notifications, stored_order
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def wechat() -> Iterator[FakeWxPay]:
    with running_fake_wxpay() as fake:
        yield fake


async def place(client: httpx.AsyncClient, merchant, shop, out_trade_no: str, pay_type: str = "wxpay") -> str:  # type: ignore[no-untyped-def]
    return (await mapi_order(client, merchant, shop, out_trade_no, type=pay_type))["trade_no"]


async def status(gateway: Gateway, trade_no: str) -> str:
    return (await stored_order(gateway, trade_no)).status


async def decisions(gateway: Gateway, trade_no: str) -> list[tuple[bool, str]]:
    async with gateway.db.session() as session:
        rows = await session.scalars(
            select(ChannelCallback).where(ChannelCallback.trade_no == trade_no).order_by(ChannelCallback.id)
        )
        return [(row.verified, row.decision) for row in rows.all()]


def tampered(genuine: Notification, other: Notification) -> Notification:
    """WeChat's genuine signature headers over one body, sent with another."""
    return Notification(genuine.headers, other.body)


async def test_forged_tampered_stale_and_replayed_notifications_change_nothing(
    server, gateway, merchant, shop, worker, wechat
):
    account_id = (await gateway.accounts.add("wxpay", "wx", wechat.account_config())).id
    url = f"{server.url}/channels/wxpay/{account_id}/notify"
    async with server.client() as client:
        unpaid = await place(client, merchant, shop, "WXF-1")
        paid = await place(client, merchant, shop, "WXF-2")
        # qqpay is not WeChat's: the sandbox serves it, so this order is on another channel.
        foreign = await place(client, merchant, shop, "WXF-3", pay_type="qqpay")
    reply, genuine = await wechat.pay(paid)
    assert reply.status_code == 200
    await eventually(lambda: shop.notifications())

    payment = wechat.transaction(unpaid, trade_state="SUCCESS")
    cheaper = wechat.notification({**payment, "amount": {"total": 1}})
    # Six minutes off our clock: past the five WeChat's signatures are good for.
    skew = 360
    refused = {
        "wrong key": wechat.notification(payment, signing_key=new_key()),
        "another key's id": wechat.notification(payment, serial="PUB_KEY_ID_0000000000000000000000000000000000"),
        "tampered body": tampered(wechat.notification(payment), cheaper),
        "another APIv3 key": wechat.notification(payment, apiv3_key="0" * 32),
        "another mchid": wechat.notification({**payment, "mchid": "1900000999"}),
        "another appid": wechat.notification({**payment, "appid": "wx1111111111111111"}),
        "stale timestamp": wechat.notification(payment, timestamp=int(time.time()) - skew),
        "from the future": wechat.notification(payment, timestamp=int(time.time()) + skew),
    }
    for name, forged in refused.items():
        answer = await wechat.send(url, forged)
        assert 400 <= answer.status_code < 500, name
        assert answer.json()["code"] == "FAIL", name
        assert answer.json()["message"], name

    # Signed by WeChat, but not what the order needs: taken so WeChat stops, recorded, not credited.
    short = await wechat.send(url, wechat.notification({**payment, "amount": {"total": 99, "payer_total": 99}}))
    assert (short.status_code, short.json()) == (200, {"code": "SUCCESS"})
    elsewhere = await wechat.send(url, wechat.notification({**payment, "out_trade_no": foreign}))
    assert elsewhere.status_code == 200
    # WeChat sends the genuine notification again: taken, counted once.
    replayed = await wechat.send(url, genuine)
    assert (replayed.status_code, replayed.json()) == (200, {"code": "SUCCESS"})

    assert (await status(gateway, unpaid), await status(gateway, foreign)) == ("paying", "paying")
    assert await decisions(gateway, unpaid) == [
        (False, "another merchant's mchid"),
        (False, "another app's appid"),
        (True, "amount_mismatch"),
    ]
    assert await decisions(gateway, foreign) == [(True, "wrong_channel")]
    assert await decisions(gateway, paid) == [(True, "paid"), (True, "already_paid")]
    async with gateway.db.session() as session:
        unattributed = await session.scalars(
            select(ChannelCallback.decision).where(ChannelCallback.trade_no.is_(None)).order_by(ChannelCallback.id)
        )
        assert list(unattributed.all()) == [
            "bad signature",
            "unknown Wechatpay-Serial",
            "bad signature",
            "undecryptable resource",
            "stale timestamp",
            "stale timestamp",
        ]
    assert await payments_and_notifications(gateway) == (1, 1)


async def test_a_genuine_notification_sent_to_another_account_credits_nothing(server, gateway, merchant, shop, wechat):
    """Both accounts trust the same WeChat key; only the order's own account may confirm it."""
    first = (await gateway.accounts.add("wxpay", "first", wechat.account_config())).id
    second = (await gateway.accounts.add("wxpay", "second", wechat.account_config())).id
    await gateway.accounts.set_rules("second", {"pay_types": ["alipay"]})
    async with server.client() as client:
        trade_no = await place(client, merchant, shop, "WXF-ACCT")
    notification = wechat.notification(wechat.buyer_pays(trade_no))
    answer = await wechat.send(f"{server.url}/channels/wxpay/{second}/notify", notification)
    assert answer.status_code == 200
    assert await status(gateway, trade_no) == "paying"
    assert await decisions(gateway, trade_no) == [(True, "wrong_channel")]
    # The same notification at the order's own account pays it.
    assert (await wechat.send(f"{server.url}/channels/wxpay/{first}/notify", notification)).status_code == 200
    assert await status(gateway, trade_no) == "paid"


@pytest.mark.parametrize("body", [b"", b"not json", b'{"resource": "nope"}', b"[]", b'{"resource": {}}'])
async def test_garbage_is_refused_in_wechats_format_never_a_500(server, gateway, wechat, body):
    account_id = (await gateway.accounts.add("wxpay", "wx", wechat.account_config())).id
    url = f"{server.url}/channels/wxpay/{account_id}/notify"
    async with httpx.AsyncClient(timeout=10) as client:
        for sent in (
            await client.post(url, content=body),
            # Signed by WeChat's key, and still not a notification.
            await client.post(url, content=body, headers=wechat_headers(wechat.wechat_key, body)),
            await client.get(url),
        ):
            assert 400 <= sent.status_code < 500, sent.text
            assert sent.json()["code"] == "FAIL"
