"""``api/pay/create`` and ``api/pay/submit`` over real HTTP."""

from __future__ import annotations

import time
from html import unescape

import pytest

from openepay.core.orders import get_order
from openepay.core.states import MerchantStatus
from tests.support.epay import order_params
from tests.support.epay import signed as md5_signed
from tests.support.epay_v2 import order_fields, platform_signed
from tests.support.links import handle, sandbox_path, trade_no_of

from .support import SHOP, create, paid


async def post_create(server, v2, **fields: str | None) -> dict:
    async with server.client() as client:
        return (await client.post("/api/pay/create", data=v2.request(order_fields(SHOP, **fields)))).json()  # type: ignore[arg-type]


async def test_answers_by_method_and_device(server, gateway, v2, platform_public):
    base = server.url
    cases = [
        ({"device": "pc"}, "qrcode", "{base}/sandbox/pay/{handle}"),
        ({"device": "pc", "method": None}, "qrcode", "{base}/sandbox/pay/{handle}"),
        ({"device": None}, "qrcode", "{base}/sandbox/pay/{handle}"),
        ({"device": "mobile"}, "jump", "{base}/sandbox/pay/{handle}"),
        ({"device": "app"}, "jump", "{base}/sandbox/pay/{handle}"),
        ({"device": "wechat", "type": "wxpay"}, "jump", "{base}/sandbox/pay/{handle}"),
        ({"method": "jump"}, "jump", "{base}/cashier/{handle}"),
        ({"device": "jump", "method": "web"}, "jump", "{base}/cashier/{handle}"),
        ({"type": "bank"}, "jump", "{base}/cashier/{handle}?other=1"),
    ]
    for number, (overrides, pay_type, pay_info) in enumerate(cases):
        answer = await post_create(server, v2, out_trade_no=f"C-{number}", **overrides)
        trade_no = answer["trade_no"]
        assert set(answer) == {"code", "trade_no", "pay_type", "pay_info", "timestamp", "sign_type", "sign"}
        assert (answer["code"], answer["pay_type"]) == (0, pay_type), overrides
        assert answer["pay_info"] == pay_info.format(base=base, handle=handle(trade_no)), overrides
        assert platform_signed(platform_public, answer)
        order = await get_order(gateway.db, trade_no)
        assert order is not None and order.dialect == "epay_v2" and order.out_trade_no == f"C-{number}"
    app_order = await get_order(
        gateway.db, (await post_create(server, v2, out_trade_no="C-APP", device="app"))["trade_no"]
    )
    assert app_order is not None and app_order.device == "mobile"


@pytest.mark.parametrize("method", ["app", "scan", "applet", "wap", "WEB"])
async def test_methods_we_cannot_serve(server, v2, method):
    assert await post_create(server, v2, out_trade_no="M-1", method=method) == {
        "code": -1,
        "msg": "不支持的支付方式(method)",
    }


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"out_trade_no": ""}, "订单号(out_trade_no)不能为空"),
        ({"notify_url": None}, "通知地址(notify_url)不能为空"),
        ({"name": "0"}, "商品名称(name)不能为空"),
        ({"money": None}, "金额(money)不能为空"),
        ({"type": ""}, "支付方式(type)不能为空"),
        ({"clientip": None}, "用户IP地址(clientip)不能为空"),
        ({"money": "-1"}, "金额不合法"),
        ({"money": "1.001"}, "金额不合法"),
        ({"out_trade_no": "含中文"}, "订单号(out_trade_no)格式不正确"),
        ({"notify_url": "ftp://x/"}, "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址"),
    ],
)
async def test_order_fields_are_checked_with_the_v1_texts(server, v2, overrides, message):
    fields = {"out_trade_no": "F-1", **overrides}
    assert await post_create(server, v2, **fields) == {"code": -1, "msg": message}


async def test_return_url_is_optional_for_create(server, v2):
    assert (await post_create(server, v2, out_trade_no="NR-1", return_url=None))["code"] == 0


async def test_channel_refusals_say_the_reason_not_the_channels_words(server, v2):
    assert await post_create(server, v2, out_trade_no="P-1", money="7.02") == {
        "code": -2,
        "msg": "支付通道维护中，请稍后再试",
    }
    assert await post_create(server, v2, out_trade_no="P-2", money="7.03") == {
        "code": -2,
        "msg": "该金额暂无可用收款码，请更换金额",
    }


async def test_repeated_order_numbers(server, v2):
    async with server.client() as client:
        first = await create(client, v2, "REP-1")
        again = await create(client, v2, "REP-1")
        assert again["trade_no"] == first["trade_no"]
        await paid(client, v2, "REP-2")
    assert await post_create(server, v2, out_trade_no="REP-1", money="2.00") == {
        "code": -1,
        "msg": "该订单(REP-1)支付参数有变化，请更换订单号重新发起支付",
    }
    assert await post_create(server, v2, out_trade_no="REP-2") == {
        "code": -1,
        "msg": "该订单(REP-2)已完成支付，请勿重复发起支付",
    }


def md5_order(v2, out_trade_no: str) -> dict[str, str]:
    params = {"pid": str(v2.pid), "timestamp": str(int(time.time())), **order_fields(SHOP, out_trade_no)}
    return md5_signed(params, v2.key)


