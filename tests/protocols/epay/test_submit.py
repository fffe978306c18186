"""``submit.php`` over real HTTP: how parameters are read, Rainbow's checks and texts, order reuse.

Errors are HTML pages (status 200) carrying Rainbow's message; success sends the browser to
the cashier. Expected texts and signatures come from the epay reference notes (§2, §3.1).
"""

from __future__ import annotations

import html
import re
from decimal import Decimal

import httpx
import pytest

from openepay.core.states import MerchantStatus
from tests.support.answers import page_message
from tests.support.database import expire, merchant_with_key, order_count, stored_order
from tests.support.epay import SDK_KEY, VECTOR_B, VECTOR_E, order_params, signed, url_encoded_signed
from tests.support.gateways import own_server
from tests.support.links import cashier_path, sandbox_path, trade_no_of
from tests.support.merchant import plugin_sign

SHOP = "https://shop.example.com"
DESKTOP = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"}
UNAVAILABLE_TYPE_NOTE = "该支付方式暂不可用，请选择其他支付方式"


def element_text(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)<', page, re.S)
    assert match, f"no #{element_id} on the page"
    return html.unescape(match.group(1)).strip()


def cashier_target(response) -> tuple[str, bool]:  # type: ignore[no-untyped-def]
    """``(trade_no, other)`` of the redirect a successful submit answers."""
    assert response.status_code == 302, response.text[:500]
    location = response.headers["location"]
    trade_no = trade_no_of(location)
    assert location in (cashier_path(trade_no), f"{cashier_path(trade_no)}?other=1"), location
    return trade_no, location.endswith("?other=1")


async def submit(client, params: dict[str, str], method: str = "POST"):  # type: ignore[no-untyped-def]
    if method == "GET":
        return await client.get("/submit.php", params=params, headers=DESKTOP)
    return await client.post("/submit.php", data=params, headers=DESKTOP)


async def refusal(server, merchant, out_trade_no: str, **overrides: str) -> str:  # type: ignore[no-untyped-def]
    """The message of the page a correctly signed order with ``overrides`` gets."""
    params = signed(order_params(merchant.pid, SHOP, out_trade_no, **overrides), merchant.key)
    async with server.client() as client:
        return page_message(await submit(client, params))


# --- Reading the parameters -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_signed_order_sends_the_browser_to_the_cashier(server, merchant, method):
    params = signed(order_params(merchant.pid, SHOP, "S-1"), merchant.key)
    async with server.client() as client:
        response = await submit(client, params, method)
        trade_no, other = cashier_target(response)
        assert not other
        assert len(trade_no) <= 32
        cashier = await client.get(cashier_path(trade_no), headers=DESKTOP)
    assert cashier.status_code == 200
    assert 'id="qrcode"' in cashier.text
    assert element_text(cashier.text, "product-name") == "VIP会员"


async def test_query_string_with_pid_wins_and_the_body_is_ignored(server, merchant, gateway):
    query = signed(order_params(merchant.pid, SHOP, "Q-1", money="1.00"), merchant.key)
    body = {**order_params(merchant.pid, SHOP, "Q-1", money="999.00"), "sign": "0" * 32}
    async with server.client() as client:
        response = await client.post("/submit.php", params=query, data=body, headers=DESKTOP)
        trade_no, _ = cashier_target(response)
        cashier = await client.get(cashier_path(trade_no), headers=DESKTOP)
    assert re.search(r'id="amount">¥<span>([0-9.]+)</span>', cashier.text).group(1) == "1.00"

    # The other way round: a valid body does not rescue a query string that carries pid.
    body = signed(order_params(merchant.pid, SHOP, "Q-2"), merchant.key)
    query = {**order_params(merchant.pid, SHOP, "Q-2"), "sign": "0" * 32}
    async with server.client() as client:
        response = await client.post("/submit.php", params=query, data=body, headers=DESKTOP)
    assert page_message(response) == "签名校验失败，请返回重试！"
    assert await order_count(gateway, merchant.pid) == 1


