"""The reference vectors A to F of the epay notes, computed by Rainbow under PHP 8.2."""

import pytest

from openepay.protocols.epay.signing import make_sign, sign_content, signed_content, verify
from tests.support.epay import SDK_KEY, VECTOR_A, VECTOR_B, VECTOR_D, VECTOR_E

VECTOR_C = {
    "pid": "1000",
    "trade_no": "2024010112000012345",
    "out_trade_no": "20240101120000123",
    "type": "alipay",
    "name": "VIP会员",
    "money": "1",
    "trade_status": "TRADE_SUCCESS",
}


def test_vector_a_mapi_request():
    assert sign_content(VECTOR_A) == (
        "clientip=192.168.1.100&device=pc&money=1.00&name=VIP会员"
        "&notify_url=https://www.pay.com/notify_url.php&out_trade_no=20160806151343349&pid=1001"
        "&return_url=https://www.pay.com/return_url.php&type=alipay"
    )
    assert make_sign(VECTOR_A, "123456") == "4a0d8e5a6499e5de11878b87fa9ac8ba"


def test_vector_b_submit_request_with_sdk_sample_merchant():
    assert make_sign(VECTOR_B, SDK_KEY) == "5532db78aeeb14a1bc7bf293b1518c62"


@pytest.mark.parametrize(
    ("money", "sign"),
    [
        ("1", "938faa791ba1807eb3dd260f0d6ac1fc"),
        ("1.00", "6cc4958bfd8068fd2ba8a308f1df3075"),
        ("10.5", "429d8ab93b529bfef18bef9fb2855306"),
        ("0.01", "050623c16d9371ebc2498b0b508746a4"),
        ("100.1", "6ea3dcff6874203583e30545b4ba7dd4"),
        ("99.99", "1012324451739f6751dbe3ece53f4565"),
    ],
)
def test_vector_c_notification_money_renderings(money, sign):
    assert make_sign({**VECTOR_C, "money": money}, SDK_KEY) == sign


def test_vector_d_raw_values_are_signed_not_url_encoded():
    key = "abcdefghijklmnopqrstuvwxyz012345"
    assert make_sign(VECTOR_D, key) == "0d6a432c183171108efb548b8e5a860a"
    assert not verify({**VECTOR_D, "sign": "85f133b34003a73f9f311b9bca09b2c6"}, key)


def test_vector_e_zero_is_signed():
    assert make_sign(VECTOR_E, "key") == "f943f53d5313a9fee0a145cc461daf65"
    assert not verify({**VECTOR_E, "sign": "5a2943254f6226ae4a6ad861a8e09b24"}, "key")


def test_vector_f_escaped_param_as_rainbow_stores_it():
    params = {**VECTOR_C, "type": "wxpay", "money": "10.5", "param": "order=42&amp;note=hi there"}
    assert make_sign(params, SDK_KEY) == "04a871c4095a719cb64ec620ad7bd183"


def test_verify_accepts_upper_case_hex_and_rejects_tampering():
    signed = {**VECTOR_A, "sign": "4A0D8E5A6499E5DE11878B87FA9AC8BA"}
    assert verify(signed, "123456")
    assert not verify({**signed, "money": "1.01"}, "123456")
    assert not verify({**signed, "sign": ""}, "123456")
    assert not verify({k: v for k, v in signed.items() if k != "sign"}, "123456")
    assert not verify({**signed, "sign": "４a0d8e5a6499e5de11878b87fa9ac8ba"}, "123456")


def test_a_sign_in_mixed_case_is_refused():
    """Clients print a digest in one case; a mix of both is another spelling of the same signature."""
    assert verify({**VECTOR_A, "sign": "4a0d8e5a6499e5de11878b87fa9ac8ba"}, "123456")
    assert not verify({**VECTOR_A, "sign": "4A0d8e5a6499e5de11878b87fa9ac8ba"}, "123456")
    assert not verify({**VECTOR_A, "sign": "4a0d8e5a6499e5de11878b87fa9ac8bA"}, "123456")


def test_the_signed_content_is_what_the_sign_covers_however_the_request_is_spelled():
    params = {"pid": "1001", "money": "1"}
    sign = make_sign(params, "k")
    assert signed_content({**params, "sign": sign}, "k") == "money=1&pid=1001"
    assert signed_content({**params, "sign": sign.upper(), "sign_type": "x"}, "k") == "money=1&pid=1001"
    assert signed_content({**params, "sign": sign, "note": " "}, "k") == "money=1&pid=1001"
    assert signed_content({**params, "sign": sign, "money": "2"}, "k") is None


def test_sign_type_value_and_empty_values_do_not_matter():
    base = {k: v for k, v in VECTOR_A.items() if k not in ("param", "sign_type")}
    sign = make_sign(base, "123456")
    assert verify({**base, "sign": sign, "sign_type": "MD5"}, "123456")
    assert verify({**base, "sign": sign, "param": "", "extra": ""}, "123456")


def test_whitespace_only_values_verify_under_both_rainbow_generations():
    params = {"pid": "1001", "money": "1", "param": " "}
    old_style = make_sign(params, "k")
    new_style = make_sign({"pid": "1001", "money": "1"}, "k")
    assert old_style != new_style
    assert verify({**params, "sign": old_style}, "k")
    assert verify({**params, "sign": new_style}, "k")
