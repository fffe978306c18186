"""The value-concatenation keys against the worked vectors of the personal-code notes (§7.2, §7.3)."""

from __future__ import annotations

import hashlib

import pytest

from openepay.protocols.payfor.signing import (
    notify_sign,
    request_key,
    value_content,
    value_key,
    verify_request,
)
from tests.support.payfor import SEED_B, TOKEN, merchant_key

PAYSAPI = {
    "goodsname": "VIP",
    "istype": "1",
    "notify_url": "https://shop.example.com/pay/notify",
    "return_url": "https://shop.example.com/pay/return",
    "orderid": "A20240101001",
    "orderuid": "user42",
    "price": "9.90",
    "uid": "10001",
}


def test_seed_b_key_without_order_uid():
    assert value_content(SEED_B, TOKEN) == (
        "https://shop.example.com/pay/notifyA20240101001VIP月卡9.90https://shop.example.com/pay/returntok_abc123110001"
    )
    assert request_key(SEED_B, TOKEN) == "9136f370a034c94ffb0b847ce9d0ee68"


def test_seed_b_key_with_order_uid_sorts_it_between_order_name_and_price():
    params = {**SEED_B, "order_uid": "user42"}
    assert value_content(params, TOKEN) == (
        "https://shop.example.com/pay/notifyA20240101001VIP月卡user429.90"
        "https://shop.example.com/pay/returntok_abc123110001"
    )
    assert request_key(params, TOKEN) == "558c156ec78cebe25f07af0a31960019"


def test_notify_sign_and_the_price_formatting_trap():
    assert notify_sign("A20240101001", "9.90", TOKEN) == "410830506edb7680b1801d3796fd805e"
    assert notify_sign("A20240101001", "9.9", TOKEN) == "1edd0a699e4507ca624c3ad99b82f364"


def test_paysapi_vectors_through_the_shared_routine():
    assert value_key(PAYSAPI, TOKEN) == "93f9abd1600057f344c811521dd35c84"
    notify = {"orderid": "A20240101001", "orderuid": "user42", "paysapi_id": "PSA0001", "price": "9.90"}
    assert value_key({**notify, "realprice": "9.89"}, TOKEN) == "25a15ce3ccb0e7c1a9b351b9c0c2fd88"


def test_empty_values_are_left_out_and_the_key_itself_is_not_signed():
    params = {**SEED_B, "order_uid": "", "key": "9136f370a034c94ffb0b847ce9d0ee68"}
    assert request_key(params, TOKEN) == "9136f370a034c94ffb0b847ce9d0ee68"
    assert verify_request(params, TOKEN)


@pytest.mark.parametrize(
    "key",
    ["9136f370a034c94ffb0b847ce9d0ee68", "9136F370A034C94FFB0B847CE9D0EE68"],
    ids=["lower", "upper"],
)
def test_verify_accepts_either_case(key):
    assert verify_request({**SEED_B, "key": key}, TOKEN)


@pytest.mark.parametrize(
    "params",
    [
        {**SEED_B, "key": "9136f370a034c94ffb0b847ce9d0ee69"},
        {**SEED_B, "price": "9.9", "key": "9136f370a034c94ffb0b847ce9d0ee68"},
        {**SEED_B, "key": "９136f370a034c94ffb0b847ce9d0ee68"},
        {**SEED_B, "key": ""},
        SEED_B,
    ],
    ids=["one-digit-off", "price-reformatted", "non-ascii", "empty", "absent"],
)
def test_verify_refuses(params):
    assert not verify_request(params, TOKEN)


def test_format_is_accepted_signed_or_not():
    with_format = {**SEED_B, "format": "json"}
    assert verify_request({**with_format, "key": "9136f370a034c94ffb0b847ce9d0ee68"}, TOKEN)
    # A client that counted format among "all the parameters it sends" ("format" sorts first).
    content = "jsonhttps://shop.example.com/pay/notifyA20240101001VIP月卡9.90https://shop.example.com/pay/returntok_abc123110001"
    signed_with_format = hashlib.md5(content.encode()).hexdigest()
    assert signed_with_format == merchant_key(with_format, TOKEN)
    assert verify_request({**with_format, "key": signed_with_format}, TOKEN)
    assert not verify_request({**SEED_B, "key": signed_with_format}, TOKEN)