async def test_query_and_body_are_never_merged(server, merchant):
    """The query string is verified and read alone, so fields sent in the body do not exist."""
    full = order_params(merchant.pid, SHOP, "M-1")
    query = signed({k: v for k, v in full.items() if k != "out_trade_no"}, merchant.key)
    async with server.client() as client:
        response = await client.post("/submit.php", params=query, data={"out_trade_no": "M-1"}, headers=DESKTOP)
        assert page_message(response) == "订单号(out_trade_no)不能为空"

        # Signed over both halves together, the query string alone does not verify.
        together = signed(full, merchant.key)
        in_query = {k: v for k, v in together.items() if k != "out_trade_no"}
        response = await client.post("/submit.php", params=in_query, data={"out_trade_no": "M-1"}, headers=DESKTOP)
        assert page_message(response) == "签名校验失败，请返回重试！"


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"method": "GET"},
        {"method": "GET", "params": {"out_trade_no": "X"}},
        {"method": "POST", "data": {"out_trade_no": "X", "money": "1"}},
        {"method": "POST", "json": {"pid": "1000", "money": "1"}},
        {"method": "POST", "data": {"PID": "1000"}},
    ],
    ids=["nothing", "query-without-pid", "body-without-pid", "json-body", "upper-case-name"],
)
async def test_no_pid_anywhere_is_answered_in_plain_text(server, request_kwargs):
    kwargs = dict(request_kwargs)
    method = kwargs.pop("method")
    async with server.client() as client:
        response = await client.request(method, "/submit.php", **kwargs)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == "你还未配置支付接口商户！"


async def test_raw_utf8_in_a_form_body_is_read_as_php_reads_it(server, merchant):
    """Some SDKs build the body by hand without percent-encoding; PHP still sees UTF-8 text."""
    params = signed(order_params(merchant.pid, SHOP, "RAW-1", name="测试商品 第一件"), merchant.key)
    body = "&".join(f"{k}={v}" for k, v in params.items() if k != "name")
    body += "&name=" + params["name"].replace(" ", "+")
    async with server.client() as client:
        response = await client.post(
            "/submit.php",
            content=body.encode("utf-8"),
            headers={**DESKTOP, "Content-Type": "application/x-www-form-urlencoded"},
        )
        trade_no, _ = cashier_target(response)
        cashier = await client.get(cashier_path(trade_no), headers=DESKTOP)
    assert element_text(cashier.text, "product-name") == "测试商品 第一件"


async def test_multipart_form_body_is_read_like_a_form(server, merchant):
    params = signed(order_params(merchant.pid, SHOP, "MP-1"), merchant.key)
    async with server.client() as client:
        response = await client.post(
            "/submit.php", data=params, files={"attachment": ("a.txt", b"ignored")}, headers=DESKTOP
        )
    cashier_target(response)


# --- Rainbow's checks, in Rainbow's order -----------------------------------------------------


@pytest.mark.parametrize("pid", ["", "abc", "0", "-0", " "])
async def test_pid_that_is_not_a_number_is_refused(server, merchant, pid):
    params = {**order_params(merchant.pid, SHOP, "P-1"), "pid": pid}
    async with server.client() as client:
        response = await submit(client, signed(params, merchant.key))
    assert page_message(response) == "商户ID不能为空"


