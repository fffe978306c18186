"""The ``alipay`` channel end to end against a fake Alipay gateway on loopback (``tests/support/fake_alipay.py``).

A merchant's order comes in through ``mapi.php`` or ``submit.php``, our gateway asks the fake
with RSA2-signed requests (which the fake checks), the buyer pays at the fake, the fake POSTs
a signed notification to our callback URL, and the merchant is notified. Queries, refunds and
closes go through the fake too; forged and replayed notifications change nothing.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import update

from openepay.core.channel_accounts import AccountError
from openepay.core.orders import channel_view
from openepay.db.models import Order
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.notify.worker import NotifyWorker
from tests.support.channel_orders import mapi_order, paid_mapi_order
from tests.support.epay import order_params, signed
from tests.support.fake_alipay import (
    FakeAlipay,
    issue_certificates,
    new_key,
    private_pem,
    public_base64,
    sign_notification,
)
from tests.support.orders import channel_callbacks, payments_and_notifications, stored_order
from tests.support.settings import make_settings
from tests.support.waiting import eventually

DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


async def alipay_account(gateway: Gateway, fake: FakeAlipay, name: str = "alipay-main", **config: object) -> int:
    return (await gateway.accounts.add("alipay", name, fake.account_config(**config))).id


async def test_a_precreate_order_is_paid_notified_queried_and_refunded(
    server, gateway, merchant, shop, worker, fake_alipay
):
    account_id = await alipay_account(gateway, fake_alipay)

    async def placed(answer: dict) -> None:
        order = await stored_order(gateway, answer["trade_no"])
        assert (order.channel, order.channel_account_id, order.status) == ("alipay", account_id, "paying")
        # The buyer scans Alipay's own 当面付 code, made for our number and the exact amount.
        trade = fake_alipay.trades[answer["trade_no"]]
        assert answer["qrcode"] == f"https://qr.alipay.com/bax{trade.trade_no[-12:]}"
        # Characters Alipay refuses in a subject become spaces.
        assert (trade.total_amount, trade.subject, trade.method) == ("12.34", "VIP 会员 1 2", "alipay.trade.precreate")
        assert trade.notify_url == f"{server.url}/channels/alipay/{account_id}/notify"

    async with server.client() as client:
        paid = await paid_mapi_order(
            client, merchant, shop, "ALI-1", pay=fake_alipay.pay, placed=placed, money="12.34", name="VIP/会员 & 1=2"
        )
        trade_no, trade = paid.trade_no, fake_alipay.trades[paid.trade_no]
        order = await stored_order(gateway, trade_no)
        assert (paid.paid.status_code, paid.paid.text) == (200, "success")
        assert paid.notification.params["money"] == "12.34"
        [callback] = await channel_callbacks(gateway, trade_no)
        assert (callback.channel, callback.verified, callback.decision) == ("alipay", True, "paid")

        query = {"act": "order", "pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no}
        found = (await client.get("/api.php", params=query)).json()
        assert (found["status"], found["api_trade_no"], found["buyer"]) == (1, trade.trade_no, "bu***@example.com")
        assert (
            await gateway.channel("alipay").query(  # type: ignore[union-attr]
                gateway.accounts.open(await gateway.accounts.record("alipay-main")), channel_view(order)
            )
        ).paid_fen == 1234

        refund = {"pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no, "money": "2.00"}
        refunded = (await client.post("/api.php?act=refund", data=refund)).json()
        assert (refunded["code"], refunded["money"]) == (1, "2.00"), refunded
    assert list(trade.refunds.values()) == ["2.00"]
    assert (await stored_order(gateway, trade_no)).status == "partially_refunded"
    assert fake_alipay.refused == []


async def test_wap_pay_for_a_phone_and_page_pay_through_submit_php(
    server, gateway, merchant, shop, worker, fake_alipay
):
    await alipay_account(gateway, fake_alipay, pc_method="page")
    async with server.client() as client:
        # A phone gets the signed 手机网站支付 URL at Alipay's gateway.
        answer = await mapi_order(client, merchant, shop, "WAP-1", device="mobile")
        async with httpx.AsyncClient(timeout=10) as browser:
            cashier = await browser.get(answer["payurl"])
        assert answer["payurl"].startswith(fake_alipay.url + "/gateway.do?")
        assert (cashier.status_code, 'id="product">QUICK_WAP_WAY<' in cashier.text) == (200, True), cashier.text

        # submit.php from a desktop: our cashier, which links to the signed 电脑网站支付 URL.
        params = order_params(merchant.pid, shop.url, "PAGE-1")
        jump = await client.post("/submit.php", data=signed(params, merchant.key), headers={"User-Agent": DESKTOP})
        assert jump.status_code == 302, jump.text
        page = await client.get(jump.headers["location"], headers={"User-Agent": DESKTOP})
        link = page.text.split('id="open-pay-link" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        async with httpx.AsyncClient(timeout=10) as browser:
            alipay_page = await browser.get(link)
            assert 'id="product">FAST_INSTANT_TRADE_PAY<' in alipay_page.text
            page_trade = next(t for t in fake_alipay.trades.values() if t.method == "alipay.trade.page.pay")
            back = await browser.post(f"{fake_alipay.url}/__fake__/pay/{page_trade.out_trade_no}")
        # Paid at Alipay, the buyer's browser comes back to our cashier's return page.
        assert back.status_code == 303 and "/cashier/" in back.headers["location"]
    [notification] = await eventually(lambda: shop.notifications())
    assert notification.params["out_trade_no"] == "PAGE-1"
    assert (await stored_order(gateway, page_trade.out_trade_no)).status == "paid"
    assert fake_alipay.refused == []


async def test_forged_tampered_and_replayed_notifications_change_nothing(
    server, gateway, merchant, shop, worker, fake_alipay
):
    account_id = await alipay_account(gateway, fake_alipay)
    other_id = await alipay_account(gateway, fake_alipay, name="alipay-other")
    await gateway.accounts.set_enabled("alipay-other", False)
    path = f"{server.url}/channels/alipay/{account_id}/notify"
    async with server.client() as client:
        unpaid = (await mapi_order(client, merchant, shop, "FORGE-1"))["trade_no"]
        paid = (await mapi_order(client, merchant, shop, "FORGE-2"))["trade_no"]
        # An order served by the sandbox: its number belongs to no order of this account.
        foreign = (await mapi_order(client, merchant, shop, "FORGE-3", type="qqpay"))["trade_no"]
    genuine_reply = await fake_alipay.pay(paid)
    assert genuine_reply.text == "success"
    await eventually(lambda: shop.notifications())
    [genuine] = await channel_callbacks(gateway, paid)

    trade = fake_alipay.scan(unpaid)
    fields = {k: v for k, v in fake_alipay.notification(trade).items() if k not in ("sign", "sign_type")}
    forgeries = {
        "wrong key": sign_notification(fields, new_key()),
        "tampered amount": {**fake_alipay.notification(trade), "total_amount": "0.01"},
        "tampered number": {**fake_alipay.notification(trade), "out_trade_no": paid},
        "another app": sign_notification({**fields, "app_id": "2021000999999999"}, fake_alipay.alipay_key),
    }
    for name, forged in forgeries.items():
        reply = await FakeAlipay.send(path, forged)
        assert (reply.status_code, reply.text) == (200, "fail"), name
    # Signed by Alipay for this app, but for less than the order: recorded, acknowledged, not credited.
    short = await FakeAlipay.send(path, sign_notification({**fields, "total_amount": "0.99"}, fake_alipay.alipay_key))
    assert short.text == "success"
    # Genuine and for this app, but another order's number: not this account's order.
    stray = await FakeAlipay.send(path, sign_notification({**fields, "out_trade_no": foreign}, fake_alipay.alipay_key))
    assert stray.text == "success"
    # A genuine notification to another account's callback URL: that account's order it is not.
    elsewhere = await FakeAlipay.send(
        f"{server.url}/channels/alipay/{other_id}/notify", fake_alipay.notification(trade)
    )
    assert elsewhere.text == "success"
    # The genuine notification again, as Alipay retries: acknowledged, counted once.
    replayed = await FakeAlipay.send(path, dict(httpx.QueryParams(genuine.payload)))
    assert replayed.text == "success"

    assert (await stored_order(gateway, unpaid)).status == "paying"
    assert (await stored_order(gateway, foreign)).status == "paying"
    assert [row.decision for row in await channel_callbacks(gateway, unpaid)] == [
        "bad signature",
        "bad signature",
        "another app_id",
        "amount_mismatch",
        "wrong_channel",
    ]
    assert [row.decision for row in await channel_callbacks(gateway, foreign)] == ["wrong_channel"]
    assert [row.decision for row in await channel_callbacks(gateway, paid)] == ["paid", "bad signature", "already_paid"]
    assert await payments_and_notifications(gateway) == (1, 1)


async def test_channel_test_checks_the_app_id_and_both_keys_live(gateway, fake_alipay):
    accounts = {
        "right": ({}, True, "key accepted"),
        "wrong-app-key": ({"app_private_key": private_pem(new_key())}, False, "isv.invalid-signature"),
        "wrong-app-id": ({"app_id": "2021000999999999"}, False, "isv.invalid-app-id"),
        "wrong-alipay-key": ({"alipay_public_key": public_base64(new_key())}, False, "does not verify"),
    }
    channel = gateway.channel("alipay")
    assert channel is not None
    for name, (config, ok, detail) in accounts.items():
        await alipay_account(gateway, fake_alipay, name=name, **config)
        check = await channel.check_credentials(gateway.accounts.open(await gateway.accounts.record(name)))
        assert (check.ok, detail in check.detail) == (ok, True), (name, check.detail)


async def test_reconciliation_finds_a_payment_whose_notification_never_came_and_closes_expired_orders(
    server, database_url, gateway, merchant, shop, fake_alipay
):
    await alipay_account(gateway, fake_alipay)
    async with server.client() as client:
        silent = (await mapi_order(client, merchant, shop, "SILENT-1"))["trade_no"]
        unscanned = (await mapi_order(client, merchant, shop, "UNSCANNED-1"))["trade_no"]
        abandoned = (await mapi_order(client, merchant, shop, "ABANDONED-1"))["trade_no"]
    # Paid at Alipay, but the notification is lost; another QR was scanned and left unpaid.
    paid_trade = fake_alipay.scan(silent)
    paid_trade.status, paid_trade.buyer_logon_id = "TRADE_SUCCESS", "bu***@example.com"
    fake_alipay.scan(abandoned)
    async with gateway.db.session() as session:
        await session.execute(update(Order).where(Order.trade_no == abandoned).values(expires_at=utcnow()))

    sweeper = Gateway.from_settings(make_settings(database_url, reconcile_after_seconds=0))
    try:
        await NotifyWorker(sweeper, name="reconciler").sweep()
    finally:
        await sweeper.aclose()
    order = await stored_order(gateway, silent)
    assert (order.status, order.paid_fen, order.buyer) == ("paid", 100, "bu***@example.com")
    assert order.channel_trade_no == paid_trade.trade_no
    # A QR nobody scanned does not exist at Alipay yet: the order simply goes on waiting.
    assert (await stored_order(gateway, unscanned)).status == "paying"
    # The expired one is closed here and at Alipay, so its QR takes no more money.
    assert (await stored_order(gateway, abandoned)).status == "closed"
    assert fake_alipay.trades[abandoned].status == "TRADE_CLOSED"


async def test_an_account_with_unusable_keys_is_refused_without_showing_them(gateway, fake_alipay):
    private = fake_alipay.account_config()["app_private_key"]
    assert isinstance(private, str)
    truncated = private[:200]
    with pytest.raises(AccountError) as refused:
        await alipay_account(gateway, fake_alipay, app_private_key=truncated)
    assert "app_private_key" in str(refused.value) and truncated[40:80] not in str(refused.value)
    with pytest.raises(AccountError) as short:
        await alipay_account(gateway, fake_alipay, alipay_public_key=public_base64(small_key()))
    assert "2048" in str(short.value)
    # The key tool's bare base64, PKCS#1 or PKCS#8, is taken as well as PEM.
    bare = "".join(line for line in private.splitlines() if not line.startswith("-----"))
    pkcs1 = fake_alipay.app_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    for name, text in (("bare", bare), ("pkcs1", base64.b64encode(pkcs1).decode())):
        await alipay_account(gateway, fake_alipay, name=name, app_private_key=text)
        check = await gateway.channel("alipay").check_credentials(  # type: ignore[union-attr]
            gateway.accounts.open(await gateway.accounts.record(name))
        )
        assert check.ok, check.detail


def small_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


async def test_certificate_mode_names_its_certificates_and_verifies_with_alipays(
    server, gateway, merchant, shop, worker, fake_alipay
):
    fake_alipay.certificates = issue_certificates(fake_alipay.app_key, fake_alipay.alipay_key)
    await alipay_account(gateway, fake_alipay)
    channel = gateway.channel("alipay")
    assert channel is not None
    check = await channel.check_credentials(gateway.accounts.open(await gateway.accounts.record("alipay-main")))
    assert check.ok, check.detail
    async with server.client() as client:
        trade_no = (await mapi_order(client, merchant, shop, "CERT-1"))["trade_no"]
        assert (await fake_alipay.pay(trade_no)).text == "success"
        [notification] = await eventually(lambda: shop.notifications())
        assert notification.params["out_trade_no"] == "CERT-1"
        refund = {"pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no, "money": "1.00"}
        assert (await client.post("/api.php?act=refund", data=refund)).json()["code"] == 1
    assert fake_alipay.refused == []

    # Another root bundle: Alipay refuses requests that name it, and channel test says why.
    other = issue_certificates(fake_alipay.app_key, fake_alipay.alipay_key)
    await alipay_account(gateway, fake_alipay, name="old-root", alipay_root_cert=other.alipay_root_cert)
    stale = await channel.check_credentials(gateway.accounts.open(await gateway.accounts.record("old-root")))
    assert (stale.ok, "isv.invalid-app-cert-sn" in stale.detail) == (False, True), stale.detail
    # A certificate of some other key than the application private key is refused when it is added.
    with pytest.raises(AccountError) as mismatched:
        await alipay_account(
            gateway, fake_alipay, name="mismatch", app_cert=issue_certificates(new_key(), new_key()).app_cert
        )
    assert "app_cert is not the certificate of app_private_key" in str(mismatched.value)
    with pytest.raises(AccountError) as both:
        await alipay_account(gateway, fake_alipay, name="both", alipay_public_key=public_base64(new_key()))
    assert "not both" in str(both.value)
