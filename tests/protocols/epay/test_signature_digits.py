"""Every hex digit of an epay V1 signature counts: one wrong only at its end is refused like any other.

A compare that looked at a prefix of the digest (the first 16 hex digits, say) would accept
signatures a forger can find by brute force; these requests differ from a valid one only in
the digits such a compare would skip. The ``/pay/`` dialect signs the same way and is held to it.
"""

from __future__ import annotations

import pytest

from openepay.protocols.epay.signing import make_sign, verify
from tests.support.answers import json_answer
from tests.support.database import order_count
from tests.support.epay import VECTOR_A, order_params, signed

SHOP = "https://shop.example.com"
V1_REFUSAL = {"code": -1, "msg": "签名校验失败，请返回重试！"}


def wrong_at_the_end(sign: str, digits: int) -> str:
    """The signature with its last ``digits`` hex digits each changed, in the signature's own case."""
    changed = "".join(format((int(digit, 16) + 1) % 16, "x") for digit in sign[-digits:])
    return sign[:-digits] + (changed.upper() if sign.isupper() else changed)


@pytest.mark.parametrize("digits", [1, 2, 8, 16])
@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_a_signature_wrong_only_in_its_last_digits_is_refused(digits, case):
    sign = case(make_sign(VECTOR_A, "123456"))
    assert verify({**VECTOR_A, "sign": sign}, "123456")
    assert not verify({**VECTOR_A, "sign": wrong_at_the_end(sign, digits)}, "123456")


@pytest.mark.parametrize("digits", [1, 16])
def test_a_signature_over_blank_values_left_out_is_refused_when_wrong_only_at_the_end(digits):
    """The second reading (whitespace-only values unsigned, as Rainbow's 2025 builds do) is just as strict."""
    params = {**VECTOR_A, "param": "  "}
    lenient = make_sign({**params, "param": ""}, "123456")
    assert verify({**params, "sign": lenient}, "123456")
    assert not verify({**params, "sign": wrong_at_the_end(lenient, digits)}, "123456")


def test_a_signature_cut_short_or_padded_is_refused():
    sign = make_sign(VECTOR_A, "123456")
    for wrong in (sign[:16], sign[:31], sign + "0", sign[:16] + " " * 16):
        assert not verify({**VECTOR_A, "sign": wrong}, "123456"), wrong


@pytest.mark.parametrize("digits", [1, 16])
async def test_mapi_refuses_an_order_whose_signature_is_wrong_only_at_the_end(server, merchant, gateway, digits):
    params = signed(order_params(merchant.pid, SHOP, f"END-{digits}", clientip="203.0.113.9"), merchant.key)
    async with server.client() as client:
        refused = await client.post("/mapi.php", data={**params, "sign": wrong_at_the_end(params["sign"], digits)})
        assert json_answer(refused) == V1_REFUSAL
        assert await order_count(gateway, merchant.pid) == 0
        assert json_answer(await client.post("/mapi.php", data=params))["code"] == 1
    assert await order_count(gateway, merchant.pid) == 1


@pytest.mark.parametrize("digits", [1, 16])
async def test_the_pay_dialect_refuses_an_order_whose_signature_is_wrong_only_at_the_end(
    server, merchant, gateway, digits
):
    params = signed(order_params(merchant.pid, SHOP, f"PAY-END-{digits}", type="wxpay"), merchant.key)
    async with server.client() as client:
        refused = await client.post("/pay/mapi.php", data={**params, "sign": wrong_at_the_end(params["sign"], digits)})
        assert json_answer(refused) == {"code": 701, "msg": "Signature verification failed"}
        assert await order_count(gateway, merchant.pid) == 0
        assert json_answer(await client.post("/pay/mapi.php", data=params))["code"] == 200
    assert await order_count(gateway, merchant.pid) == 1


@pytest.mark.parametrize("digits", [1, 16])
async def test_the_merchant_api_refuses_a_query_signed_wrong_only_at_the_end(server, merchant, digits):
    params = signed({"act": "query", "pid": str(merchant.pid)}, merchant.key)
    async with server.client() as client:
        forged = {**params, "sign": wrong_at_the_end(params["sign"], digits)}
        assert json_answer(await client.get("/api.php", params=forged)) == {"code": -3, "msg": "商户密钥错误"}
        assert json_answer(await client.get("/api.php", params=params))["code"] == 1