async def test_unknown_merchant_is_refused_before_the_signature_is_looked_at(server, merchant):
    params = {**order_params(merchant.pid, SHOP, "P-2"), "pid": str(merchant.pid + 50), "sign": "bad"}
    async with server.client() as client:
        response = await submit(client, params)
    assert page_message(response) == "商户不存在！"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda p, key: {**p, "sign": plugin_sign(p, key + "x")},
        lambda p, key: {**signed(p, key), "money": "0.01"},
        lambda p, key: {k: v for k, v in signed(p, key).items() if k != "sign"},
        lambda p, key: {**signed(p, key), "sign": ""},
        lambda p, key: {**signed(p, key), "sign": "签名" * 16},
        lambda p, key: {**signed(p, key), "extra": "added after signing"},
    ],
    ids=["wrong-key", "tampered-money", "no-sign", "empty-sign", "non-ascii-sign", "unsigned-extra"],
)
async def test_bad_signature_is_refused(server, merchant, gateway, tamper):
    params = tamper(order_params(merchant.pid, SHOP, "SIG-1"), merchant.key)
    async with server.client() as client:
        response = await submit(client, params)
    assert page_message(response) == "签名校验失败，请返回重试！"
    assert await order_count(gateway, merchant.pid) == 0


async def test_signature_over_url_encoded_values_is_refused(server, merchant):
    """Vector D's mistake (payshift@cf97f7b): signing ``quote_plus`` of each value."""
    params = order_params(merchant.pid, SHOP, "ENC-1", notify_url=f"{SHOP}/notify?x=1", name="Pro Plan 1 month")
    wrong = url_encoded_signed(params, merchant.key)
    assert wrong["sign"] != plugin_sign(params, merchant.key)
    async with server.client() as client:
        response = await submit(client, wrong)
        assert page_message(response) == "签名校验失败，请返回重试！"
        cashier_target(await submit(client, signed(params, merchant.key)))


async def test_upper_case_hex_signature_is_accepted(server, merchant):
    params = order_params(merchant.pid, SHOP, "UP-1")
    signature = plugin_sign(params, merchant.key)
    assert signature != signature.upper()
    async with server.client() as client:
        response = await submit(client, {**params, "sign": signature.upper(), "sign_type": "MD5"})
    cashier_target(response)


async def test_unknown_extra_params_are_signed_and_accepted(server, merchant):
    params = order_params(merchant.pid, SHOP, "EXTRA-1", sitename="小明的店", cid="7", channel_id="3")
    async with server.client() as client:
        response = await submit(client, signed(params, merchant.key))
        trade_no, _ = cashier_target(response)
        cashier = await client.get(cashier_path(trade_no), headers=DESKTOP)
        assert element_text(cashier.text, "site-name") == "小明的店"

        # The same request with the extras left out of the signature fails.
        bare = signed(order_params(merchant.pid, SHOP, "EXTRA-2"), merchant.key)
        response = await submit(client, {**bare, "sitename": "小明的店", "cid": "7"})
        assert page_message(response) == "签名校验失败，请返回重试！"


async def test_vector_b_sdk_sample_request(server, gateway):
    await merchant_with_key(gateway, 1000, SDK_KEY)
    params = {**VECTOR_B, "sign": "5532db78aeeb14a1bc7bf293b1518c62", "sign_type": "MD5"}
    async with server.client() as client:
        cashier_target(await submit(client, params, "GET"))


async def test_vector_e_a_param_of_zero_is_signed(server, gateway):
    await merchant_with_key(gateway, 1001, "key")
    params = {**VECTOR_E, "sign_type": "MD5"}
    async with server.client() as client:
        # A client that drops "0" (ProxyPanel) computes another signature, which Rainbow refuses.
        response = await submit(client, {**params, "sign": "5a2943254f6226ae4a6ad861a8e09b24"})
        assert page_message(response) == "签名校验失败，请返回重试！"
        cashier_target(await submit(client, {**params, "sign": "f943f53d5313a9fee0a145cc461daf65"}))


async def test_disabled_merchant_is_refused_after_the_signature(server, merchant, gateway):
    await gateway.merchants.set_status(merchant.pid, MerchantStatus.DISABLED)
    async with server.client() as client:
        response = await submit(client, signed(order_params(merchant.pid, SHOP, "D-1"), merchant.key))
        assert page_message(response) == "商户已封禁，无法支付！"
        # Rainbow checks the signature first, so a stranger learns nothing about the account.
        response = await submit(client, {**order_params(merchant.pid, SHOP, "D-1"), "sign": "0" * 32})
        assert page_message(response) == "签名校验失败，请返回重试！"
        # And the ban comes before any field check.
        response = await submit(client, signed({"pid": str(merchant.pid)}, merchant.key))
        assert page_message(response) == "商户已封禁，无法支付！"


