"""``createOrder`` over real HTTP: V免签's answer, its refusals and their order, payId reuse, merchant selection.

The refusals are V免签's own texts where it has one (``szvone/vmqphp``'s ``Index::createOrder``);
the sandbox's test amounts play the channel paused (7.02), without an amount free (7.03) and
asking the buyer for one fen more (7.09).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from openepay.core.states import MerchantStatus
from tests.support.database import merchant_with_key, order_count, stored_order
from tests.support.endpoints import from_address
from tests.support.epay import order_params as epay_order_params
from tests.support.epay import signed as epay_signed
from tests.support.gateways import STRICT, own_server
from tests.support.links import cashier_path, trade_no_named, trade_no_of
from tests.support.servers import ServerThread
from tests.support.vmq import (
    ENDPOINTS,
    SHOP,
    VECTOR_KEY,
    create,
    data_of,
    error_of,
    order_params,
    path,
    signed,
)

VECTOR_PID = 7004
NO_DEFAULT = "本网关未设置V免签默认商户，请把网关地址设为 https://网关域名/vmq/商户ID/"


def order_request(merchant, pay_id: str, **overrides: str | None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return signed(order_params(pay_id, **overrides), merchant.key)


# --- The §7.4 vectors and V免签's answer -------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {
            "payId": "A20240101001",
            "param": "uid=42",
            "type": "1",
            "price": "9.90",
            "sign": "cf8e422f418ab014b2832bdc1d6df0b2",
        },
        {"payId": "A20240101001", "type": "1", "price": "9.9", "sign": "1f621f247b4982b0e6efddbd8f0e1b2b"},
    ],
    ids=["with-param", "without-param"],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_vector_requests_create_the_order_vmq_describes(server, gateway, params, method):
    await merchant_with_key(gateway, VECTOR_PID, VECTOR_KEY)
    request = {**params, "notifyUrl": f"{SHOP}/notify", "returnUrl": f"{SHOP}/return"}
    before = int(time.time())
    async with server.client() as client:
        data = data_of(await create(client, request, VECTOR_PID, method))
    order_id = data["orderId"]
    assert data == {
        "payId": "A20240101001",
        "orderId": order_id,
        "payType": 1,
        "price": params["price"],
        "reallyPrice": "9.90",
        "payUrl": f"{server.url}/sandbox/pay/{order_id}",
        "isAuto": 1,
        "state": 0,
        "timeOut": 30,
        "date": data["date"],
    }
    assert before <= data["date"] <= time.time()
    order = await stored_order(gateway, trade_no_named(order_id))
    assert (order.dialect, order.merchant_pid, order.status) == ("vmq", VECTOR_PID, "paying")
    assert (order.money, order.amount_fen, order.pay_amount_fen, order.pay_type) == (params["price"], 990, 990, "wxpay")
    assert (order.param, order.attrs) == (params.get("param", ""), {"type": "1"})
    assert (order.notify_url, order.return_url) == (f"{SHOP}/notify", f"{SHOP}/return")


async def test_the_vector_sign_covers_the_price_string_as_sent(server, gateway):
    await merchant_with_key(gateway, VECTOR_PID, VECTOR_KEY)
    # cf8e... was computed over "9.90": the same amount written "9.9" is another signed string.
    request = {
        "payId": "A1",
        "param": "uid=42",
        "type": "1",
        "price": "9.9",
        "sign": "cf8e422f418ab014b2832bdc1d6df0b2",
    }
    async with server.client() as client:
        assert error_of(await create(client, {**request, "notifyUrl": f"{SHOP}/n"}, VECTOR_PID)) == "签名错误"
    assert await order_count(gateway, VECTOR_PID) == 0


async def test_alipay_and_upper_case_signatures(server, merchant, gateway):
    params = order_request(merchant, "T-ALI", type="2", price="1")
    async with server.client() as client:
        data = data_of(await create(client, {**params, "sign": params["sign"].upper()}, merchant.pid))
    assert (data["payType"], data["price"], data["reallyPrice"]) == (2, "1", "1.00")
    assert (await stored_order(gateway, trade_no_named(data["orderId"]))).pay_type == "alipay"


async def test_query_string_and_body_are_read_together_the_body_winning(server, merchant, gateway):
    params = order_request(merchant, "MIX-1")
    query = {"payId": params["payId"], "price": "1.00", "sign": params["sign"]}
    body = {name: value for name, value in params.items() if name not in ("payId", "sign")}
    async with server.client() as client:
        data = data_of(await client.post(path("createOrder", merchant.pid), params=query, data=body))
    assert (data["payId"], data["price"]) == ("MIX-1", "9.90")


async def test_is_html_sends_the_buyer_to_the_cashier(server, merchant, gateway):
    params = {**order_request(merchant, "HTML-1"), "isHtml": "1"}
    phone = {"user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148"}
    async with server.client() as client:
        jump = await client.get(path("createOrder", merchant.pid), params=params, headers=phone)
        assert jump.status_code == 302
        trade_no = trade_no_of(jump.headers["location"])
        assert jump.headers["location"] == cashier_path(trade_no)
        cashier = await client.get(jump.headers["location"], headers=phone)
    assert cashier.status_code == 200 and trade_no in cashier.text
    order = await stored_order(gateway, trade_no)
    assert (order.out_trade_no, order.device, order.clientip) == ("HTML-1", "mobile", "127.0.0.1")


async def test_a_json_order_keeps_no_buyer_details(server, merchant, gateway):
    async with server.client() as client:
        data = data_of(await create(client, {**order_request(merchant, "JSON-1"), "isHtml": "0"}, merchant.pid))
    order = await stored_order(gateway, trade_no_named(data["orderId"]))
    assert (order.device, order.clientip) == ("pc", None)


# --- Refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"payId": None}, "请传入商户订单号"),
        ({"payId": ""}, "请传入商户订单号"),
        ({"type": None}, "请传入支付方式=>1|微信 2|支付宝"),
        ({"type": "3"}, "支付方式错误=>1|微信 2|支付宝"),
        ({"type": "01"}, "支付方式错误=>1|微信 2|支付宝"),
        ({"type": "wxpay"}, "支付方式错误=>1|微信 2|支付宝"),
        ({"price": None}, "请传入订单金额"),
        ({"price": "0"}, "订单金额必须大于0"),
        ({"price": "0.00"}, "订单金额必须大于0"),
        ({"price": "-1"}, "订单金额必须大于0"),
        ({"sign": None}, "请传入签名"),
        ({"sign": "0" * 32}, "签名错误"),
    ],
)
async def test_vmqs_checks_before_and_at_the_signature(server, merchant, gateway, change, message):
    params = {**order_request(merchant, "REF-1"), **change}
    async with server.client() as client:
        assert (
            error_of(await create(client, {k: v for k, v in params.items() if v is not None}, merchant.pid)) == message
        )
    assert await order_count(gateway, merchant.pid) == 0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"notifyUrl": None}, "请传入异步通知地址(notifyUrl)"),
        (
            {"notifyUrl": "ftp://shop.example.com/n"},
            "异步通知地址(notifyUrl)不合法，请填写公网可以访问的http或https地址",
        ),
        (
            {"notifyUrl": "http://169.254.169.254/n"},
            "异步通知地址(notifyUrl)不合法，请填写公网可以访问的http或https地址",
        ),
        (
            {"notifyUrl": "https://shop.example.com/a b"},
            "异步通知地址(notifyUrl)不合法，请填写公网可以访问的http或https地址",
        ),
        (
            {"notifyUrl": "https://user:pw@shop.example.com/n"},
            "异步通知地址(notifyUrl)不合法，请填写公网可以访问的http或https地址",
        ),
        ({"returnUrl": "javascript:alert(1)"}, "同步跳转地址(returnUrl)不合法，请填写http或https地址"),
        ({"returnUrl": "https://shop.example.com/r\r\nX: y"}, "同步跳转地址(returnUrl)不合法，请填写http或https地址"),
        ({"payId": "A B"}, "商户订单号(payId)格式不正确，须为1到64个字母、数字或 . _ - | 字符"),
        ({"payId": "订单1"}, "商户订单号(payId)格式不正确，须为1到64个字母、数字或 . _ - | 字符"),
        ({"payId": "A1\n"}, "商户订单号(payId)格式不正确，须为1到64个字母、数字或 . _ - | 字符"),
        ({"payId": "P" * 65}, "商户订单号(payId)格式不正确，须为1到64个字母、数字或 . _ - | 字符"),
        ({"param": "p" * 256}, "附加参数(param)不能超过255个字符"),
        ({"param": "a\x00b"}, "附加参数(param)含有非法字符"),
        # A parameter V免签 has no words for is named as it was sent.
        ({"isHtml": "\x00"}, "参数(isHtml)含有非法字符"),
        ({"price": "1.005"}, "订单金额格式错误，须为最多两位小数的元金额，如 9.90"),
        ({"price": "1e2"}, "订单金额格式错误，须为最多两位小数的元金额，如 9.90"),
        ({"price": "abc"}, "订单金额格式错误，须为最多两位小数的元金额，如 9.90"),
        ({"price": "9" * 20}, "订单金额格式错误，须为最多两位小数的元金额，如 9.90"),
        ({"price": "1e30"}, "订单金额格式错误，须为最多两位小数的元金额，如 9.90"),
        ({"price": "50000.01"}, "订单金额不能高于50000元"),
        ({"price": " 1"}, "订单金额格式错误，须为最多两位小数的元金额，如 9.90"),
        ({"price": "１"}, "订单金额格式错误，须为最多两位小数的元金额，如 9.90"),
        ({"price": "+1"}, "订单金额格式错误，须为最多两位小数的元金额，如 9.90"),
    ],
)
async def test_signed_requests_hear_what_is_wrong_with_their_values(server, merchant, gateway, change, message):
    params = order_params("VAL-1", **change)
    async with server.client() as client:
        assert error_of(await create(client, signed(params, merchant.key), merchant.pid)) == message
    assert await order_count(gateway, merchant.pid) == 0


async def test_longest_values_and_an_omitted_return_url_are_accepted(database_url, merchant, gateway):
    params = order_params("P" * 64, param="参" * 255, returnUrl=None, price="99999999.99")
    # An operator who takes orders this large raises the default cap of 50000 yuan.
    with own_server(database_url, pay_max_money=Decimal("99999999.99")) as thread:
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
            data = data_of(await create(client, signed(params, merchant.key), merchant.pid))
    order = await stored_order(gateway, trade_no_named(data["orderId"]))
    assert (order.out_trade_no, order.param, order.return_url, order.amount_fen) == (
        "P" * 64,
        "参" * 255,
        None,
        9_999_999_999,
    )


async def test_checks_come_in_vmqs_order(server, merchant):
    async with server.client() as client:

        async def first_error(params: dict[str, str], pid: int = merchant.pid) -> str:
            return error_of(await create(client, params, pid))

        # The merchant of the path comes first of all.
        assert await first_error({}, 99999) == "商户不存在或已停用"
        # Missing fields before a wrong signature, a wrong signature before bad values.
        assert await first_error({"payId": "C-1", "type": "1", "sign": "x"}) == "请传入订单金额"
        assert await first_error({**order_params("C-1", notifyUrl="ftp://x/"), "sign": "0" * 32}) == "签名错误"
        # The payId's form, then the notifyUrl, then the amount's.
        assert await first_error(order_request(merchant, "C 1", notifyUrl="ftp://x/", price="1.005")) == (
            "商户订单号(payId)格式不正确，须为1到64个字母、数字或 . _ - | 字符"
        )
        assert await first_error(order_request(merchant, "C-1", notifyUrl="ftp://x/", price="1.005")) == (
            "异步通知地址(notifyUrl)不合法，请填写公网可以访问的http或https地址"
        )


@pytest.fixture
def strict_server(database_url, gateway) -> Iterator[ServerThread]:  # type: ignore[no-untyped-def]
    with own_server(database_url, **STRICT) as thread:
        yield thread


async def test_settings_shape_the_answers(strict_server, merchant):
    async with httpx.AsyncClient(base_url=strict_server.url, timeout=10) as client:

        async def send(pay_id: str, **overrides: str) -> httpx.Response:
            return await create(client, order_request(merchant, pay_id, **overrides), merchant.pid)

        assert error_of(await send("L-1", price="0.49")) == "订单金额不能低于0.50元"
        assert error_of(await send("L-2", price="5000.01")) == "订单金额不能高于5000元"
        for url in ("http://127.0.0.1/x", "http://localhost:8080/x", "http://10.0.0.1/x"):
            assert error_of(await send("L-3", notifyUrl=url)) == (
                "异步通知地址(notifyUrl)不合法，请填写公网可以访问的http或https地址"
            )
        # The buyer's browser, not the gateway, goes to the returnUrl: a private one is the merchant's business.
        data = data_of(await send("L-4", returnUrl="http://10.0.0.1/back", price="5000"))
        assert data["payUrl"] == f"https://pay.example.com/sandbox/pay/{data['orderId']}"
        assert data_of(await send("L-5", price="0.5"))["reallyPrice"] == "0.50"


# --- The channel's refusals ------------------------------------------------------------------------


async def test_paused_channel_and_no_free_amount_leave_the_pay_id_free(server, merchant, gateway):
    async with server.client() as client:
        assert error_of(await create(client, order_request(merchant, "CH-1", price="7.02"), merchant.pid)) == (
            "监控端状态异常，请检查"
        )
        assert error_of(await create(client, order_request(merchant, "CH-1", price="7.03"), merchant.pid)) == (
            "订单超出负荷，请稍后重试"
        )
        assert await order_count(gateway, merchant.pid) == 0
        data = data_of(await create(client, order_request(merchant, "CH-1", price="7.04"), merchant.pid))
    assert (data["payId"], data["price"], data["reallyPrice"]) == ("CH-1", "7.04", "7.04")
    assert await order_count(gateway, merchant.pid) == 1


async def test_a_fluctuating_amount_is_the_really_price(server, merchant, gateway):
    async with server.client() as client:
        data = data_of(await create(client, order_request(merchant, "FL-1", price="7.09"), merchant.pid))
    assert (data["price"], data["reallyPrice"]) == ("7.09", "7.10")
    order = await stored_order(gateway, trade_no_named(data["orderId"]))
    assert (order.money, order.amount_fen, order.pay_amount_fen) == ("7.09", 709, 710)


async def test_no_channel_for_the_type(channelless_server, merchant, gateway):
    async with httpx.AsyncClient(base_url=channelless_server.url, timeout=10) as client:
        wechat = await create(client, order_request(merchant, "NC-1"), merchant.pid)
        alipay = await create(client, order_request(merchant, "NC-1", type="2"), merchant.pid)
    assert error_of(wechat) == "暂无可用的微信支付收款通道，请稍后再试"
    assert error_of(alipay) == "暂无可用的支付宝收款通道，请稍后再试"
    assert await order_count(gateway, merchant.pid) == 0


# --- Every reuse of a payId is refused ---------------------------------------------------------------


async def test_every_reuse_of_a_pay_id_is_refused(server, merchant, gateway):
    params = order_request(merchant, "R-1")
    async with server.client() as client:
        first = data_of(await create(client, params, merchant.pid))
        assert error_of(await create(client, params, merchant.pid)) == "商户订单号已存在"
        assert error_of(await create(client, params, merchant.pid, "GET")) == "商户订单号已存在"
        assert (
            error_of(await create(client, order_request(merchant, "R-1", price="1"), merchant.pid))
            == "商户订单号已存在"
        )
        assert error_of(await create(client, {**params, "isHtml": "1"}, merchant.pid)) == "商户订单号已存在"
        assert (await client.post(f"/sandbox/pay/{first['orderId']}")).status_code == 303
        assert error_of(await create(client, params, merchant.pid)) == "商户订单号已存在"
    assert await order_count(gateway, merchant.pid) == 1


async def test_a_number_used_in_another_dialect_is_refused(server, merchant, gateway):
    epay = epay_signed(epay_order_params(merchant.pid, SHOP, "R-2", clientip="203.0.113.9"), merchant.key)
    async with server.client() as client:
        assert (await client.post("/mapi.php", data=epay)).json()["code"] == 1
        assert error_of(await create(client, order_request(merchant, "R-2"), merchant.pid)) == "商户订单号已存在"
    assert await order_count(gateway, merchant.pid) == 1


async def test_concurrent_identical_requests_make_one_order(server, merchant, gateway):
    params = order_request(merchant, "R-3")
    async with server.client() as client:
        responses = await asyncio.gather(*(create(client, params, merchant.pid) for _ in range(8)))
    answers = [response.json() for response in responses]
    assert sorted(answer["code"] for answer in answers) == [-1] * 7 + [1]
    assert {answer["msg"] for answer in answers if answer["code"] == -1} == {"商户订单号已存在"}
    assert await order_count(gateway, merchant.pid) == 1


# --- Which merchant --------------------------------------------------------------------------------


@pytest.mark.parametrize("pid", ["99999", "0", "2147483648", "abc", "1" * 11, "-1"])
async def test_a_path_that_names_no_merchant(server, merchant, pid):
    async with server.client() as client:
        for endpoint in ENDPOINTS:
            response = await client.get(f"/vmq/{pid}/{endpoint}", params=order_request(merchant, "M-1"))
            assert error_of(response) == "商户不存在或已停用"


async def test_a_disabled_merchant_takes_no_orders(server, merchant, gateway):
    await gateway.merchants.set_status(merchant.pid, MerchantStatus.DISABLED)
    async with server.client() as client:
        assert error_of(await create(client, order_request(merchant, "M-2"), merchant.pid)) == "商户不存在或已停用"
    assert await order_count(gateway, merchant.pid) == 0


async def test_root_paths_need_a_default_merchant(server, merchant, gateway):
    async with server.client() as client:
        for endpoint in ENDPOINTS:
            assert error_of(await client.post(f"/{endpoint}", data=order_request(merchant, "M-3"))) == NO_DEFAULT
    assert await order_count(gateway, merchant.pid) == 0


@pytest.fixture
def default_merchant_server(database_url, gateway, merchant) -> Iterator[ServerThread]:  # type: ignore[no-untyped-def]
    with own_server(database_url, vmq_default_pid=merchant.pid) as thread:
        yield thread


async def test_root_paths_serve_the_default_merchant(default_merchant_server, merchant, gateway):
    other = await gateway.merchants.create("Other Shop")
    async with httpx.AsyncClient(base_url=default_merchant_server.url, timeout=10) as client:
        mine = data_of(await create(client, order_request(merchant, "M-4")))
        # The same payId is another order for another merchant, under its own path.
        theirs = data_of(await create(client, order_request(other, "M-4"), other.pid))
        # The default merchant's key signs at the root, nobody else's.
        assert error_of(await create(client, order_request(other, "M-5"))) == "签名错误"
        assert data_of(await client.get("/getOrder", params={"orderId": mine["orderId"]})) == mine
        assert error_of(await client.get("/getOrder", params={"orderId": theirs["orderId"]})) == "云端订单编号不存在"
    assert (await stored_order(gateway, trade_no_named(mine["orderId"]))).merchant_pid == merchant.pid
    assert (await stored_order(gateway, trade_no_named(theirs["orderId"]))).merchant_pid == other.pid


async def test_gateway_addresses_joined_with_or_without_a_slash(default_merchant_server, merchant, gateway):
    """dujiaoka's Vpay sends to ``merchant_pem . 'createOrder?'``, SSPanel to ``"$gateway/createOrder?"``."""
    base = default_merchant_server.url
    configured = [f"{base}/", f"{base}/vmq/{merchant.pid}/", f"{base}/vmq/{merchant.pid}"]
    joins = {"dujiaoka": lambda address: f"{address}createOrder", "sspanel": lambda address: f"{address}/createOrder"}
    seen = []
    async with httpx.AsyncClient(timeout=10) as client:
        for number, address in enumerate(configured):
            for plugin, join in joins.items():
                url = join(address)
                params = order_request(merchant, f"J-{number}-{plugin}")
                data = data_of(await client.get(httpx.URL(url), params=params))
                seen.append((httpx.URL(url).path, data["payId"]))
    assert [url_path for url_path, _ in seen] == [
        "/createOrder",
        "//createOrder",
        f"/vmq/{merchant.pid}/createOrder",
        f"/vmq/{merchant.pid}//createOrder",
        f"/vmq/{merchant.pid}createOrder",
        f"/vmq/{merchant.pid}/createOrder",
    ]
    assert await order_count(gateway, merchant.pid) == 6


async def test_a_buyers_address_longer_than_its_column_is_stored_cut_to_64_characters(server, merchant, gateway):
    """What a trusted proxy reports as the buyer's address is kept, cut to the column's 64 characters
    rather than refused (the buyer is not to blame for the proxy's spelling)."""
    reported = "203.0.113.7-" + "x" * 60
    async with server.client(headers=from_address(reported)) as client:
        jump = await client.get(
            path("createOrder", merchant.pid), params={**order_request(merchant, "LONG-IP-1"), "isHtml": "1"}
        )
    assert jump.status_code == 302
    order = await stored_order(gateway, trade_no_of(jump.headers["location"]))
    assert order.clientip == reported[:64]
