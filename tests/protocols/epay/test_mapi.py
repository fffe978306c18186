"""``mapi.php`` over real HTTP: JSON answers, Rainbow's codes and texts, devices, reuse, notifications.

Expected texts, codes and vector signatures come from the epay reference notes (§2.3, §3.2).
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from openepay.core.states import MerchantStatus
from tests.support.answers import json_answer
from tests.support.database import expire, merchant_with_key, order_count, stored_order
from tests.support.epay import VECTOR_A, VECTOR_D, order_params, signed, url_encoded_signed
from tests.support.gateways import STRICT, own_server
from tests.support.links import cashier_path, sandbox_path, trade_no_of
from tests.support.merchant import plugin_sign
from tests.support.waiting import eventually

SHOP = "https://shop.example.com"
OFFERS = {"payurl", "qrcode", "urlscheme"}


def api_params(pid: int, merchant_url: str, out_trade_no: str, **overrides: str | None) -> dict[str, str]:
    defaults: dict[str, str | None] = {"clientip": "203.0.113.9", "device": "pc"}
    return order_params(pid, merchant_url, out_trade_no, **{**defaults, **overrides})  # type: ignore[arg-type]


def error_of(response: httpx.Response) -> tuple[int, str]:
    answer = json_answer(response)
    assert set(answer) == {"code", "msg"}, answer
    return answer["code"], answer["msg"]


def success_of(response: httpx.Response) -> dict:
    answer = json_answer(response)
    assert answer["code"] == 1, answer
    assert "msg" not in answer
    assert len(OFFERS & set(answer)) == 1, answer
    assert set(answer) - OFFERS == {"code", "trade_no"}
    assert answer["trade_no"].isdigit() and len(answer["trade_no"]) <= 32
    return answer


async def mapi(client: httpx.AsyncClient, params: dict[str, str], method: str = "POST") -> httpx.Response:
    if method == "GET":
        return await client.get("/mapi.php", params=params)
    return await client.post("/mapi.php", data=params)


# --- Reading the parameters -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_get_and_post_both_create_the_order(server, merchant, method):
    async with server.client() as client:
        params = signed(api_params(merchant.pid, SHOP, f"G-{method}"), merchant.key)
        answer = success_of(await mapi(client, params, method))
    assert set(answer) == {"code", "trade_no", "qrcode"}


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"method": "GET"},
        {"method": "POST"},
        {"method": "POST", "data": {"money": "1"}},
        {"method": "POST", "json": {"pid": "1000"}},
    ],
    ids=["get-nothing", "post-nothing", "body-without-pid", "json-body"],
)
async def test_no_pid_anywhere(server, request_kwargs):
    kwargs = dict(request_kwargs)
    method = kwargs.pop("method")
    async with server.client() as client:
        response = await client.request(method, "/mapi.php", **kwargs)
    assert error_of(response) == (-4, "未传入任何参数")


async def test_query_string_with_pid_is_verified_alone(server, merchant, gateway):
    body = signed(api_params(merchant.pid, SHOP, "Q-1"), merchant.key)
    query = {**api_params(merchant.pid, SHOP, "Q-1"), "sign": "0" * 32}
    async with server.client() as client:
        assert error_of(await client.post("/mapi.php", params=query, data=body)) == (-1, "签名校验失败，请返回重试！")

        query = signed(api_params(merchant.pid, SHOP, "Q-2", money="2.00"), merchant.key)
        body = {**api_params(merchant.pid, SHOP, "Q-2", money="3.00"), "sign": "0" * 32}
        trade_no = success_of(await client.post("/mapi.php", params=query, data=body))["trade_no"]
    order = await stored_order(gateway, trade_no)
    assert (order.out_trade_no, order.money) == ("Q-2", "2.00")
    assert await order_count(gateway, merchant.pid) == 1


# The longest value of each field we store, and Rainbow's words for one character more.
LONGEST = {
    "notify_url": f"{SHOP}/" + "n" * (2048 - len(SHOP) - 1),
    "return_url": "http://shop.example.com/" + "r" * (2048 - 24),
    "name": "名" * 1024,
    "param": "p" * 4096,
    "clientip": "2001:db8::" + "f" * 54,
}
ONE_MORE = {
    "notify_url": "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址",
    "return_url": "回调地址(return_url)不合法，请填写http或https地址",
    "name": "商品名称(name)过长",
    "param": "业务扩展参数(param)过长",
    "clientip": "用户IP地址(clientip)不合法",
}


async def test_the_longest_values_are_stored_verbatim_and_one_character_more_is_refused(server, merchant, gateway):
    assert [len(value) for value in LONGEST.values()] == [2048, 2048, 1024, 4096, 64]
    params = signed(api_params(merchant.pid, SHOP, "LONG-1", sitename="小明的店", **LONGEST), merchant.key)
    async with server.client() as client:
        trade_no = success_of(await mapi(client, params))["trade_no"]
        for field, message in ONE_MORE.items():
            longer = api_params(merchant.pid, SHOP, "LONG-2", **{**LONGEST, field: LONGEST[field] + "x"})
            assert error_of(await mapi(client, signed(longer, merchant.key))) == (-1, message), field
    order = await stored_order(gateway, trade_no)
    stored = {field: getattr(order, field) for field in LONGEST}
    assert stored == LONGEST
    assert (order.sitename, order.device) == ("小明的店", "pc")
    assert await order_count(gateway, merchant.pid) == 1


async def test_what_a_request_leaves_out_is_stored_as_nothing(server, merchant, gateway):
    """No return_url, param or sitename: none is stored (an unknown device is a PC's)."""
    params = signed(api_params(merchant.pid, SHOP, "BARE-1", return_url=None, device="television"), merchant.key)
    async with server.client() as client:
        trade_no = success_of(await mapi(client, params))["trade_no"]
    order = await stored_order(gateway, trade_no)
    assert (order.return_url, order.param, order.sitename, order.device) == (None, None, None, "pc")
    assert order.clientip == "203.0.113.9"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_body_over_the_size_limit_is_refused(server, merchant, chunked):
    params = signed(api_params(merchant.pid, SHOP, "BIG-1", param="x" * 1_100_000), merchant.key)
    body = urlencode(params).encode()

    async def pieces():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    content = pieces() if chunked else body
    async with server.client() as client:
        response = await client.post(
            "/mapi.php", content=content, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    assert response.status_code == 413


# --- Errors -----------------------------------------------------------------------------------


ERRORS = [
    ("pid-empty", lambda p, key: signed({**p, "pid": ""}, key), "商户ID不能为空"),
    ("pid-text", lambda p, key: signed({**p, "pid": "abc"}, key), "商户ID不能为空"),
    ("pid-unknown", lambda p, key: signed({**p, "pid": "99999"}, key), "商户不存在！"),
    ("wrong-key", lambda p, key: signed(p, key[::-1]), "签名校验失败，请返回重试！"),
    ("tampered", lambda p, key: {**signed(p, key), "money": "100.00"}, "签名校验失败，请返回重试！"),
    (
        "url-encoded-sign",
        lambda p, key: url_encoded_signed({**p, "name": "Pro Plan 1 month"}, key),
        "签名校验失败，请返回重试！",
    ),
    ("no-sign", lambda p, key: p, "签名校验失败，请返回重试！"),
    ("out_trade_no", lambda p, key: signed({**p, "out_trade_no": ""}, key), "订单号(out_trade_no)不能为空"),
    ("notify_url", lambda p, key: signed({**p, "notify_url": ""}, key), "通知地址(notify_url)不能为空"),
    ("name", lambda p, key: signed({**p, "name": "0"}, key), "商品名称(name)不能为空"),
    ("money", lambda p, key: signed({**p, "money": ""}, key), "金额(money)不能为空"),
    ("type", lambda p, key: signed({**p, "type": ""}, key), "支付方式(type)不能为空"),
    (
        "clientip",
        lambda p, key: signed({k: v for k, v in p.items() if k != "clientip"}, key),
        "用户IP地址(clientip)不能为空",
    ),
    ("money-zero-decimals", lambda p, key: signed({**p, "money": "0.00"}, key), "金额不合法"),
    ("money-negative", lambda p, key: signed({**p, "money": "-1"}, key), "金额不合法"),
    ("money-exponent", lambda p, key: signed({**p, "money": "1e2"}, key), "金额不合法"),
    ("money-text", lambda p, key: signed({**p, "money": "abc"}, key), "金额不合法"),
    ("money-sub-fen", lambda p, key: signed({**p, "money": "1.005"}, key), "金额不合法"),
    ("money-space", lambda p, key: signed({**p, "money": " 1"}, key), "金额不合法"),
    # The default cap on one order, and amounts no column could hold, refused before any arithmetic.
    ("money-over-default-max", lambda p, key: signed({**p, "money": "50000.01"}, key), "最大支付金额是50000元"),
    ("money-20-digits", lambda p, key: signed({**p, "money": "9" * 20}, key), "金额不合法"),
    ("money-30-digits", lambda p, key: signed({**p, "money": "9" * 30}, key), "金额不合法"),
    ("money-1e30", lambda p, key: signed({**p, "money": "1e30"}, key), "金额不合法"),
    (
        "out_trade_no-format",
        lambda p, key: signed({**p, "out_trade_no": "订单 1"}, key),
        "订单号(out_trade_no)格式不正确",
    ),
    (
        "notify_url-ftp",
        lambda p, key: signed({**p, "notify_url": "ftp://shop.example.com/n"}, key),
        "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址",
    ),
    (
        "notify_url-metadata",
        lambda p, key: signed({**p, "notify_url": "http://169.254.169.254/latest"}, key),
        "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址",
    ),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("build", "message"), [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
async def test_validation_errors(server, merchant, gateway, build, message, method):
    params = build(api_params(merchant.pid, SHOP, "E-1"), merchant.key)
    async with server.client() as client:
        assert error_of(await mapi(client, params, method)) == (-1, message)
    assert await order_count(gateway, merchant.pid) == 0


API_REQUIRED = [
    ("out_trade_no", "订单号(out_trade_no)不能为空"),
    ("notify_url", "通知地址(notify_url)不能为空"),
    ("name", "商品名称(name)不能为空"),
    ("money", "金额(money)不能为空"),
    ("type", "支付方式(type)不能为空"),
    ("clientip", "用户IP地址(clientip)不能为空"),
]


async def test_missing_fields_are_reported_in_rainbows_order(server, merchant):
    full = api_params(merchant.pid, SHOP, "F-1")
    async with server.client() as client:
        for position, (_, message) in enumerate(API_REQUIRED):
            later = {name for name, _ in API_REQUIRED[position:]}
            rest = {k: v for k, v in full.items() if k not in later}
            assert error_of(await mapi(client, signed(rest, merchant.key))) == (-1, message)
        # Empty values are missing too; and the signature is checked before any of them.
        assert error_of(await mapi(client, {"pid": str(merchant.pid)})) == (-1, "签名校验失败，请返回重试！")
        # return_url is optional here, unlike submit.php.
        success_of(await mapi(client, signed({**full, "return_url": ""}, merchant.key)))


async def test_disabled_merchant(server, merchant, gateway):
    await gateway.merchants.set_status(merchant.pid, MerchantStatus.DISABLED)
    async with server.client() as client:
        response = await mapi(client, signed(api_params(merchant.pid, SHOP, "D-1"), merchant.key))
        assert error_of(response) == (-1, "商户已封禁，无法支付！")
        response = await mapi(client, {**api_params(merchant.pid, SHOP, "D-1"), "sign": "f" * 32})
        assert error_of(response) == (-1, "签名校验失败，请返回重试！")


@pytest.fixture
def strict_server(database_url, gateway):  # type: ignore[no-untyped-def]
    with own_server(database_url, **STRICT) as thread:
        yield thread


async def test_settings_shape_the_answers(strict_server, merchant):
    async with httpx.AsyncClient(base_url=strict_server.url, timeout=10) as client:

        async def call(out_trade_no: str, **overrides: str) -> httpx.Response:
            return await mapi(client, signed(api_params(merchant.pid, SHOP, out_trade_no, **overrides), merchant.key))

        assert error_of(await call("L-1", money="5000.01")) == (-1, "最大支付金额是5000元")
        assert error_of(await call("L-2", money="0.49")) == (-1, "最小支付金额是0.50元")
        blocked = "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址"
        assert error_of(await call("L-3", notify_url="http://127.0.0.1/n")) == (-1, blocked)
        assert error_of(await call("L-4", notify_url="http://localhost:8080/n")) == (-1, blocked)

        pc = success_of(await call("U-1"))
        assert pc["qrcode"] == f"https://pay.example.com{sandbox_path(pc['trade_no'])}"
        jump = success_of(await call("U-2", device="jump"))
        assert jump["payurl"] == f"https://pay.example.com{cashier_path(jump['trade_no'])}"
        other = success_of(await call("U-3", type="bank"))
        assert other["payurl"] == f"https://pay.example.com{cashier_path(other['trade_no'])}?other=1"


# --- Reference vectors through the endpoint ---------------------------------------------------


async def test_vector_a(server, gateway):
    await merchant_with_key(gateway, 1001, "123456")
    params = {**VECTOR_A, "sign": "4a0d8e5a6499e5de11878b87fa9ac8ba"}
    async with server.client() as client:
        assert set(success_of(await mapi(client, params))) == {"code", "trade_no", "qrcode"}


async def test_vector_d_raw_signature_passes_and_url_encoded_one_fails(server, gateway):
    await merchant_with_key(gateway, 1001, "abcdefghijklmnopqrstuvwxyz012345")
    async with server.client() as client:
        refused = await mapi(client, {**VECTOR_D, "sign": "85f133b34003a73f9f311b9bca09b2c6", "sign_type": "MD5"})
        assert error_of(refused) == (-1, "签名校验失败，请返回重试！")
        accepted = await mapi(client, {**VECTOR_D, "sign": "0d6a432c183171108efb548b8e5a860a", "sign_type": "MD5"})
        answer = success_of(accepted)
    assert set(answer) == {"code", "trade_no", "payurl"}


# --- Success per device -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "offer"),
    [
        ("pc", "qrcode"),
        (None, "qrcode"),
        ("", "qrcode"),
        ("television", "qrcode"),
        ("mobile", "payurl"),
        ("alipay", "payurl"),
        ("qq", "payurl"),
        ("wechat", "payurl"),
    ],
)
async def test_answer_carries_one_offer_for_the_device(server, merchant, device, offer):
    async with server.client() as client:
        params = signed(api_params(merchant.pid, SHOP, "DEV-1", device=device), merchant.key)
        answer = success_of(await mapi(client, params))
        assert set(answer) == {"code", "trade_no", offer}
        assert answer[offer] == f"{server.url}{sandbox_path(answer['trade_no'])}"
        page = await client.get(answer[offer])
    assert page.status_code == 200
    assert answer["trade_no"] in page.text


async def test_jump_answers_the_cashier_showing_the_requested_pay_type(server, merchant):
    async with server.client() as client:
        params = signed(api_params(merchant.pid, SHOP, "JUMP-1", device="jump", type="wxpay"), merchant.key)
        answer = success_of(await mapi(client, params))
        assert set(answer) == {"code", "trade_no", "payurl"}
        trade_no = answer["trade_no"]
        assert answer["payurl"] == f"{server.url}{cashier_path(trade_no)}"
        cashier = await client.get(answer["payurl"])
        assert cashier.status_code == 200
        assert 'id="qrcode"' in cashier.text
        assert "请使用微信支付扫一扫" in cashier.text
        assert (await client.post(sandbox_path(trade_no))).status_code == 303


async def test_type_no_channel_serves_answers_the_cashier_chooser(server, merchant):
    async with server.client() as client:
        params = signed(api_params(merchant.pid, SHOP, "BANK-1", type="bank"), merchant.key)
        answer = success_of(await mapi(client, params))
        assert answer["payurl"] == f"{server.url}{cashier_path(answer['trade_no'])}?other=1"
        page = (await client.get(answer["payurl"])).text
    assert 'id="pay-types"' in page
    assert "该支付方式暂不可用，请选择其他支付方式" in page


# --- Reusing an out_trade_no ------------------------------------------------------------------


async def test_identical_repeat_reuses_the_order(server, merchant, gateway):
    params = signed(api_params(merchant.pid, SHOP, "R-1", param="p"), merchant.key)
    async with server.client() as client:
        first = success_of(await mapi(client, params))
        again = success_of(await mapi(client, params, "GET"))
        # clientip and device are not terms of the order: a buyer on another device reopens it.
        moved = api_params(merchant.pid, SHOP, "R-1", param="p", clientip="198.51.100.1", device="mobile")
        moved = signed(moved, merchant.key)
        third = success_of(await mapi(client, moved))
    assert first["trade_no"] == again["trade_no"] == third["trade_no"]
    assert "payurl" in third
    assert await order_count(gateway, merchant.pid) == 1


@pytest.mark.parametrize(
    "change",
    [{"money": "2.00"}, {"name": "other"}, {"notify_url": f"{SHOP}/n2"}, {"return_url": f"{SHOP}/r2"}, {"param": "q"}],
    ids=["money", "name", "notify_url", "return_url", "param"],
)
async def test_repeat_with_changed_terms_is_refused(server, merchant, change):
    async with server.client() as client:
        success_of(await mapi(client, signed(api_params(merchant.pid, SHOP, "R-2", param="p"), merchant.key)))
        changed = signed(api_params(merchant.pid, SHOP, "R-2", **{"param": "p", **change}), merchant.key)
        assert error_of(await mapi(client, changed)) == (-1, "该订单(R-2)支付参数有变化，请更换订单号重新发起支付")


async def test_repeat_with_another_type_switches_the_pay_type(server, merchant, gateway):
    async with server.client() as client:
        first = success_of(await mapi(client, signed(api_params(merchant.pid, SHOP, "R-3"), merchant.key)))
        other_type = signed(api_params(merchant.pid, SHOP, "R-3", type="qqpay"), merchant.key)
        again = success_of(await mapi(client, other_type))
        assert again["trade_no"] == first["trade_no"]
        page = (await client.get(cashier_path(first["trade_no"]))).text
    assert "请使用QQ钱包扫一扫" in page
    assert (await stored_order(gateway, first["trade_no"])).pay_type == "qqpay"


async def test_repeat_of_a_paid_order_is_refused(server, merchant):
    params = signed(api_params(merchant.pid, SHOP, "R-4"), merchant.key)
    async with server.client() as client:
        trade_no = success_of(await mapi(client, params))["trade_no"]
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
        assert error_of(await mapi(client, params)) == (-1, "该订单(R-4)已完成支付，请勿重复发起支付")
        jump = signed(api_params(merchant.pid, SHOP, "R-4", device="jump"), merchant.key)
        assert error_of(await mapi(client, jump)) == (-1, "该订单(R-4)已完成支付，请勿重复发起支付")


async def test_concurrent_identical_requests_make_one_order(server, merchant, gateway):
    params = signed(api_params(merchant.pid, SHOP, "R-5"), merchant.key)
    async with server.client() as client:
        responses = await asyncio.gather(*(mapi(client, params) for _ in range(10)))
    answers = [success_of(response) for response in responses]
    assert len({answer["trade_no"] for answer in answers}) == 1
    assert await order_count(gateway, merchant.pid) == 1


async def test_expired_order_is_reopened_by_an_identical_repeat(server, merchant, gateway):
    params = signed(api_params(merchant.pid, SHOP, "R-6"), merchant.key)
    async with server.client() as client:
        trade_no = success_of(await mapi(client, params))["trade_no"]
        await expire(gateway, trade_no)
        assert (await client.get(f"{cashier_path(trade_no)}/status")).json()["status"] == "closed"

        reopened = success_of(await mapi(client, params))
        assert reopened["trade_no"] == trade_no
        assert (await client.get(f"{cashier_path(trade_no)}/status")).json()["status"] == "paying"
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
    assert await order_count(gateway, merchant.pid) == 1


# --- What comes back to the merchant ----------------------------------------------------------

AWKWARD = "a&b=c+d%20%zz \"quoted\" 'single' <tag> 中文 😀 \\ / ? #"


@pytest.mark.parametrize(
    ("endpoint", "method"), [("mapi", "POST"), ("mapi", "GET"), ("submit", "GET"), ("submit", "POST")]
)
async def test_name_and_param_come_back_verbatim(server, merchant, shop, worker, endpoint, method):
    params = api_params(merchant.pid, shop.url, "V-1", name="名" + AWKWARD, param="p=" + AWKWARD, money="10.50")
    async with server.client() as client:
        if endpoint == "mapi":
            trade_no = success_of(await mapi(client, signed(params, merchant.key), method))["trade_no"]
        else:
            send = client.get if method == "GET" else client.post
            key = "params" if method == "GET" else "data"
            redirect = await send("/submit.php", **{key: signed(params, merchant.key)})
            assert redirect.status_code == 302, redirect.text[:300]
            trade_no = trade_no_of(redirect.headers["location"])
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
        [notification] = await eventually(lambda: shop.notifications())
        back = await client.get(f"{cashier_path(trade_no)}/return")

    assert notification.signature_ok is True
    assert notification.params["name"] == "名" + AWKWARD
    assert notification.params["param"] == "p=" + AWKWARD
    assert notification.params["money"] == "10.50"
    returned = dict(parse_qsl(urlsplit(back.headers["location"]).query, keep_blank_values=True))
    assert returned == notification.params


async def test_notify_url_with_its_own_query_string(server, merchant, shop, worker):
    """The merchant gets its own a and b next to the signed fields.

    A plugin that verifies over every GET parameter then fails (Rainbow's SDK has the same
    limitation); the signature does verify over the epay fields alone.
    """
    params = api_params(merchant.pid, shop.url, "QS-1", notify_url=f"{shop.url}/notify?a=1&b=2")
    async with server.client() as client:
        trade_no = success_of(await mapi(client, signed(params, merchant.key)))["trade_no"]
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
        [notification] = await eventually(lambda: shop.notifications())

    received = notification.params
    assert notification.method == "GET"
    assert set(received) == {
        "a", "b", "pid", "trade_no", "out_trade_no", "type", "name", "money", "trade_status", "sign", "sign_type",
    }  # fmt: skip
    assert (received["a"], received["b"]) == ("1", "2")
    assert received["trade_no"] == trade_no
    assert (received["out_trade_no"], received["trade_status"]) == ("QS-1", "TRADE_SUCCESS")
    assert notification.signature_ok is False
    epay_fields = {k: v for k, v in received.items() if k not in ("a", "b")}
    assert plugin_sign(epay_fields, merchant.key) == received["sign"]