REQUIRED = [
    ("out_trade_no", "订单号(out_trade_no)不能为空"),
    ("notify_url", "通知地址(notify_url)不能为空"),
    ("return_url", "回调地址(return_url)不能为空"),
    ("name", "商品名称(name)不能为空"),
    ("money", "金额(money)不能为空"),
]


@pytest.mark.parametrize("position", range(len(REQUIRED)), ids=[field for field, _ in REQUIRED])
async def test_missing_fields_are_reported_in_rainbows_order(server, merchant, position):
    field, message = REQUIRED[position]
    full = order_params(merchant.pid, SHOP, "F-1")
    later = {name for name, _ in REQUIRED[position:]}
    async with server.client() as client:
        alone = {k: v for k, v in full.items() if k != field}
        assert page_message(await submit(client, signed(alone, merchant.key))) == message
        empty = {**full, field: ""}
        assert page_message(await submit(client, signed(empty, merchant.key))) == message
        # PHP's empty() is true for "0" too.
        zero = {**full, field: "0"}
        assert page_message(await submit(client, signed(zero, merchant.key))) == message
        # With this and every later field missing, this one is reported first.
        rest = {k: v for k, v in full.items() if k not in later}
        assert page_message(await submit(client, signed(rest, merchant.key))) == message


@pytest.mark.parametrize("money", ["-1", "1e2", "abc", "1.005", " 1", "1 ", "0.00", ".", "1,00", "+1", "0x10", "１"])
async def test_invalid_money_is_refused(server, merchant, money):
    assert await refusal(server, merchant, "MONEY-1", money=money) == "金额不合法"


async def test_money_is_checked_before_the_order_number_format(server, merchant):
    assert await refusal(server, merchant, "bad order no", money="abc") == "金额不合法"


@pytest.mark.parametrize("out_trade_no", ["a b", "订单1", "a/b", "a#b", "a'b", "x" * 65])
async def test_malformed_order_number_is_refused(server, merchant, out_trade_no):
    assert await refusal(server, merchant, out_trade_no) == "订单号(out_trade_no)格式不正确"


async def test_order_number_may_use_every_allowed_character(server, merchant):
    params = order_params(merchant.pid, SHOP, "aZ09._-|" + "x" * 56)
    async with server.client() as client:
        cashier_target(await submit(client, signed(params, merchant.key)))


@pytest.fixture
def limited_server(database_url, gateway):  # type: ignore[no-untyped-def]
    with own_server(database_url, pay_min_money=Decimal("1"), pay_max_money=Decimal("100")) as thread:
        yield thread


async def test_money_limits(limited_server, merchant):
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=10) as client:

        async def message(money: str, out_trade_no: str = "LIM-1") -> str:
            params = order_params(merchant.pid, SHOP, out_trade_no, money=money)
            return page_message(await submit(client, signed(params, merchant.key)))

        assert await message("100.01") == "最大支付金额是100元"
        assert await message("0.99") == "最小支付金额是1元"
        # Limits come after the money check and before the order number format.
        assert await message("abc", "bad no") == "金额不合法"
        assert await message("1000", "bad no") == "最大支付金额是100元"
        for money in ("1", "100", "100.00"):
            params = order_params(merchant.pid, SHOP, f"OK-{money}", money=money)
            cashier_target(await submit(client, signed(params, merchant.key)))


