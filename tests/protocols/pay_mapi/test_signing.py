"""The dialect's signature vectors: the seed's own example and §7.5 of the personal-code notes.

Each vector is checked three ways: the string and MD5 a merchant computes (the independent
implementation in ``support``), our signing code, and the endpoint accepting or refusing it.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

from openepay.protocols.epay.signing import make_sign, sign_content, verify
from openepay.protocols.pay_mapi.messages import notification_params
from tests.support.database import merchant_with_key
from tests.support.pay_mapi import MAPI, error_of, notes_order, seed_content, seed_sign, success_of

SEED_KEY = "7a3b1053780db61ebd3d7123e1b8d6c4"
# The seed is a translation: its example's product name "Test Payment 20240125193935458" was
# "测试支付20240125193935458" in the original, and the printed sign is over that name.
SEED_PARAMS = {
    "pid": "152787",
    "type": "wxpay",
    "out_trade_no": "20240125193935458",
    "notify_url": "1",
    "return_url": "2",
    "name": "测试支付20240125193935458",
    "money": "0.1",
}
SEED_STRING = (
    "money=0.1&name=测试支付20240125193935458&notify_url=1&out_trade_no=20240125193935458"
    "&pid=152787&return_url=2&type=wxpay"
)
SEED_SIGN = "5af4287ea6c3ab4505e9dc8d2e3a148c"

NOTES_KEY = "epaykey123"
NOTES_REQUEST = {
    "pid": "1001",
    "type": "wxpay",
    "out_trade_no": "A20240101001",
    "notify_url": "https://shop.example.com/pay/notify",
    "return_url": "https://shop.example.com/pay/return",
    "name": "VIP",
    "money": "9.90",
    "sitename": "",
    "ext": "uid=42",
    "sign_type": "MD5",
}
NOTES_REQUEST_STRING = (
    "ext=uid=42&money=9.90&name=VIP&notify_url=https://shop.example.com/pay/notify&out_trade_no=A20240101001"
    "&pid=1001&return_url=https://shop.example.com/pay/return&type=wxpay"
)
NOTES_REQUEST_SIGN = "925e9bfc39e6df6bde34b93846a7cd6d"
NOTES_NOTIFY_STRING = (
    "money=9.90&name=VIP&out_trade_no=A20240101001&pid=1001&trade_no=2024010112000012345"
    "&trade_status=TRADE_SUCCESS&type=wxpay"
)
NOTES_NOTIFY_SIGN = "32c083d0e3c7bcc53678a4efae88e034"
CLASSIC_NOTIFY_FIELDS = ("pid", "trade_no", "out_trade_no", "type", "name", "money", "trade_status")


def test_seed_example_as_a_merchant_computes_it():
    assert seed_content(SEED_PARAMS) == SEED_STRING
    assert seed_sign(SEED_PARAMS, SEED_KEY) == SEED_SIGN
    assert hashlib.md5((SEED_STRING + SEED_KEY).encode()).hexdigest() == SEED_SIGN


def test_seed_example_with_our_signing():
    assert sign_content(SEED_PARAMS) == SEED_STRING
    assert make_sign(SEED_PARAMS, SEED_KEY) == SEED_SIGN
    assert verify({**SEED_PARAMS, "sign": SEED_SIGN, "sign_type": "MD5"}, SEED_KEY)
    assert verify({**SEED_PARAMS, "sign": SEED_SIGN.upper(), "sign_type": "MD5"}, SEED_KEY)
    assert not verify({**SEED_PARAMS, "money": "0.10", "sign": SEED_SIGN}, SEED_KEY)


def test_notes_request_vector():
    assert seed_content(NOTES_REQUEST) == NOTES_REQUEST_STRING
    assert seed_sign(NOTES_REQUEST, NOTES_KEY) == NOTES_REQUEST_SIGN
    assert make_sign(NOTES_REQUEST, NOTES_KEY) == NOTES_REQUEST_SIGN


async def test_seed_example_passes_the_signature_check_at_the_endpoint(server, gateway):
    """The seed's URLs ("1", "2") are no URLs: the request is signed right, and refused for its notify_url."""
    await merchant_with_key(gateway, 152787, SEED_KEY)
    async with server.client() as client:
        for sign in (SEED_SIGN, SEED_SIGN.upper()):
            response = await client.post(MAPI, data={**SEED_PARAMS, "sign": sign, "sign_type": "MD5"})
            code, _, detail = error_of(response)
            assert code == 700
            assert detail is not None and detail.startswith("notify_url ")
        tampered = await client.post(MAPI, data={**SEED_PARAMS, "money": "0.2", "sign": SEED_SIGN})
        assert error_of(tampered)[0] == 701
        translated = {**SEED_PARAMS, "name": "Test Payment 20240125193935458"}
        assert error_of(await client.post(MAPI, data={**translated, "sign": SEED_SIGN}))[0] == 701
        # The same request with real URLs, signed by the merchant, is an order.
        real = {**SEED_PARAMS, "notify_url": "https://shop.example.com/n", "return_url": "https://shop.example.com/r"}
        answer = success_of(await client.post(MAPI, data={**real, "sign": seed_sign(real, SEED_KEY)}))
    assert (answer["money"], answer["out_trade_no"], answer["type"]) == ("0.10", "20240125193935458", "wxpay")


async def test_notes_request_vector_creates_the_order(server, gateway):
    await merchant_with_key(gateway, 1001, NOTES_KEY)
    async with server.client() as client:
        body = urlencode({**NOTES_REQUEST, "sign": NOTES_REQUEST_SIGN})
        response = await client.post(MAPI, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
        answer = success_of(response)
        # sign_type is not signed, so its case does not matter; an upper-case sign is the same sign.
        again = {**NOTES_REQUEST, "out_trade_no": "A20240101002", "sign_type": "md5"}
        success_of(await client.get(MAPI, params={**again, "sign": seed_sign(again, NOTES_KEY).upper()}))
    assert (answer["money"], answer["out_trade_no"]) == ("9.90", "A20240101001")


def test_notes_notify_vector_is_the_classic_part_of_our_notification():
    params = notification_params(notes_order(), NOTES_KEY)
    classic = {name: params[name] for name in CLASSIC_NOTIFY_FIELDS}
    assert seed_content(classic) == NOTES_NOTIFY_STRING
    assert seed_sign(classic, NOTES_KEY) == NOTES_NOTIFY_SIGN
    # The whole notification adds realmoney, and the signature covers it too.
    assert set(params) == {*CLASSIC_NOTIFY_FIELDS, "realmoney", "sign", "sign_type"}
    assert params["realmoney"] == "9.90"
    assert params["sign"] == seed_sign(params, NOTES_KEY) != NOTES_NOTIFY_SIGN
    with_ext = notification_params(notes_order(param="uid=42"), NOTES_KEY)
    assert with_ext["ext"] == "uid=42"
    assert with_ext["sign"] == seed_sign(with_ext, NOTES_KEY)
