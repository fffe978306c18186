"""The signature checker against the seeds' worked vectors, each pasted the ways merchants paste them."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote, urlencode

import pytest

from openepay.protocols.epay.signing import make_sign
from openepay.protocols.inspect import UnreadableInput, check_signature, parse_pasted
from tests.support.epay import SDK_KEY, VECTOR_A, VECTOR_B, VECTOR_D
from tests.support.payfor import SEED_B, TOKEN
from tests.support.vmq import VECTOR_KEY

A_SIGNED = {**VECTOR_A, "sign": "4a0d8e5a6499e5de11878b87fa9ac8ba"}
B_SIGNED = {**VECTOR_B, "sign": "5532db78aeeb14a1bc7bf293b1518c62", "sign_type": "MD5"}
VMQ_CREATE = {"payId": "A20240101001", "param": "uid=42", "type": "1", "price": "9.90"}
VMQ_SIGN = "cf8e422f418ab014b2832bdc1d6df0b2"


@pytest.mark.parametrize("dialect", ["epay", "pay_mapi", "epay_v2"])
def test_a_correct_epay_request_matches_and_the_key_is_masked(dialect):
    result = check_signature(dialect, urlencode(A_SIGNED), "123456")
    assert result.matches and result.hints == ()
    assert result.expected == result.received == "4a0d8e5a6499e5de11878b87fa9ac8ba"
    assert result.canonical == (
        "clientip=192.168.1.100&device=pc&money=1.00&name=VIP会员&notify_url=https://www.pay.com/notify_url.php"
        "&out_trade_no=20160806151343349&pid=1001&return_url=https://www.pay.com/return_url.php&type=alipay****"
    )
    assert "123456" not in result.canonical
    assert result.params["name"] == "VIP会员"


def test_a_whole_url_json_and_a_form_a_field_a_line_read_the_same():
    query = urlencode(B_SIGNED)
    for text in (
        f"https://pay.example.com/submit.php?{query}#top",
        json.dumps(B_SIGNED, ensure_ascii=False),
        "\n".join(f"{k}={quote(v)}" for k, v in B_SIGNED.items()),
    ):
        result = check_signature("epay", text, SDK_KEY)
        assert result.matches, text
        assert result.params == B_SIGNED


def test_upper_case_hex_matches_as_the_gateway_accepts_it():
    assert check_signature("epay", urlencode({**A_SIGNED, "sign": A_SIGNED["sign"].upper()}), "123456").matches


def test_a_wrong_key_is_refused_with_the_unexplained_hint():
    result = check_signature("epay", urlencode(A_SIGNED), "654321")
    assert not result.matches
    assert [hint.code for hint in result.hints] == ["unexplained"]
    assert result.received == "4a0d8e5a6499e5de11878b87fa9ac8ba" != result.expected


def test_empty_values_signed_are_named():
    # A client that signed param= (empty) and sign_type left out: a common hand-written SDK.
    content = "clientip=192.168.1.100&device=pc&money=1.00&name=VIP会员&notify_url=https://www.pay.com/notify_url.php"
    content += "&out_trade_no=20160806151343349&param=&pid=1001&return_url=https://www.pay.com/return_url.php"
    content += "&type=alipay"
    sign = hashlib.md5((content + "123456").encode()).hexdigest()
    result = check_signature("epay", urlencode({**VECTOR_A, "sign": sign}), "123456")
    assert [hint.code for hint in result.hints] == ["empty_included"]
    assert "empty values take no part" in result.hints[0].en


def test_sign_type_signed_is_named():
    params = dict(VECTOR_B, sign_type="MD5")
    content = "&".join(f"{k}={params[k]}" for k in sorted(params))
    result = check_signature(
        "epay", urlencode({**params, "sign": hashlib.md5((content + SDK_KEY).encode()).hexdigest()}), SDK_KEY
    )
    assert [hint.code for hint in result.hints] == ["sign_type_included"]


def test_values_decoded_twice_are_named():
    # VECTOR_D's param holds "uid=42&plan=pro"; a client that decoded "%2525" twice signed "%" where "%25" came.
    params = {**VECTOR_D, "name": "100%25 off"}
    key = "abcdefghijklmnopqrstuvwxyz012345"
    twice = make_sign({**params, "name": "100% off"}, key)
    result = check_signature("epay", urlencode({**params, "sign": twice}), key)
    assert not result.matches
    assert [hint.code for hint in result.hints] == ["decoded_twice"]


def test_mixed_case_and_missing_signatures_are_named():
    mixed = "4A0d8e5a6499e5de11878b87fa9ac8ba"
    assert check_signature("epay", urlencode({**A_SIGNED, "sign": mixed}), "123456").hints[0].code == "mixed_case"
    assert check_signature("epay", urlencode(VECTOR_A), "123456").hints[0].code == "no_sign"


def test_vmq_create_order_vector_and_the_price_spelling_trap():
    result = check_signature("vmq", urlencode({**VMQ_CREATE, "sign": VMQ_SIGN}), VECTOR_KEY)
    assert result.matches and result.message == "create_order"
    assert result.canonical == "A20240101001uid=4219.90****"
    result = check_signature("vmq", urlencode({**VMQ_CREATE, "price": "9.9", "sign": VMQ_SIGN}), VECTOR_KEY)
    assert not result.matches
    assert [hint.code for hint in result.hints] == ["price_spelling"]


def test_payfor_request_key_and_notification_vectors():
    result = check_signature("payfor", urlencode({**SEED_B, "key": "9136f370a034c94ffb0b847ce9d0ee68"}), TOKEN)
    assert result.matches and result.message == "request"
    assert result.canonical == (
        "https://shop.example.com/pay/notifyA20240101001VIP月卡9.90https://shop.example.com/pay/return****110001"
    )
    notification = {
        "order_id": "A20240101001",
        "price": "9.90",
        "code": "0000",
        "sign": "410830506edb7680b1801d3796fd805e",
    }
    result = check_signature("payfor", urlencode(notification), TOKEN)
    assert result.matches and result.message == "notification"
    assert result.canonical == "A20240101001" + "9.90****"
    result = check_signature("payfor", urlencode({**notification, "price": "9.9"}), TOKEN)
    assert [hint.code for hint in result.hints] == ["price_spelling"]


@pytest.mark.parametrize(
    ("dialect", "text", "code"),
    [
        ("epay", "   ", "empty"),
        ("epay", "{not json", "bad_json"),
        ("epay", "&&=x&", "no_params"),
        ("alipay", "a=1", "unknown_dialect"),
        ("epay", "a=1%00", "unreadable"),
    ],
)
def test_input_that_cannot_be_checked_says_why(dialect, text, code):
    with pytest.raises(UnreadableInput) as refused:
        check_signature(dialect, text, "k")
    assert refused.value.code == code


def test_an_amount_that_is_no_number_is_checked_without_guessing_other_spellings():
    result = check_signature("vmq", urlencode({**VMQ_CREATE, "price": "9.9.9", "sign": VMQ_SIGN}), VECTOR_KEY)
    assert [hint.code for hint in result.hints] == ["unexplained"]


def test_json_numbers_and_booleans_read_as_php_prints_them():
    assert parse_pasted('{"pid": 1001, "ok": true, "no": false, "list": [1]}') == {"pid": "1001", "ok": "1", "no": ""}