@pytest.mark.parametrize(
    "notify_url",
    [
        "ftp://shop.example.com/notify",
        "http://169.254.169.254/latest/meta-data/",
        "javascript:alert(1)",
        "http:///notify",
        "//shop.example.com/notify",
    ],
)
async def test_notify_url_that_can_never_be_reached_is_refused(server, merchant, notify_url):
    assert (
        await refusal(server, merchant, "N-1", notify_url=notify_url)
        == "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址"
    )


async def test_notify_url_format_is_checked_after_the_order_number(server, merchant):
    assert (
        await refusal(server, merchant, "bad no", notify_url="ftp://shop.example.com/notify")
        == "订单号(out_trade_no)格式不正确"
    )


@pytest.fixture
def public_only_server(database_url, gateway):  # type: ignore[no-untyped-def]
    with own_server(database_url, notify_allow_private=False) as thread:
        yield thread


async def test_private_notify_url_is_refused_when_private_targets_are_not_allowed(public_only_server, merchant):
    async with httpx.AsyncClient(base_url=public_only_server.url, timeout=10) as client:
        for index, notify_url in enumerate(
            ["http://127.0.0.1:8080/notify", "http://localhost/notify", "http://10.0.0.5/notify", "http://[::1]/n"]
        ):
            params = order_params(merchant.pid, SHOP, f"PRIV-{index}", notify_url=notify_url)
            response = await submit(client, signed(params, merchant.key))
            assert page_message(response) == "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址"
        public = order_params(merchant.pid, SHOP, "PUB-1", notify_url="https://shop.example.com/notify")
        cashier_target(await submit(client, signed(public, merchant.key)))


async def test_an_order_sent_without_a_client_ip_stores_none(server, merchant, gateway):
    """The channels then send their own placeholder for an unknown buyer address, never a made-up one."""
    async with server.client() as client:
        params = signed(order_params(merchant.pid, SHOP, "IP-1"), merchant.key)
        trade_no, _ = cashier_target(await submit(client, params))
    assert (await stored_order(gateway, trade_no)).clientip is None


async def test_nul_byte_in_a_stored_field_is_refused_cleanly(server, merchant, gateway):
    async with server.client() as client:
        for field, label in [("name", "商品名称(name)"), ("param", "业务扩展参数(param)")]:
            params = order_params(merchant.pid, SHOP, "NUL-1", **{field: "a\x00b"})
            response = await submit(client, signed(params, merchant.key))
            assert page_message(response) == f"{label}不合法"
    assert await order_count(gateway, merchant.pid) == 0


# --- Pay type ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pay_type", [None, "", "0"], ids=["absent", "empty", "zero"])
async def test_without_type_the_cashier_lets_the_buyer_choose(server, merchant, pay_type):
    params = order_params(merchant.pid, SHOP, "T-1", type=pay_type)
    async with server.client() as client:
        trade_no, other = cashier_target(await submit(client, signed(params, merchant.key)))
        assert not other
        page = (await client.get(cashier_path(trade_no), headers=DESKTOP)).text
    assert 'id="pay-types"' in page
    assert {"alipay", "wxpay", "qqpay"} <= set(re.findall(r'name="type" value="(\w+)"', page))
    assert UNAVAILABLE_TYPE_NOTE not in page


async def test_type_no_channel_serves_shows_the_chooser_with_a_note(server, merchant):
    params = order_params(merchant.pid, SHOP, "T-2", type="bank")
    async with server.client() as client:
        trade_no, other = cashier_target(await submit(client, signed(params, merchant.key)))
        assert other
        page = (await client.get(f"{cashier_path(trade_no)}?other=1", headers=DESKTOP)).text
    assert 'id="pay-types"' in page
    assert element_text(page, "note") == UNAVAILABLE_TYPE_NOTE


# --- Reusing an out_trade_no ------------------------------------------------------------------


