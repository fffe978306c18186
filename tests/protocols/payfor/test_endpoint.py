"""``/Home/Pay/payFor`` over real HTTP: both modes, every error code and message, reuse of ``order_id``.

Keys are computed with the test's own implementation of the seed's rule (``tests/support/payfor.py``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update

from openepay.core.states import MerchantStatus
from openepay.db.models import Merchant, Order
from openepay.db.types import utcnow
from tests.support.endpoints import from_address
from tests.support.epay import order_params, signed
from tests.support.gateways import STRICT, own_server
from tests.support.links import cashier_path, sandbox_path
from tests.support.payfor import (
    PATH,
    json_answer,
    json_error,
    keyed,
    merchant_key,
    page_error,
    payfor_params,
    send,
)

SHOP = "https://shop.example.com"
MODES = [True, False]
MODE_IDS = ["json", "browser"]


def ordered(merchant, order_id: str, /, **overrides: str | None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return keyed(payfor_params(merchant.pid, SHOP, order_id, **overrides), merchant.key)


async def error_of(client, params: dict[str, str], as_json: bool) -> tuple[int | None, str]:  # type: ignore[no-untyped-def]
    """(code, msg) in JSON mode; (None, the page's message) in the browser."""
    response = await send(client, params, as_json=as_json)
    if as_json:
        return json_error(response)
    return None, page_error(response)


def expect(code: int, msg: str, as_json: bool) -> tuple[int | None, str]:
    return (code if as_json else None), msg


async def order_row(gateway, pid: int, order_id: str) -> Order | None:  # type: ignore[no-untyped-def]
    async with gateway.db.session() as session:
        return await session.scalar(select(Order).where(Order.merchant_pid == pid, Order.out_trade_no == order_id))


# --- Success ------------------------------------------------------------------------------------


async def test_json_mode_answers_the_payment(server, merchant, gateway):
    async with server.client() as client:
        before = datetime.now(ZoneInfo("Asia/Shanghai"))
        answer = json_answer(await send(client, ordered(merchant, "J-1"), as_json=True))
    assert set(answer) == {"code", "msg", "data"}
    assert (answer["code"], answer["msg"]) == (1, "下单成功")
    data = answer["data"]
    assert set(data) == {"pay_num", "qrcode", "payurl", "price", "realprice", "type", "expire_time"}
    pay_num = data["pay_num"]
    assert pay_num.isdigit()
    assert data["qrcode"] == f"{server.url}{sandbox_path(pay_num)}"
    assert data["payurl"] == f"{server.url}{cashier_path(pay_num)}"
    assert (data["price"], data["realprice"], data["type"]) == ("9.90", "9.90", 2)
    expire = datetime.strptime(data["expire_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    timeout = timedelta(seconds=server.settings.order_timeout_seconds)
    assert before + timeout - timedelta(seconds=2) <= expire <= before + timeout + timedelta(seconds=5)

    order = await order_row(gateway, merchant.pid, "J-1")
    assert (order.trade_no, order.dialect, order.pay_type, order.status) == (pay_num, "payfor", "alipay", "paying")
    assert (order.money, order.amount_fen, order.name, order.param) == ("9.90", 990, "VIP月卡", "user42")
    assert (order.notify_url, order.return_url, order.clientip) == (f"{SHOP}/notify", f"{SHOP}/return", None)
    assert order.attrs == {"key": ordered(merchant, "J-1")["key"], "type": "2", "json": True}


async def test_the_payurl_is_our_payment_page(server, merchant):
    async with server.client() as client:
        data = json_answer(await send(client, ordered(merchant, "J-2"), as_json=True))["data"]
        page = await client.get(data["payurl"])
    assert page.status_code == 200
    assert "9.90" in page.text and "VIP月卡" in page.text


async def test_browser_mode_goes_to_the_payment_page(server, merchant, gateway):
    async with server.client() as client:
        response = await send(client, ordered(merchant, "B-1"), as_json=False)
        assert response.status_code == 303
        order = await order_row(gateway, merchant.pid, "B-1")
        assert response.headers["location"] == cashier_path(order.trade_no)
        # The buyer's own browser sent it, so its address is the buyer's (channels such as WeChat H5 want it).
        assert order.clientip == "127.0.0.1"
        page = await client.get(response.headers["location"])
    assert page.status_code == 200
    assert "VIP月卡" in page.text and sandbox_path(order.trade_no) in page.text


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_get_with_the_fields_in_the_query(server, merchant, gateway, as_json):
    async with server.client() as client:
        response = await send(client, ordered(merchant, "G-1"), as_json=as_json, method="GET")
    order = await order_row(gateway, merchant.pid, "G-1")
    if as_json:
        assert json_answer(response)["data"]["pay_num"] == order.trade_no
    else:
        assert (response.status_code, response.headers["location"]) == (303, cashier_path(order.trade_no))


async def test_format_json_in_the_form_body_also_selects_json(server, merchant):
    async with server.client() as client:
        response = await client.post(PATH, data={**ordered(merchant, "F-1"), "format": "json"})
    assert json_answer(response)["code"] == 1


async def test_a_key_that_counted_format_is_accepted(server, merchant):
    params = {**payfor_params(merchant.pid, SHOP, "F-2"), "format": "json"}
    params["key"] = merchant_key(params, merchant.key)  # format among the values
    async with server.client() as client:
        response = await client.post(PATH, data=params)
    assert json_answer(response)["code"] == 1


async def test_the_query_string_with_uid_is_read_alone(server, merchant):
    good = ordered(merchant, "Q-1")
    async with server.client() as client:
        response = await client.post(PATH, params={**good, "key": "0" * 32, "format": "json"}, data=good)
    assert json_error(response) == (-2, "签名(key)校验失败")


async def test_upper_case_key_is_accepted(server, merchant):
    params = ordered(merchant, "U-1")
    async with server.client() as client:
        answer = json_answer(await send(client, {**params, "key": params["key"].upper()}, as_json=True))
    assert answer["code"] == 1


@pytest.mark.parametrize("price, fen", [("9.9", 990), ("10", 1000), ("0.01", 1), ("1.00", 100), (".5", 50)])
async def test_any_whole_fen_price_is_kept_verbatim(server, merchant, gateway, price, fen):
    async with server.client() as client:
        data = json_answer(await send(client, ordered(merchant, "P-1", price=price), as_json=True))["data"]
    assert data["price"] == price
    assert data["realprice"] == f"{fen // 100}.{fen % 100:02d}"
    order = await order_row(gateway, merchant.pid, "P-1")
    assert (order.money, order.amount_fen) == (price, fen)


async def test_wechat_is_type_1_and_the_order_name_defaults_to_the_order_id(server, merchant, gateway):
    params = ordered(merchant, "W-1", type="1", order_name=None, order_uid=None)
    async with server.client() as client:
        data = json_answer(await send(client, params, as_json=True))["data"]
    assert data["type"] == 1
    order = await order_row(gateway, merchant.pid, "W-1")
    assert (order.pay_type, order.name, order.param) == ("wxpay", "订单 W-1", None)


async def test_realprice_is_what_the_channel_asks_the_buyer_to_pay(server, merchant):
    async with server.client() as client:
        data = json_answer(await send(client, ordered(merchant, "R-1", price="7.09"), as_json=True))["data"]
    assert (data["price"], data["realprice"]) == ("7.09", "7.10")


# --- Errors, in the order they are checked --------------------------------------------------------

REQUIRED = ["uid", "price", "type", "notify_url", "return_url", "order_id", "key"]


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("field", REQUIRED)
async def test_code_0_missing_parameter(server, merchant, as_json, field):
    params = ordered(merchant, "M-1")
    async with server.client() as client:
        assert await error_of(client, {k: v for k, v in params.items() if k != field}, as_json) == expect(
            0, f"缺少参数：{field}", as_json
        )
        assert await error_of(client, {**params, field: ""}, as_json) == expect(0, f"缺少参数：{field}", as_json)


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_code_0_names_the_first_missing_parameter_and_nothing_at_all_is_uid(server, as_json):
    async with server.client() as client:
        assert await error_of(client, {}, as_json) == expect(0, "缺少参数：uid", as_json)
        partial = {"uid": "1000", "type": "2", "key": "x"}
        assert await error_of(client, partial, as_json) == expect(0, "缺少参数：price", as_json)


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
@pytest.mark.parametrize(
    "uid", ["999999", "abc", "0", "-1", "1" * 11], ids=["unknown", "letters", "zero", "neg", "long"]
)
async def test_code_minus_1_unknown_merchant(server, merchant, as_json, uid):
    params = keyed({**payfor_params(0, SHOP, "U-1"), "uid": uid}, merchant.key)
    async with server.client() as client:
        assert await error_of(client, params, as_json) == expect(-1, "商户(uid)不存在或已停用", as_json)


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_code_minus_1_disabled_merchant(server, merchant, gateway, as_json):
    await gateway.merchants.set_status(merchant.pid, MerchantStatus.DISABLED)
    async with server.client() as client:
        assert await error_of(client, ordered(merchant, "D-1"), as_json) == expect(
            -1, "商户(uid)不存在或已停用", as_json
        )


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_code_minus_2_bad_key(server, merchant, as_json):
    params = payfor_params(merchant.pid, SHOP, "K-1")
    wrong = [
        {**params, "key": "0" * 32},
        {**params, "key": merchant_key(params, "another-token")},
        # The price formatting trap: the key was computed over 9.9, the form says 9.90.
        {**params, "key": merchant_key({**params, "price": "9.9"}, merchant.key)},
        # Left a parameter out of the key that was sent (the usual PaysApi mistake, reversed).
        {**params, "key": merchant_key({k: v for k, v in params.items() if k != "order_uid"}, merchant.key)},
        {**params, "key": merchant_key(params, merchant.key) + "0"},
    ]
    async with server.client() as client:
        for bad in wrong:
            assert await error_of(client, bad, as_json) == expect(-2, "签名(key)校验失败", as_json)


INVALID = [
    ({"price": "0"}, "金额(price)不合法"),
    ({"price": "0.00"}, "金额(price)不合法"),
    ({"price": "-1"}, "金额(price)不合法"),
    ({"price": "1.005"}, "金额(price)不合法"),
    ({"price": "1e2"}, "金额(price)不合法"),
    ({"price": "abc"}, "金额(price)不合法"),
    ({"price": " 9.90"}, "金额(price)不合法"),
    ({"price": "9" * 20}, "金额(price)不合法"),
    ({"price": "1e30"}, "金额(price)不合法"),
    ({"price": "１"}, "金额(price)不合法"),
    ({"price": "+1"}, "金额(price)不合法"),
    ({"price": "50000.01"}, "金额(price)不能高于50000元"),
    ({"type": "3"}, "支付渠道(type)只能是1（微信支付）或2（支付宝）"),
    ({"type": "alipay"}, "支付渠道(type)只能是1（微信支付）或2（支付宝）"),
    ({"type": "01"}, "支付渠道(type)只能是1（微信支付）或2（支付宝）"),
    ({"order_id": "A" * 51}, "订单号(order_id)格式不正确"),
    ({"order_id": "A 1"}, "订单号(order_id)格式不正确"),
    ({"order_id": "订单1"}, "订单号(order_id)格式不正确"),
    ({"order_id": "A\x001"}, "订单号(order_id)含有非法字符"),
    ({"notify_url": "ftp://shop.example.com/n"}, "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址"),
    ({"notify_url": "http://169.254.169.254/n"}, "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址"),
    ({"notify_url": "shop.example.com/n"}, "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址"),
    ({"notify_url": "http://shop.example.com/a b"}, "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址"),
    (
        {"notify_url": "http://shop.example.com:99999/"},
        "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址",
    ),
    ({"notify_url": "https://shop.example.com/" + "n" * 231}, "通知地址(notify_url)不能超过255个字符"),
    ({"notify_url": "https://shop.example.com/\x00"}, "通知地址(notify_url)含有非法字符"),
    ({"return_url": "javascript:alert(1)"}, "跳转网址(return_url)不合法，请填写http或https地址"),
    ({"return_url": "https://shop.example.com/r\r\nX: y"}, "跳转网址(return_url)不合法，请填写http或https地址"),
    ({"return_url": "ftp://shop.example.com/r"}, "跳转网址(return_url)不合法，请填写http或https地址"),
    ({"return_url": "https://shop.example.com:99999/r"}, "跳转网址(return_url)不合法，请填写http或https地址"),
    ({"return_url": "https:///r"}, "跳转网址(return_url)不合法，请填写http或https地址"),
    ({"return_url": "https://shop.example.com/" + "r" * 231}, "跳转网址(return_url)不能超过255个字符"),
    ({"order_uid": "u" * 101}, "客户号(order_uid)不能超过100个字符"),
    ({"order_uid": "u\x00"}, "客户号(order_uid)含有非法字符"),
    ({"order_name": "名" * 101}, "商品名称(order_name)不能超过100个字符"),
    ({"order_name": "VIP\x00"}, "商品名称(order_name)含有非法字符"),
    # A parameter the seed does not name is named as it was sent.
    ({"note": "a\x00"}, "参数(note)含有非法字符"),
]


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_code_minus_3_invalid_values(server, merchant, gateway, as_json):
    async with server.client() as client:
        for override, message in INVALID:
            params = ordered(merchant, "V-1", **override)
            assert await error_of(client, params, as_json) == expect(-3, message, as_json), override
    assert await order_row(gateway, merchant.pid, "V-1") is None


async def test_a_plain_http_return_url_is_taken_and_stored(server, merchant, gateway):
    async with server.client() as client:
        answer = json_answer(
            await send(client, ordered(merchant, "H-1", return_url="http://shop.example.com/r"), as_json=True)
        )
    assert answer["code"] == 1
    assert (await order_row(gateway, merchant.pid, "H-1")).return_url == "http://shop.example.com/r"


async def test_the_longest_values_allowed_pass(server, merchant, gateway):
    params = ordered(
        merchant,
        "L" * 50,
        notify_url="https://shop.example.com/" + "n" * 230,
        return_url="https://shop.example.com/" + "r" * 230,
        order_uid="u" * 100,
        order_name="名" * 100,
    )
    assert len(params["notify_url"]) == 255
    async with server.client() as client:
        assert json_answer(await send(client, params, as_json=True))["code"] == 1


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_the_operators_limits_bound_the_price_at_both_ends(database_url, gateway, merchant, as_json):
    """A limit that is not whole yuan is said with its fen (0.50), a whole one without (5000)."""
    with own_server(database_url, **STRICT) as thread:
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
            for price, message in (("0.49", "金额(price)不能低于0.50元"), ("5000.01", "金额(price)不能高于5000元")):
                params = ordered(merchant, "LIM-1", price=price)
                assert await error_of(client, params, as_json) == expect(-3, message, as_json), price
            for price in ("0.50", "5000"):
                answer = json_answer(await send(client, ordered(merchant, f"LIM-{price}", price=price), as_json=True))
                assert (answer["code"], answer["data"]["price"]) == (1, price)
    assert await order_row(gateway, merchant.pid, "LIM-1") is None


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_code_minus_3_comes_after_the_key(server, merchant, as_json):
    params = {**ordered(merchant, "V-2"), "price": "abc"}  # key computed over 9.90
    async with server.client() as client:
        assert await error_of(client, params, as_json) == expect(-2, "签名(key)校验失败", as_json)


# --- Reusing an order_id ----------------------------------------------------------------------------


async def test_identical_repeats_reopen_the_same_payment_in_the_same_mode(server, merchant):
    """The mode is a term: a JSON order's buyer is never sent back to the shop, a browser order's is."""
    params = ordered(merchant, "S-1")
    browser_params = ordered(merchant, "S-1B")
    async with server.client() as client:
        first = json_answer(await send(client, params, as_json=True))["data"]
        again = json_answer(await send(client, params, as_json=True))["data"]
        other_mode = await send(client, params, as_json=False)
        browser = await send(client, browser_params, as_json=False)
        browser_again = await send(client, browser_params, as_json=False)
        json_after_browser = await send(client, browser_params, as_json=True)
    assert again == first
    assert page_error(other_mode) == "订单号(order_id)已存在且参数不同，请更换订单号"
    assert browser.status_code == browser_again.status_code == 303
    assert browser_again.headers["location"] == browser.headers["location"]
    assert json_answer(json_after_browser) == {"code": -4, "msg": "订单号(order_id)已存在且参数不同，请更换订单号"}


async def test_an_expired_identical_order_is_reopened_with_the_same_number(server, merchant, gateway):
    params = ordered(merchant, "S-2")
    async with server.client() as client:
        first = json_answer(await send(client, params, as_json=True))["data"]
        async with gateway.db.session() as session:
            await session.execute(
                update(Order).where(Order.trade_no == first["pay_num"]).values(expires_at=utcnow() - timedelta(1))
            )
        assert (await client.get(cashier_path(first["pay_num"]))).status_code == 200  # closes it on sight
        again = json_answer(await send(client, params, as_json=True))["data"]
    assert again["pay_num"] == first["pay_num"]
    expire = datetime.strptime(again["expire_time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=ZoneInfo("Asia/Shanghai"))
    assert expire > datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(minutes=5)
    assert (await order_row(gateway, merchant.pid, "S-2")).status == "paying"


CHANGED = [
    {"price": "10.00"},
    {"price": "9.9"},  # the same amount, but the merchant would be notified with another string
    {"type": "1"},
    {"order_uid": "user43"},
    {"order_uid": None},
    {"order_name": "VIP年卡"},
    {"notify_url": f"{SHOP}/notify2"},
    {"return_url": f"{SHOP}/return2"},
]


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_code_minus_4_same_order_id_with_other_parameters(server, merchant, gateway, as_json):
    async with server.client() as client:
        first = json_answer(await send(client, ordered(merchant, "C-1"), as_json=True))["data"]
        for change in CHANGED:
            assert await error_of(client, ordered(merchant, "C-1", **change), as_json) == expect(
                -4, "订单号(order_id)已存在且参数不同，请更换订单号", as_json
            ), change
    order = await order_row(gateway, merchant.pid, "C-1")
    assert (order.trade_no, order.money, order.pay_type) == (first["pay_num"], "9.90", "alipay")


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_code_minus_4_order_already_paid(server, merchant, as_json):
    params = ordered(merchant, "C-2")
    async with server.client() as client:
        pay_num = json_answer(await send(client, params, as_json=True))["data"]["pay_num"]
        assert (await client.post(sandbox_path(pay_num))).status_code == 303
        for repeat in (params, ordered(merchant, "C-2", price="1.00")):
            assert await error_of(client, repeat, as_json) == expect(
                -4, "该订单(order_id)已支付，请勿重复支付", as_json
            )


async def test_an_order_id_of_another_dialect_is_not_reused(server, merchant, gateway):
    async with server.client() as client:
        epay = signed(order_params(merchant.pid, SHOP, "X-1", money="9.90", clientip="203.0.113.9"), merchant.key)
        assert (await client.post("/mapi.php", data=epay)).json()["code"] == 1
        assert json_error(await send(client, ordered(merchant, "X-1"), as_json=True)) == (
            -4,
            "订单号(order_id)已存在且参数不同，请更换订单号",
        )


# --- Channels -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
@pytest.mark.parametrize(
    "price, message",
    [("7.02", "支付通道维护中，请稍后再试"), ("7.03", "该金额暂无可用收款码，请更换金额")],
    ids=["paused", "no-code"],
)
async def test_code_minus_5_channel_refuses(server, merchant, gateway, as_json, price, message):
    async with server.client() as client:
        assert await error_of(client, ordered(merchant, "H-1", price=price), as_json) == expect(-5, message, as_json)
        # Nobody saw a payment for it, so the merchant may use the number again.
        assert await order_row(gateway, merchant.pid, "H-1") is None
        assert json_answer(await send(client, ordered(merchant, "H-1", price="1.00"), as_json=True))["code"] == 1


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_code_minus_5_no_channel(channelless_server, merchant, gateway, as_json):
    async with httpx.AsyncClient(base_url=channelless_server.url, timeout=10) as client:
        assert await error_of(client, ordered(merchant, "N-1"), as_json) == expect(-5, "没有可用的支付通道", as_json)
    assert await order_row(gateway, merchant.pid, "N-1") is None


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_code_minus_9_unexpected_failure(server, merchant, gateway, as_json):
    # The merchant's key was sealed under another secret (the operator changed OPENEPAY_SECRET_KEY).
    async with gateway.db.session() as session:
        await session.execute(update(Merchant).where(Merchant.pid == merchant.pid).values(key_sealed="not-sealed"))
    async with server.client() as client:
        response = await send(client, ordered(merchant, "E-1"), as_json=as_json)
    if as_json:
        assert json_error(response) == (-9, "系统繁忙，请稍后再试")
    else:
        assert page_error(response, status=503) == "系统繁忙，请稍后再试"
    assert "Traceback" not in response.text and "not-sealed" not in response.text


# --- Bodies in odd encodings ----------------------------------------------------------------------


def multipart(fields: dict[str, bytes], charset: str) -> tuple[bytes, dict[str, str]]:
    boundary = "payforboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
        for name, value in fields.items()
    ]
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; charset={charset}; boundary={boundary}"}


@pytest.mark.parametrize("as_json", MODES, ids=MODE_IDS)
async def test_a_multipart_body_declaring_utf7_cannot_smuggle_lone_surrogates(server, merchant, gateway, as_json):
    # "+2AA-" is UTF-7 for a lone surrogate, which no UTF-8 text (or PostgreSQL) can hold.
    fields = {name: value.encode() for name, value in payfor_params(merchant.pid, SHOP, "UTF7-1").items()}
    fields["order_name"] = b"+2AA-"
    mode = {"format": "json"} if as_json else {}
    async with server.client() as client:
        body, headers = multipart({**fields, "key": b"0" * 32}, "utf-7")
        response = await client.post(PATH, params=mode, content=body, headers=headers)
        assert (json_error(response) if as_json else (None, page_error(response))) == expect(
            -2, "签名(key)校验失败", as_json
        )
        # Keyed over exactly those code points it still fails: the gateway reads the text as U+FFFD.
        values = {**payfor_params(merchant.pid, SHOP, "UTF7-1"), "order_name": "\ud800", "token": merchant.key}
        content = "".join(values[name] for name in sorted(values))
        surrogate_key = hashlib.md5(content.encode("utf-8", "surrogatepass")).hexdigest()
        body, headers = multipart({**fields, "key": surrogate_key.encode()}, "utf-7")
        response = await client.post(PATH, params=mode, content=body, headers=headers)
        assert (json_error(response) if as_json else (None, page_error(response))) == expect(
            -2, "签名(key)校验失败", as_json
        )
    assert await order_row(gateway, merchant.pid, "UTF7-1") is None


async def test_a_buyers_address_longer_than_its_column_is_stored_cut_to_64_characters(server, merchant, gateway):
    """What a trusted proxy reports as the buyer's address is kept, cut to the column's 64 characters
    rather than refused (the buyer is not to blame for the proxy's spelling)."""
    reported = "203.0.113.7-" + "x" * 60
    async with server.client(headers=from_address(reported)) as client:
        response = await send(client, ordered(merchant, "LONG-IP-1"), as_json=False)
    assert response.status_code == 303
    order = await order_row(gateway, merchant.pid, "LONG-IP-1")
    assert order.clientip == reported[:64]
