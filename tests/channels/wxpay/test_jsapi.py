"""WeChat JSAPI pay: a V2 ``api/pay/create`` with ``method=jsapi`` and the buyer's ``sub_openid``.

The order is placed at the fake WeChat Pay as a JSAPI order for that openid; the merchant gets
``pay_type=jsapi`` and, as ``pay_info``, the JSON its page hands to ``WeixinJSBridge``, with a
``paySign`` that WeChat (here: the test, with the merchant's public key) verifies over
``appId\\ntimeStamp\\nnonceStr\\npackage\\n``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.hashes import SHA256

from openepay.channels.base import RefusalReason
from openepay.protocols.epay_v2.platform_key import forget_loaded, platform_key
from openepay.protocols.refusals import FOR_MERCHANT
from openepay.web.cashier.routes import IN_APP_ONLY
from tests.support.epay_v2 import load_platform_key, order_fields, platform_signed
from tests.support.fake_wxpay import APPID, FakeWxPay, running_fake_wxpay
from tests.support.gateways import own_server
from tests.support.links import cashier_path
from tests.support.orders import stored_order
from tests.support.waiting import eventually

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


@pytest.fixture(scope="module")
def wechat() -> Iterator[FakeWxPay]:
    with running_fake_wxpay() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _fresh_platform_key():
    """Every test starts with empty tables: this process must not sign with a platform key they no longer hold."""
    forget_loaded()
    yield
    forget_loaded()


def jsapi_fields(shop_url: str, out_trade_no: str, **overrides: str | None) -> dict[str, str]:
    return order_fields(shop_url, out_trade_no, method="jsapi", type="wxpay", device=None, **overrides)


async def test_a_jsapi_order_gets_pay_parameters_signed_for_the_js_bridge(server, gateway, v2, shop, worker, wechat):
    await gateway.accounts.add("wxpay", "wx", wechat.account_config())
    fields = jsapi_fields(shop.url, "JS-1", sub_openid=OPENID, sub_appid=APPID, money="8.88")
    async with server.client() as client:
        answer = (await client.post("/api/pay/create", data=v2.request(fields))).json()
        assert (answer["code"], answer["pay_type"]) == (0, "jsapi"), answer
        platform = load_platform_key((await platform_key(gateway.db, gateway.box)).public_pem)
        assert platform_signed(platform, answer)
        trade_no = answer["trade_no"]

        placed = wechat.orders[trade_no]
        assert (placed["kind"], placed["payer"], placed["amount"]["total"]) == ("jsapi", {"openid": OPENID}, 888)
        parameters = json.loads(answer["pay_info"])
        assert set(parameters) == {"appId", "timeStamp", "nonceStr", "package", "signType", "paySign"}
        assert (parameters["appId"], parameters["package"], parameters["signType"]) == (
            APPID,
            f"prepay_id={placed['prepay_id']}",
            "RSA",
        )
        signed = "".join(f"{parameters[name]}\n" for name in ("appId", "timeStamp", "nonceStr", "package"))
        # Raises InvalidSignature unless the merchant API private key signed exactly WeChat's string.
        wechat.merchant_key.public_key().verify(
            base64.b64decode(parameters["paySign"]), signed.encode(), padding.PKCS1v15(), SHA256()
        )

        # The merchant's page asks again (a reload): the same prepay id, no second WeChat order.
        again = (await client.post("/api/pay/create", data=v2.request(fields))).json()
        assert (again["trade_no"], again["pay_info"]) == (trade_no, answer["pay_info"])
        assert [number for number in wechat.orders if wechat.orders[number]["out_trade_no"] == trade_no] == [trade_no]
        # There is nothing to scan or open at our cashier: the buyer pays on the merchant's page in WeChat.
        cashier = await client.get(cashier_path(trade_no))
        assert cashier.status_code == 200 and IN_APP_ONLY in cashier.text

        # The buyer pays inside WeChat; WeChat's notification reaches the merchant as usual.
        reply, _ = await wechat.pay(trade_no)
        assert reply.status_code == 200
        [notification] = await eventually(lambda: shop.notifications())
        assert (notification.params["out_trade_no"], notification.params["buyer"]) == ("JS-1", OPENID)
    assert (await stored_order(gateway, trade_no)).status == "paid"


async def test_jsapi_without_an_openid_is_refused_in_v2s_words(server, gateway, v2, shop, wechat):
    await gateway.accounts.add("wxpay", "wx", wechat.account_config())
    before = len(wechat.orders)
    async with server.client() as client:
        answer = (await client.post("/api/pay/create", data=v2.request(jsapi_fields(shop.url, "JS-2")))).json()
        bad = jsapi_fields(shop.url, "JS-3", sub_openid="o<script>")
        malformed = (await client.post("/api/pay/create", data=v2.request(bad))).json()
    assert answer == {"code": -1, "msg": "JSAPI支付必须传入用户openid(sub_openid)"}
    assert malformed == {"code": -1, "msg": "sub_openid或sub_appid格式错误"}
    assert len(wechat.orders) == before


async def test_an_openid_of_another_app_is_not_sent_to_wechat(gateway, database_url, v2, shop, wechat):
    """The only WeChat account has another AppID: nothing reaches WeChat; the merchant is told to check sub_appid."""
    await gateway.accounts.add("wxpay", "wx", wechat.account_config())
    fields = jsapi_fields(shop.url, "JS-4", sub_openid=OPENID, sub_appid="wx0000000000000000")
    before = len(wechat.orders)
    with own_server(database_url, sandbox=False) as thread:
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
            answer = (await client.post("/api/pay/create", data=v2.request(fields))).json()
    assert answer == {"code": -2, "msg": FOR_MERCHANT[RefusalReason.NOT_SERVED]}
    assert len(wechat.orders) == before