async def test_identical_repeat_of_an_unpaid_order_reuses_it(server, merchant, gateway):
    params = signed(order_params(merchant.pid, SHOP, "R-1", param="p"), merchant.key)
    async with server.client() as client:
        first, _ = cashier_target(await submit(client, params))
        again, _ = cashier_target(await submit(client, params, "GET"))
        # Rainbow compares money rounded to 2 decimals, so "1.0" is the same amount as "1.00".
        same_amount = signed(order_params(merchant.pid, SHOP, "R-1", param="p", money="1.0"), merchant.key)
        third, _ = cashier_target(await submit(client, same_amount))
    assert first == again == third
    assert await order_count(gateway, merchant.pid) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"money": "1.01"},
        {"name": "VIP会员 "},
        {"notify_url": f"{SHOP}/notify2"},
        {"return_url": f"{SHOP}/return2"},
        {"param": "q"},
        {"param": None},
    ],
    ids=["money", "name", "notify_url", "return_url", "param", "param-dropped"],
)
async def test_repeat_with_changed_terms_is_refused(server, merchant, gateway, change):
    async with server.client() as client:
        cashier_target(await submit(client, signed(order_params(merchant.pid, SHOP, "R-2", param="p"), merchant.key)))
        changed = order_params(merchant.pid, SHOP, "R-2", **{"param": "p", **change})
        response = await submit(client, signed(changed, merchant.key))
    assert page_message(response) == "该订单(R-2)支付参数有变化，请更换订单号重新发起支付"
    assert await order_count(gateway, merchant.pid) == 1


async def test_repeat_with_another_type_switches_the_pay_type(server, merchant):
    async with server.client() as client:
        first, _ = cashier_target(await submit(client, signed(order_params(merchant.pid, SHOP, "R-3"), merchant.key)))
        page = (await client.get(cashier_path(first), headers=DESKTOP)).text
        assert "请使用支付宝扫一扫" in page
        params = signed(order_params(merchant.pid, SHOP, "R-3", type="wxpay"), merchant.key)
        again, _ = cashier_target(await submit(client, params))
        page = (await client.get(cashier_path(again), headers=DESKTOP)).text
    assert again == first
    assert "请使用微信支付扫一扫" in page


async def test_repeat_of_a_paid_order_is_refused(server, merchant):
    params = signed(order_params(merchant.pid, SHOP, "R-4"), merchant.key)
    async with server.client() as client:
        trade_no, _ = cashier_target(await submit(client, params))
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
        response = await submit(client, params)
        assert page_message(response) == "该订单(R-4)已完成支付，请勿重复发起支付"
        # Paid beats changed terms, as in Rainbow.
        changed = signed(order_params(merchant.pid, SHOP, "R-4", money="2.00"), merchant.key)
        assert page_message(await submit(client, changed)) == "该订单(R-4)已完成支付，请勿重复发起支付"


async def test_expired_and_closed_order_is_reopened_by_an_identical_repeat(server, merchant, gateway):
    params = signed(order_params(merchant.pid, SHOP, "R-5"), merchant.key)
    async with server.client() as client:
        trade_no, _ = cashier_target(await submit(client, params))
        await expire(gateway, trade_no)
        closed = await client.get(cashier_path(trade_no), headers=DESKTOP)
        assert element_text(closed.text, "message").endswith("已过期或已关闭，请返回商户网站重新下单。")

        again, _ = cashier_target(await submit(client, params))
        assert again == trade_no
        page = (await client.get(cashier_path(trade_no), headers=DESKTOP)).text
        assert 'id="qrcode"' in page
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
        assert (await client.get(f"{cashier_path(trade_no)}/status")).json()["paid"] is True


async def test_an_order_number_is_per_merchant(server, merchant, gateway):
    other = await gateway.merchants.create("Other Shop")
    async with server.client() as client:
        mine, _ = cashier_target(await submit(client, signed(order_params(merchant.pid, SHOP, "SAME"), merchant.key)))
        theirs, _ = cashier_target(
            await submit(client, signed(order_params(other.pid, SHOP, "SAME", money="5.00"), other.key))
        )
    assert mine != theirs
