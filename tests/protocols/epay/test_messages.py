"""The epay V1 notification and return URL, byte for byte as Rainbow builds them (§2.3, §4 of the notes)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from openepay.core.states import OrderStatus
from openepay.db.models import Order
from openepay.protocols.epay.messages import EpayMessages, notification_params
from tests.support.epay import SDK_KEY
from tests.support.merchant import plugin_sign
from tests.support.orders import unsaved_order

VECTOR_C_QUERY = (
    "pid=1000&trade_no=2024010112000012345&out_trade_no=20240101120000123&type=alipay"
    "&name=VIP%E4%BC%9A%E5%91%98&money=1&trade_status=TRADE_SUCCESS"
    "&sign=938faa791ba1807eb3dd260f0d6ac1fc&sign_type=MD5"
)
RAINBOW_ORDER = ["pid", "trade_no", "out_trade_no", "type", "name", "money", "trade_status"]


def vector_c_order(**overrides: object) -> Order:
    return unsaved_order("epay", **overrides)


async def query_of(order: Order, key: str = SDK_KEY) -> str:
    url = (await EpayMessages().notification(order, key)).url
    return urlsplit(url).query


async def test_vector_c_notification_is_rainbows_exactly():
    order = vector_c_order()
    params = notification_params(order, SDK_KEY)
    assert list(params.items()) == [
        ("pid", "1000"),
        ("trade_no", "2024010112000012345"),
        ("out_trade_no", "20240101120000123"),
        ("type", "alipay"),
        ("name", "VIP会员"),
        ("money", "1"),
        ("trade_status", "TRADE_SUCCESS"),
        ("sign", "938faa791ba1807eb3dd260f0d6ac1fc"),
        ("sign_type", "MD5"),
    ]
    message = await EpayMessages().notification(order, SDK_KEY)
    assert message.method == "GET"
    assert message.form is None
    assert message.url == "http://127.0.0.1/SDK/notify_url.php?" + VECTOR_C_QUERY


async def test_vector_c_return_url_carries_the_same_signed_parameters():
    assert await EpayMessages().return_url(vector_c_order(), SDK_KEY) == (
        "http://127.0.0.1/SDK/return_url.php?" + VECTOR_C_QUERY
    )


async def test_no_return_url_means_no_redirect():
    assert await EpayMessages().return_url(vector_c_order(return_url=None), SDK_KEY) is None
    assert await EpayMessages().return_url(vector_c_order(return_url=""), SDK_KEY) is None


async def test_param_comes_after_trade_status_and_is_echoed_verbatim():
    order = vector_c_order(pay_type="wxpay", money="10.50", param="order=42&note=hi there")
    params = notification_params(order, SDK_KEY)
    assert list(params) == [*RAINBOW_ORDER, "param", "sign", "sign_type"]
    assert params["param"] == "order=42&note=hi there"
    assert params["money"] == "10.50"
    expected_sign = plugin_sign(params, SDK_KEY)
    assert params["sign"] == expected_sign
    assert await query_of(order) == (
        "pid=1000&trade_no=2024010112000012345&out_trade_no=20240101120000123&type=wxpay"
        "&name=VIP%E4%BC%9A%E5%91%98&money=10.50&trade_status=TRADE_SUCCESS"
        f"&param=order%3D42%26note%3Dhi+there&sign={expected_sign}&sign_type=MD5"
    )


async def test_http_build_query_encoding_space_as_plus_and_reserved_characters_escaped():
    order = vector_c_order(name="Pro Plan 1+1 月卡/季卡?", param='{"uid": 42, "p": "a&b=c"}')
    query = await query_of(order)
    assert "&name=Pro+Plan+1%2B1+%E6%9C%88%E5%8D%A1%2F%E5%AD%A3%E5%8D%A1%3F&" in query
    assert "&param=%7B%22uid%22%3A+42%2C+%22p%22%3A+%22a%26b%3Dc%22%7D&" in query
    decoded = dict(parse_qsl(query, keep_blank_values=True))
    assert decoded["name"] == "Pro Plan 1+1 月卡/季卡?"
    assert decoded["param"] == '{"uid": 42, "p": "a&b=c"}'
    assert plugin_sign(decoded, SDK_KEY) == decoded["sign"]


@pytest.mark.parametrize("param", [None, "", "0"])
async def test_param_is_left_out_when_php_empty_says_so(param):
    order = vector_c_order(param=param)
    assert list(notification_params(order, SDK_KEY)) == [*RAINBOW_ORDER, "sign", "sign_type"]
    assert await query_of(order) == VECTOR_C_QUERY


@pytest.mark.parametrize("param", ["00", "0.0", "false", "null"])
def test_param_that_php_empty_does_not_drop_is_sent(param):
    params = notification_params(vector_c_order(param=param), SDK_KEY)
    assert params["param"] == param
    assert params["sign"] == plugin_sign(params, SDK_KEY)


@pytest.mark.parametrize("money", ["1.00", "0.01", "12.5", "100", "99.99"])
async def test_money_is_the_merchants_own_string(money):
    params = dict(parse_qsl(await query_of(vector_c_order(money=money))))
    assert params["money"] == money
    assert params["sign"] == plugin_sign(params, SDK_KEY)


def test_money_1_00_gives_the_reference_signature_for_that_rendering():
    # §2.3: "Same notification with money=1.00 would be 6cc4958bfd8068fd2ba8a308f1df3075".
    assert notification_params(vector_c_order(money="1.00"), SDK_KEY)["sign"] == "6cc4958bfd8068fd2ba8a308f1df3075"


@pytest.mark.parametrize(
    ("money", "sign"),
    [
        ("10.5", "429d8ab93b529bfef18bef9fb2855306"),
        ("0.01", "050623c16d9371ebc2498b0b508746a4"),
        ("100.1", "6ea3dcff6874203583e30545b4ba7dd4"),
        ("99.99", "1012324451739f6751dbe3ece53f4565"),
    ],
)
def test_reference_float_renderings(money, sign):
    assert notification_params(vector_c_order(money=money), SDK_KEY)["sign"] == sign


@pytest.mark.parametrize(
    ("notify_url", "expected"),
    [
        ("https://shop.example.com/notify?x=1", "https://shop.example.com/notify?x=1&" + VECTOR_C_QUERY),
        ("https://shop.example.com/notify?", "https://shop.example.com/notify?" + VECTOR_C_QUERY),
        ("https://shop.example.com/notify?x=1&", "https://shop.example.com/notify?x=1&" + VECTOR_C_QUERY),
        ("https://shop.example.com/notify#top", "https://shop.example.com/notify?" + VECTOR_C_QUERY + "#top"),
        (
            "https://shop.example.com/?a=1#/payment?trade_no=9",
            "https://shop.example.com/?a=1&" + VECTOR_C_QUERY + "#/payment?trade_no=9",
        ),
        (
            "https://shop.example.com/notify.php?route=epay/notify&lang=zh",
            "https://shop.example.com/notify.php?route=epay/notify&lang=zh&" + VECTOR_C_QUERY,
        ),
    ],
)
async def test_notify_url_with_its_own_query_string_or_fragment(notify_url, expected):
    assert (await EpayMessages().notification(vector_c_order(notify_url=notify_url), SDK_KEY)).url == expected


async def test_the_merchants_own_query_parameters_reach_them_but_do_not_change_the_signature():
    order = vector_c_order(notify_url="https://s.example/n?x=1&route=epay")
    pairs = parse_qsl(urlsplit((await EpayMessages().notification(order, SDK_KEY)).url).query)
    assert pairs[:2] == [("x", "1"), ("route", "epay")]
    assert dict(pairs[2:])["sign"] == "938faa791ba1807eb3dd260f0d6ac1fc"


def test_the_signature_is_made_with_the_key_it_is_given():
    rotated = "n3wK3yN3wK3yN3wK3yN3wK3yN3wK3yN3"
    params = notification_params(vector_c_order(), rotated)
    assert params["sign"] == plugin_sign(params, rotated)
    assert params["sign"] != "938faa791ba1807eb3dd260f0d6ac1fc"


@pytest.mark.parametrize("status", [OrderStatus.CREATED, OrderStatus.PAYING, OrderStatus.CLOSED])
async def test_an_unpaid_order_is_never_signed_as_a_success(status):
    order = vector_c_order(status=status)
    with pytest.raises(ValueError, match="only paid orders are notified"):
        notification_params(order, SDK_KEY)
    with pytest.raises(ValueError):
        await EpayMessages().notification(order, SDK_KEY)
    with pytest.raises(ValueError):
        await EpayMessages().return_url(order, SDK_KEY)


@pytest.mark.parametrize("status", [OrderStatus.PARTIALLY_REFUNDED, OrderStatus.REFUNDED])
async def test_a_paid_then_refunded_order_is_still_notified_as_paid(status):
    assert await query_of(vector_c_order(status=status)) == VECTOR_C_QUERY


@pytest.mark.parametrize(
    "body",
    [
        b"success",
        b"SUCCESS",
        b"Success",
        '{"state":"success","msg":"支付成功"}'.encode(),
        b"<html><body>ok: success</body></html>",
        b"\r\nsuccess\r\n",
    ],
)
def test_any_body_containing_success_acknowledges(body):
    assert EpayMessages().acknowledged(body) is True


@pytest.mark.parametrize("body", [b"", b"fail", b"sUccess", b"SUCCES", b"succ", b"ok", b"s u c c e s s"])
def test_other_bodies_do_not_acknowledge(body):
    assert EpayMessages().acknowledged(body) is False
