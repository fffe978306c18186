"""A captured ``pay/refund`` request refunds once, however it is spelled when it is sent again.

Verification accepts a few spellings of one signature on purpose (MD5 hex in capitals, an RSA
sign whose ``+`` arrived as spaces, blank fields nobody signed); the replay check must see them
as the one request they are. Spellings no client writes are refused outright.
"""

from __future__ import annotations

import string
import time
from collections.abc import Callable

import pytest

from tests.support.epay import signed as md5_signed
from tests.support.epay_v2 import V2Merchant, api, paid

REPLAYED = {"code": -3, "msg": "请求重复，请勿重复提交"}
RSA_REFUSED = {"code": -3, "msg": "RSA签名校验失败"}
MD5_REFUSED = {"code": -3, "msg": "MD5签名校验失败"}
BASE64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"

Request = dict[str, str]


def _timestamps() -> list[int]:
    """Distinct, fresh timestamps, so that each request below is a new request."""
    now = int(time.time())
    return [now - age for age in range(0, 200)]


def rsa_refund(v2: V2Merchant, trade_no: str, timestamp: int) -> Request:
    return v2.request({"trade_no": trade_no, "money": "0.01"}, timestamp=timestamp)


def md5_refund(v2: V2Merchant, trade_no: str, timestamp: int) -> Request:
    fields = {"pid": str(v2.pid), "timestamp": str(timestamp), "trade_no": trade_no, "money": "0.01"}
    return md5_signed(fields, v2.key)


def with_plus_in_sign(make: Callable[[int], Request], timestamps: list[int]) -> Request:
    """A request whose base64 signature has a ``+`` in it (almost every one does)."""
    return next(request for request in map(make, timestamps) if "+" in request["sign"])


def unused_bits_set(sign: str) -> str:
    """The same bytes: a 256-byte signature ends ``X==``, and X's last four bits are not used."""
    assert sign.endswith("==") and not sign.endswith("===")
    flipped = BASE64_ALPHABET[BASE64_ALPHABET.index(sign[-3]) ^ 1]
    return sign[:-3] + flipped + "=="


# Spellings of one RSA signature that lenient base64 decoders read as the same bytes.
NON_CANONICAL_RSA = {
    "trailing newline": lambda sign: sign + "\n",
    "CRLF line breaks every 64": lambda sign: "\r\n".join(sign[i : i + 64] for i in range(0, len(sign), 64)),
    "a stray !": lambda sign: sign + "!",
    "a stray . inside": lambda sign: sign[:10] + "." + sign[10:],
    "padding dropped": lambda sign: sign.rstrip("="),
    "text after the padding": lambda sign: sign + "QUJD",
    "unused bits set": unused_bits_set,
    "URL-safe alphabet": lambda sign: sign.replace("+", "-").replace("/", "_"),
}


async def post(client, request: Request) -> dict:  # type: ignore[no-untyped-def]
    return (await client.post("/api/pay/refund", data=request)).json()


async def refunded(client, v2: V2Merchant, trade_no: str) -> str:  # type: ignore[no-untyped-def]
    return (await api(client, v2, "pay/query", trade_no=trade_no)).get("refundmoney", "0.00")


@pytest.mark.parametrize("respell", NON_CANONICAL_RSA.values(), ids=NON_CANONICAL_RSA.keys())
async def test_an_rsa_sign_in_a_spelling_no_client_writes_is_refused(server, v2, respell):
    async with server.client() as client:
        trade_no = await paid(client, v2, "RSA-SPELL", money="1.00")
        request = with_plus_in_sign(lambda t: rsa_refund(v2, trade_no, t), _timestamps())
        respelled = {**request, "sign": respell(request["sign"])}
        assert respelled["sign"] != request["sign"]
        # Refused even as the first copy seen: not a replay, a signature that is not spelled as one.
        assert await post(client, respelled) == RSA_REFUSED
        assert (await post(client, request))["code"] == 0
        assert await post(client, respelled) == RSA_REFUSED
        assert await post(client, request) == REPLAYED
        assert await refunded(client, v2, trade_no) == "0.01"


async def test_an_rsa_refund_refunds_once_in_every_spelling_clients_write(server, v2):
    """A ``+`` sent as a space is read back (clients put the sign into URLs unencoded); blank fields are not signed."""
    async with server.client() as client:
        trade_no = await paid(client, v2, "RSA-ONCE", money="1.00")
        timestamps = _timestamps()
        request = with_plus_in_sign(lambda t: rsa_refund(v2, trade_no, t), timestamps)
        spaced = {**request, "sign": request["sign"].replace("+", " ")}
        assert (await post(client, spaced))["code"] == 0
        for copy in (request, spaced, {**request, "note": " "}, {**spaced, "sign_type": "RSA", "extra": "\t"}):
            assert await post(client, copy) == REPLAYED
        assert await refunded(client, v2, trade_no) == "0.01"

        # The other way round: the canonical spelling first, then the space one.
        other = with_plus_in_sign(
            lambda t: rsa_refund(v2, trade_no, t), [t for t in timestamps if t != int(request["timestamp"])]
        )
        assert (await post(client, other))["code"] == 0
        assert await post(client, {**other, "sign": other["sign"].replace("+", " ")}) == REPLAYED
        assert await refunded(client, v2, trade_no) == "0.02"


async def test_an_md5_refund_refunds_once_whatever_the_case_of_its_sign(server, v2):
    """Upper-case hex is what Java and C# clients send; it is the same signature as the lowercase one."""
    async with server.client() as client:
        trade_no = await paid(client, v2, "MD5-ONCE", money="1.00")
        first, second = (md5_refund(v2, trade_no, t) for t in _timestamps()[:2])

        upper = {**first, "sign": first["sign"].upper()}
        assert (await post(client, upper))["code"] == 0
        assert await post(client, first) == REPLAYED
        assert await post(client, upper) == REPLAYED

        assert (await post(client, second))["code"] == 0
        assert await post(client, {**second, "sign": second["sign"].upper()}) == REPLAYED
        # A whitespace-only field is left out of the signature by newer Rainbow builds, so it verifies, as a replay.
        assert await post(client, {**second, "note": " "}) == REPLAYED
        assert await post(client, {**second, "sign_type": "md5"}) == REPLAYED
        assert await refunded(client, v2, trade_no) == "0.02"


async def test_an_md5_sign_in_mixed_case_is_refused(server, v2):
    async with server.client() as client:
        trade_no = await paid(client, v2, "MD5-MIXED", money="1.00")
        request = md5_refund(v2, trade_no, int(time.time()))
        sign = request["sign"]
        letters = [i for i, char in enumerate(sign) if char.isalpha()]
        assert letters, "an md5 digest without a letter: retry"
        mixed = sign[: letters[0]] + sign[letters[0]].upper() + sign[letters[0] + 1 :]
        assert await post(client, {**request, "sign": mixed}) == MD5_REFUSED
        assert (await post(client, request))["code"] == 0
        assert await post(client, {**request, "sign": mixed}) == MD5_REFUSED
        assert await refunded(client, v2, trade_no) == "0.01"
