"""``/pay/mapi.php`` over real HTTP: the seed's answer, every status code, the order of the checks, reuse.

Codes and messages are the seed's table (``support.SEED_MESSAGES``); 702 and 703 come from
the sandbox's test amounts (7.02: the channel is paused, 7.03: no code for the amount).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from openepay.core.states import MerchantStatus
from tests.support.database import order_count, stored_order
from tests.support.epay import order_params
from tests.support.epay import signed as epay_signed
from tests.support.gateways import STRICT, own_server
from tests.support.links import cashier_path, sandbox_path
from tests.support.pay_mapi import (
    MAPI,
    SHOP,
    call,
    code_of,
    error_of,
    orders_of,
    pay_params,
    signed,
    success_of,
)
from tests.support.servers import ServerThread

REQUIRED = ["pid", "type", "out_trade_no", "notify_url", "return_url", "name", "money", "sign"]


def order_request(merchant, out_trade_no: str, **overrides: str | None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return signed(pay_params(merchant.pid, SHOP, out_trade_no, **overrides), merchant.key)


# --- Reading the request ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_order_is_created_and_answered_as_the_seed_shows(server, merchant, gateway, method):
    params = order_request(merchant, f"S-{method}", money="1", ext="userId=42", type="alipay")
    async with server.client() as client:
        answer = success_of(await call(client, params, method))
        trade_no = answer["trade_no"]
        assert answer == {
            "code": 200,
            "msg": "success",
            "money": "1.00",
            "type": "alipay",
            "qrcode": f"{server.url}{sandbox_path(trade_no)}",
            "trade_no": trade_no,
            "out_trade_no": f"S-{method}",
            "payurl": f"{server.url}{cashier_path(trade_no)}",
        }
        cashier = await client.get(answer["payurl"])
        assert cashier.status_code == 200 and trade_no in cashier.text
        assert 'id="qrcode"' in cashier.text

    order = await stored_order(gateway, trade_no)
    assert order.dialect == "pay_mapi"
    assert (order.money, order.amount_fen, order.pay_amount_fen) == ("1", 100, 100)
    assert (order.param, order.sitename, order.name) == ("userId=42", "Oreo Shop", "An Oreo")
    assert (order.notify_url, order.return_url) == (f"{SHOP}/notify", f"{SHOP}/return")
    assert order.status == "paying"


async def test_fluctuating_amount_is_what_the_buyer_pays(server, merchant, gateway):
    async with server.client() as client:
        answer = success_of(await call(client, order_request(merchant, "FL-1", money="7.09")))
    assert answer["money"] == "7.10"
    order = await stored_order(gateway, answer["trade_no"])
    assert (order.money, order.amount_fen, order.pay_amount_fen) == ("7.09", 709, 710)


async def test_no_pid_anywhere_is_missing_parameters(server):
    async with server.client() as client:
        for response in (
            await client.get(MAPI),
            await client.post(MAPI),
            await client.post(MAPI, data={"money": "1"}),
            await client.post(MAPI, json={"pid": "1000"}),
        ):
            assert error_of(response) == (700, "Missing parameters", "pid is required")


async def test_query_string_with_pid_is_read_alone(server, merchant, gateway):
    good = order_request(merchant, "Q-1")
    async with server.client() as client:
        bad_query = {**good, "sign": "0" * 32}
        assert code_of(await client.post(MAPI, params=bad_query, data=good)) == 701
        answer = success_of(await client.post(MAPI, params=good, data={**good, "money": "3.00"}))
    assert (await stored_order(gateway, answer["trade_no"])).money == "1.00"


# --- 700: missing parameters, before anything else --------------------------------------------


@pytest.mark.parametrize("field", REQUIRED)
@pytest.mark.parametrize("how", ["absent", "empty"])
async def test_each_required_field(server, merchant, gateway, field, how):
    params = order_request(merchant, "M-1")
    if how == "absent":
        params.pop(field)
    else:
        params[field] = ""
    if field != "sign":
        params = signed({k: v for k, v in params.items() if k not in ("sign", "sign_type")}, merchant.key)
    async with server.client() as client:
        assert error_of(await call(client, params)) == (700, "Missing parameters", f"{field} is required")
    assert await order_count(gateway, merchant.pid) == 0


async def test_missing_fields_are_named_in_order_and_come_before_the_merchant_check(server):
    async with server.client() as client:
        assert error_of(await call(client, {"pid": "abc"}))[2] == "type is required"
        unknown = pay_params(99999, SHOP, "M-2", return_url=None)
        assert error_of(await call(client, {**unknown, "sign": "x"}))[2] == "return_url is required"
        assert error_of(await call(client, unknown))[2] == "return_url is required"


async def test_optional_fields_may_be_left_out(server, merchant, gateway):
    params = signed(pay_params(merchant.pid, SHOP, "O-1", sitename=None), merchant.key)
    params.pop("sign_type")
    async with server.client() as client:
        answer = success_of(await call(client, params))
    order = await stored_order(gateway, answer["trade_no"])
    assert (order.param, order.sitename) == (None, None)


# --- 800: merchant ------------------------------------------------------------------------------


INVALID_MERCHANT = "Invalid merchant or secret key, please check"


@pytest.mark.parametrize("pid", ["abc", "0", "-1", "1.5", "1001abc", " 1001", "2147483648", "99999999999", "١٠٠١"])
async def test_a_pid_that_is_no_merchant_number_is_800_and_says_what_a_pid_is(server, merchant, pid):
    params = signed({**pay_params(merchant.pid, SHOP, "P-1"), "pid": pid}, merchant.key)
    async with server.client() as client:
        assert error_of(await call(client, params)) == (800, INVALID_MERCHANT, "pid must be a positive integer")


async def test_a_pid_that_names_no_merchant_is_800(server, merchant):
    params = signed({**pay_params(merchant.pid, SHOP, "P-1"), "pid": "99999"}, merchant.key)
    async with server.client() as client:
        assert error_of(await call(client, params)) == (800, INVALID_MERCHANT, None)


async def test_disabled_merchant_is_refused_signed_or_not(server, merchant, gateway):
    await gateway.merchants.set_status(merchant.pid, MerchantStatus.DISABLED)
    async with server.client() as client:
        assert error_of(await call(client, order_request(merchant, "D-1"))) == (
            800,
            "Invalid merchant or secret key, please check",
            None,
        )
        assert code_of(await call(client, {**order_request(merchant, "D-1"), "sign": "f" * 32})) == 800
    assert await order_count(gateway, merchant.pid) == 0


# --- 701: signature ---------------------------------------------------------------------------


async def test_signature_errors(server, merchant, gateway):
    base = pay_params(merchant.pid, SHOP, "SIG-1")
    async with server.client() as client:
        assert error_of(await call(client, signed(base, merchant.key[::-1]))) == (
            701,
            "Signature verification failed",
            None,
        )
        assert code_of(await call(client, {**signed(base, merchant.key), "money": "100.00"})) == 701
        assert code_of(await call(client, {**signed(base, merchant.key), "ext": "added later"})) == 701
        for sign_type in ("RSA", "SHA256", "md4"):
            response = await call(client, {**signed(base, merchant.key), "sign_type": sign_type})
            assert error_of(response) == (701, "Signature verification failed", "sign_type must be MD5")
        # sign_type is optional and its case is free; upper-case hex is the same signature.
        sign = signed(base, merchant.key)["sign"]
        success_of(await call(client, {**base, "sign": sign.upper(), "sign_type": "md5"}))
    assert await order_count(gateway, merchant.pid) == 1


# --- 704: amount below the minimum ------------------------------------------------------------


@pytest.mark.parametrize("money", ["0", "0.00", "0.001", "0.009", "-1", "-0.5", ".001", "00"])
async def test_amount_below_a_fen(server, merchant, gateway, money):
    async with server.client() as client:
        response = await call(client, order_request(merchant, "A-1", money=money))
    assert error_of(response) == (704, "Amount cannot be less than 0.01 yuan", None)
    assert await order_count(gateway, merchant.pid) == 0


async def test_smallest_amount_is_accepted(server, merchant):
    async with server.client() as client:
        assert success_of(await call(client, order_request(merchant, "A-2", money="0.01")))["money"] == "0.01"


# --- 700 with a detail: malformed values ------------------------------------------------------

MALFORMED = [
    ("money-text", {"money": "abc"}, "money must be"),
    ("money-sub-fen", {"money": "1.005"}, "money must be"),
    ("money-exponent", {"money": "1e2"}, "money must be"),
    ("money-space", {"money": " 1"}, "money must be"),
    ("money-comma", {"money": "1,00"}, "money must be"),
    ("money-plus", {"money": "+1"}, "money must be"),
    ("money-long", {"money": "1" * 21}, "money must be"),
    ("money-20-digits", {"money": "9" * 20}, "money must be"),
    ("money-1e30", {"money": "1e30"}, "money must be"),
    ("money-full-width", {"money": "１"}, "money must be a number of yuan with at most two decimals, such as 1.00"),
    ("money-over-default-max", {"money": "50000.01"}, "money must be at most 50000.00"),
    ("out_trade_no-space", {"out_trade_no": "order 1"}, "out_trade_no must be"),
    ("out_trade_no-chinese", {"out_trade_no": "订单1"}, "out_trade_no must be"),
    ("out_trade_no-65", {"out_trade_no": "A" * 65}, "out_trade_no must be"),
    ("notify_url-ftp", {"notify_url": "ftp://shop.example.com/n"}, "notify_url must be"),
    ("notify_url-metadata", {"notify_url": "http://169.254.169.254/latest"}, "notify_url must be"),
    ("notify_url-word", {"notify_url": "notify"}, "notify_url must be"),
    ("notify_url-credentials", {"notify_url": "http://u:p@shop.example.com/n"}, "notify_url must be"),
    ("notify_url-long", {"notify_url": f"{SHOP}/{'n' * 2048}"}, "notify_url must be"),
    ("return_url-javascript", {"return_url": "javascript:alert(1)"}, "return_url must be"),
    ("return_url-relative", {"return_url": "/return"}, "return_url must be"),
    ("ext-101", {"ext": "e" * 101}, "ext must be at most 100 characters"),
    ("name-1025", {"name": "n" * 1025}, "name must be at most 1024 characters"),
    ("sitename-long", {"sitename": "s" * 1025}, "sitename must be at most 1024 characters"),
    ("name-nul", {"name": "a\x00b"}, "name must not contain NUL bytes"),
    ("ext-nul", {"ext": "\x00"}, "ext must not contain NUL bytes"),
    ("sitename-nul", {"sitename": "x\x00"}, "sitename must not contain NUL bytes"),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("change", "detail"), [case[1:] for case in MALFORMED], ids=[case[0] for case in MALFORMED])
async def test_malformed_values(server, merchant, gateway, change, detail, method):
    change = dict(change)
    async with server.client() as client:
        params = order_request(merchant, change.pop("out_trade_no", "V-1"), **change)
        code, _, said = error_of(await call(client, params, method))
    assert code == 700
    assert said is not None and said.startswith(detail), said
    assert await order_count(gateway, merchant.pid) == 0


async def test_longest_values_are_accepted(database_url, merchant, gateway):
    params = order_request(
        merchant, "L" * 64, ext="e" * 100, name="名" * 1024, sitename="站" * 1024, money="99999999.99"
    )
    # An operator who takes orders this large raises the default cap of 50000 yuan.
    with own_server(database_url, pay_max_money=Decimal("99999999.99")) as thread:
        async with httpx.AsyncClient(base_url=thread.url, timeout=10) as client:
            answer = success_of(await call(client, params))
    order = await stored_order(gateway, answer["trade_no"])
    assert (order.param, order.name, order.sitename, order.amount_fen) == (
        "e" * 100,
        "名" * 1024,
        "站" * 1024,
        9_999_999_999,
    )


@pytest.fixture
def strict_server(database_url, gateway) -> Iterator[ServerThread]:  # type: ignore[no-untyped-def]
    with own_server(database_url, **STRICT) as thread:
        yield thread


async def test_settings_shape_the_answers(strict_server, merchant):
    async with httpx.AsyncClient(base_url=strict_server.url, timeout=10) as client:

        async def send(out_trade_no: str, **overrides: str) -> httpx.Response:
            return await call(client, order_request(merchant, out_trade_no, **overrides))

        assert error_of(await send("L-1", money="0.49")) == (
            704,
            "Amount cannot be less than 0.01 yuan",
            "money must be at least 0.50",
        )
        assert error_of(await send("L-2", money="0.001"))[:2] == (704, "Amount cannot be less than 0.01 yuan")
        assert error_of(await send("L-3", money="5000.01")) == (
            700,
            "Missing parameters",
            "money must be at most 5000.00",
        )
        for field in ("notify_url", "return_url"):
            for url in ("http://127.0.0.1/x", "http://localhost:8080/x", "http://10.0.0.1/x"):
                code, _, detail = error_of(await send("L-4", **{field: url}))
                assert code == 700 and detail is not None and detail.startswith(f"{field} must be")
        answer = success_of(await send("L-5", money="5000"))
        assert answer["payurl"] == f"https://pay.example.com{cashier_path(answer['trade_no'])}"
        assert answer["qrcode"] == f"https://pay.example.com{sandbox_path(answer['trade_no'])}"
        assert success_of(await send("L-6", money="0.50"))["money"] == "0.50"


# --- 901: no channel ----------------------------------------------------------------------------


@pytest.mark.parametrize("pay_type", ["bank", "WXPAY", "Alipay", "jdpay", "wechat", "1"])
async def test_type_outside_the_seeds_three(server, merchant, gateway, pay_type):
    async with server.client() as client:
        response = await call(client, order_request(merchant, "T-1", type=pay_type))
    assert error_of(response) == (
        901,
        "No available channel, please check",
        "type must be one of alipay, qqpay, wxpay",
    )
    assert await order_count(gateway, merchant.pid) == 0


async def test_no_channel_at_all_is_901_and_the_number_stays_free(channelless_server, server, merchant, gateway):
    params = order_request(merchant, "NC-1", type="qqpay")
    async with httpx.AsyncClient(base_url=channelless_server.url, timeout=10) as client:
        code, msg, detail = error_of(await call(client, params))
        assert (code, msg) == (901, "No available channel, please check")
        assert detail == "no channel serves qqpay at the moment"
        assert code_of(await call(client, params, "GET")) == 901
    assert await order_count(gateway, merchant.pid) == 0
    # The same order number works once a channel serves the type.
    async with server.client() as client:
        assert success_of(await call(client, params))["out_trade_no"] == "NC-1"


# --- 702 / 703: the channel refuses -------------------------------------------------------------


async def test_paused_channel_is_702_and_the_number_stays_free(server, merchant, gateway):
    async with server.client() as client:
        response = await call(client, order_request(merchant, "CH-1", money="7.02"))
        assert error_of(response) == (702, "Channel is under maintenance, please try again later", None)
        assert await order_count(gateway, merchant.pid) == 0
        assert code_of(await call(client, order_request(merchant, "CH-1", money="7.02"), "GET")) == 702
        answer = success_of(await call(client, order_request(merchant, "CH-1", money="7.00")))
    assert (answer["out_trade_no"], answer["money"]) == ("CH-1", "7.00")
    assert [order.money for order in await orders_of(gateway, merchant.pid)] == ["7.00"]


async def test_no_code_for_the_amount_is_703_and_another_amount_may_follow(server, merchant, gateway):
    async with server.client() as client:
        response = await call(client, order_request(merchant, "CH-2", money="7.03", ext="first"))
        assert error_of(response) == (
            703,
            "No payment code matched for the corresponding amount, please change the amount and try again",
            None,
        )
        assert await order_count(gateway, merchant.pid) == 0
        answer = success_of(await call(client, order_request(merchant, "CH-2", money="7.04", ext="second")))
    assert answer["money"] == "7.04"
    [order] = await orders_of(gateway, merchant.pid)
    assert (order.trade_no, order.money, order.param) == (answer["trade_no"], "7.04", "second")


# --- 705: any reuse of an out_trade_no ------------------------------------------------------------


async def test_identical_repeat_of_an_unpaid_order_is_a_duplicate(server, merchant, gateway):
    params = order_request(merchant, "R-1")
    async with server.client() as client:
        first = success_of(await call(client, params))
        assert error_of(await call(client, params)) == (
            705,
            "Duplicate order number",
            "out_trade_no was already used; every order needs a new one",
        )
        assert code_of(await call(client, params, "GET")) == 705
    [order] = await orders_of(gateway, merchant.pid)
    assert (order.trade_no, order.status) == (first["trade_no"], "paying")


@pytest.mark.parametrize(
    "change",
    [{"money": "2.00"}, {"name": "Other"}, {"type": "qqpay"}, {"ext": "x"}, {"notify_url": f"{SHOP}/n2"}],
    ids=["money", "name", "type", "ext", "notify_url"],
)
async def test_repeat_with_other_terms_is_a_duplicate(server, merchant, gateway, change):
    async with server.client() as client:
        success_of(await call(client, order_request(merchant, "R-2")))
        assert code_of(await call(client, order_request(merchant, "R-2", **change))) == 705
    assert await order_count(gateway, merchant.pid) == 1


async def test_repeat_of_a_paid_order_is_a_duplicate(server, merchant):
    params = order_request(merchant, "R-3")
    async with server.client() as client:
        trade_no = success_of(await call(client, params))["trade_no"]
        assert (await client.post(sandbox_path(trade_no))).status_code == 303
        assert code_of(await call(client, params)) == 705
        assert code_of(await call(client, order_request(merchant, "R-3", money="5.00"))) == 705


async def test_number_used_in_the_epay_dialect_is_a_duplicate(server, merchant, gateway):
    epay = epay_signed(order_params(merchant.pid, SHOP, "R-4", clientip="203.0.113.9"), merchant.key)
    async with server.client() as client:
        assert (await client.post("/mapi.php", data=epay)).json()["code"] == 1
        assert code_of(await call(client, order_request(merchant, "R-4"))) == 705
    [order] = await orders_of(gateway, merchant.pid)
    assert order.dialect == "epay"


async def test_another_merchant_may_use_the_same_number(server, merchant, gateway):
    other = await gateway.merchants.create("Other Shop")
    async with server.client() as client:
        first = success_of(await call(client, order_request(merchant, "R-5")))
        second = success_of(await call(client, order_request(other, "R-5")))
    assert first["trade_no"] != second["trade_no"]


async def test_concurrent_identical_requests_make_one_order(server, merchant, gateway):
    params = order_request(merchant, "R-6")
    async with server.client() as client:
        responses = await asyncio.gather(*(call(client, params) for _ in range(8)))
    [created] = [success_of(response) for response in responses if response.json()["code"] == 200]
    assert sorted(code_of(response) for response in responses if response.json()["code"] != 200) == [705] * 7
    [order] = await orders_of(gateway, merchant.pid)
    assert order.trade_no == created["trade_no"]


# --- The order of the checks --------------------------------------------------------------------


async def test_checks_come_in_the_dialects_order(server, merchant):
    async with server.client() as client:

        async def first_error(params: dict[str, str]) -> int:
            return code_of(await call(client, params))

        # 700 (missing) before 800: an unknown merchant missing a field.
        assert await first_error(signed(pay_params(99999, SHOP, "C-1", name=""), merchant.key)) == 700
        # 800 before 701: an unknown merchant with a bad signature.
        assert await first_error({**pay_params(99999, SHOP, "C-1"), "sign": "0" * 32}) == 800
        # 701 before 704: an amount of zero, wrongly signed.
        assert await first_error({**pay_params(merchant.pid, SHOP, "C-1", money="0"), "sign": "0" * 32}) == 701
        # 704 before 700 (malformed): an amount of zero with a bad notify_url.
        assert await first_error(order_request(merchant, "C-1", money="0", notify_url="ftp://x/")) == 704
        # 700 (malformed) before 901: an unknown type with a bad order number.
        assert await first_error(order_request(merchant, "C 1", type="bank")) == 700
        # 901 before 705: an unknown type for a number already used.
        success_of(await call(client, order_request(merchant, "C-2")))
        assert await first_error(order_request(merchant, "C-2", type="bank")) == 901
        # 705 before the channel: a used number with the paused amount.
        assert await first_error(order_request(merchant, "C-2", money="7.02")) == 705