async def test_who_may_create(server, gateway, v2):
    async def ask(params: dict[str, str]) -> dict:
        async with server.client() as client:
            return (await client.post("/api/pay/create", data=params)).json()

    good = v2.request(order_fields(SHOP, "W-1"))
    assert await ask({**good, "pid": "0"}) == {"code": -1, "msg": "商户ID不能为空"}
    assert await ask({**good, "pid": "424242"}) == {"code": -1, "msg": "商户不存在！"}
    assert await ask({**good, "money": "9.99"}) == {"code": -3, "msg": "RSA签名校验失败"}
    stale = v2.request(order_fields(SHOP, "W-1"), timestamp=int(time.time()) - 600)
    assert await ask(stale) == {"code": -3, "msg": "时间戳字段不正确，请检查服务器时间"}
    assert (await ask(md5_order(v2, "W-MD5")))["code"] == 0

    await gateway.merchants.set_status(v2.pid, MerchantStatus.DISABLED)
    # A bad signature is reported before the ban, as Rainbow's Pay::create does.
    assert await ask({**good, "money": "9.99"}) == {"code": -3, "msg": "RSA签名校验失败"}
    assert await ask(good) == {"code": -1, "msg": "商户已被封禁，无法支付！"}

    await gateway.merchants.set_status(v2.pid, MerchantStatus.ACTIVE)
    await gateway.merchants.update(v2.pid, rsa_only=True)
    md5_again = md5_signed(
        {"pid": str(v2.pid), "timestamp": str(int(time.time())), **order_fields(SHOP, "W-2")}, v2.key
    )
    assert await ask(md5_again) == {"code": -3, "msg": "该商户只能使用RSA签名类型"}
    assert (await ask(good))["code"] == 0


def submit_fields(out_trade_no: str, **overrides: str | None) -> dict[str, str]:
    return order_fields(SHOP, out_trade_no, **{"method": None, "device": None, "clientip": None, **overrides})


async def test_submit_sends_the_browser_to_the_cashier(server, gateway, v2):
    async with server.client() as client:
        by_get = await client.get("/api/pay/submit", params=v2.request(submit_fields("S-1")))
        by_post = await client.post("/api/pay/submit", data=v2.request(submit_fields("S-2")))
        chooser = await client.post("/api/pay/submit", data=v2.request(submit_fields("S-3", type="")))
        no_channel = await client.post("/api/pay/submit", data=v2.request(submit_fields("S-4", type="bank")))
        for response in (by_get, by_post, chooser, no_channel):
            assert response.status_code == 302
        trade_no = trade_no_of(by_get.headers["location"])
        assert (await get_order(gateway.db, trade_no)).dialect == "epay_v2"
        assert by_post.headers["location"].startswith("/cashier/")
        assert "?" not in chooser.headers["location"]
        assert no_channel.headers["location"].endswith("?other=1")
        page = await client.get(by_get.headers["location"])
        assert page.status_code == 200 and sandbox_path(trade_no) in page.text


@pytest.mark.parametrize(
    "change, message",
    [
        ({"return_url": None}, "回调地址(return_url)不能为空"),
        ({"money": "7.02"}, "支付通道维护中，请稍后再试"),
        ({"timestamp": "12345"}, "时间戳字段不正确，请检查服务器时间"),
        ({"pid": "0"}, "商户ID不能为空"),
    ],
)
async def test_submit_errors_are_pages(server, v2, change, message):
    fields = submit_fields("SE-1", **{k: v for k, v in change.items() if k != "pid"})
    params = v2.request(fields)
    params.update({k: v for k, v in change.items() if k == "pid"})
    async with server.client() as client:
        response = await client.post("/api/pay/submit", data=params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert message in unescape(response.text)


async def test_submit_with_a_bad_signature_or_no_merchant(server, v2):
    async with server.client() as client:
        tampered = {**v2.request(submit_fields("SB-1")), "name": "other"}
        assert "RSA签名校验失败" in (await client.post("/api/pay/submit", data=tampered)).text
        assert (await client.get("/api/pay/submit")).text == "你还未配置支付接口商户！"


async def test_an_order_number_of_one_dialect_is_not_reopened_by_the_other(server, v2):
    """A V1 plugin repeating a V2 order's number would get an order notified with RSA, which it cannot check."""
    async with server.client() as client:
        v2_order = await create(client, v2, "CROSS-1")
        v1_fields = order_params(v2.pid, SHOP, "CROSS-1", clientip="203.0.113.9")
        v1_answer = (await client.post("/mapi.php", data=md5_signed(v1_fields, v2.key))).json()
        assert v1_answer == {"code": -1, "msg": "该订单(CROSS-1)支付参数有变化，请更换订单号重新发起支付"}
        v1_order = (
            await client.post("/mapi.php", data=md5_signed({**v1_fields, "out_trade_no": "CROSS-2"}, v2.key))
        ).json()
        assert v1_order["code"] == 1
        v2_answer = (await client.post("/api/pay/create", data=v2.request(order_fields(SHOP, "CROSS-2")))).json()
        assert v2_answer == {"code": -1, "msg": "该订单(CROSS-2)支付参数有变化，请更换订单号重新发起支付"}
        assert (await create(client, v2, "CROSS-1"))["trade_no"] == v2_order["trade_no"]
