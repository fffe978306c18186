"""Random and malformed requests against every V2 endpoint over real HTTP.

Half of the requests are real ones (an order, a query, a refund), damaged a little and then
correctly signed with the merchant's RSA or MD5 key, so the fuzzing gets past the signature
check into validation, storage, the channel and refunds. Whatever arrives, the gateway never
answers 5xx; the JSON endpoints answer ``{"code", "msg"}`` on failure and a correctly
platform-signed ``code: 0`` answer on success; ``pay/submit`` answers HTML or its redirect.
"""

from __future__ import annotations

import time

import httpx
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.support.answers import SERVER_TROUBLE, json_answer
from tests.support.books import assert_money_kept
from tests.support.epay import signed
from tests.support.epay_v2 import V2Merchant, order_fields, platform_signed
from tests.support.fuzz import Attack, attacks, fuzz, send, size_limited
from tests.support.fuzz import http as http
from tests.support.links import sandbox_path

JSON_ENDPOINTS = [
    "pay/create", "pay/query", "pay/refund", "pay/refundquery", "merchant/info", "merchant/orders",
    "pay/nothing", "transfer/submit",
]  # fmt: skip
# V2's names, and V1's that a merchant moving to V2 may still send.
V2_NAMES = [
    "pid", "timestamp", "sign", "sign_type", "method", "device", "type", "out_trade_no", "notify_url", "return_url",
    "name", "money", "clientip", "param", "trade_no", "refund_no", "out_refund_no", "limit", "offset", "status",
    "channel_id", "sub_openid", "sub_appid", "auth_code", "sitename", "cid", "__defend",
]  # fmt: skip
V2_VALUES = ["web", "jump", "jsapi", "scan", "app", "pc", "mobile", "RSA", "MD5", "rsa", "0", "-1", "50", "51", ""]
# The SDK posts forms: most requests are one.
V2_SHAPES = ["form"] * 5 + ["query", "multipart", "json", "raw-body", "huge-form"]


@st.composite
def realistic(draw: st.DrawFn, endpoint: str) -> dict[str, str]:
    """A valid request to ``endpoint``, about one of a few orders (``FZ-PAID`` is paid) and refunds."""
    numbers = st.sampled_from(["FZ-PAID", "FZ-PAID", "FZ-1", "FZ-2", "20260101000000000000000001", "x"])
    if endpoint in ("pay/create", "pay/submit"):
        fields = order_fields("https://shop.example.com", draw(numbers))
        fields["type"] = draw(st.sampled_from(["alipay", "wxpay", "qqpay", "bank", ""]))
        fields["money"] = draw(st.sampled_from(["1.00", "7.02", "7.03", "7.09", "0.01", "12.5"]))
        fields["method"] = draw(st.sampled_from(["web", "jump", "jsapi", ""]))
        return fields
    if endpoint == "pay/refund":
        return {"out_trade_no": draw(numbers), "money": draw(st.sampled_from(["0.01", "1.00", "5"])),
                "out_refund_no": draw(st.sampled_from(["RF-1", "RF-2", ""]))}  # fmt: skip
    if endpoint == "pay/refundquery":
        return {"out_refund_no": draw(st.sampled_from(["RF-1", "RF-2", "nope"]))}
    if endpoint == "merchant/orders":
        return {"limit": draw(st.sampled_from(["1", "50", "99"])), "status": draw(st.sampled_from(["0", "1", "2"]))}
    return {"out_trade_no": draw(numbers)}


def rsa_signed(fields: dict[str, str], v2: V2Merchant) -> dict[str, str]:
    """What the SDK's ``buildRequestParam`` sends: its own ``pid``, ``timestamp`` and RSA signature."""
    return v2.request({k: v for k, v in fields.items() if k not in ("pid", "sign", "sign_type")})


def md5_signed(fields: dict[str, str], v2: V2Merchant) -> dict[str, str]:
    """Signed with the merchant's V1 key, which V2 still accepts, and a fresh ``timestamp`` unless one was drawn."""
    return signed({"timestamp": str(int(time.time())), **fields, "pid": str(v2.pid)}, v2.key)


@st.composite
def requests(draw: st.DrawFn, endpoints: list[str]) -> tuple[str, Attack]:
    """An endpoint and a request to it, signed with RSA, MD5 or not at all (in 2 : 1 : 1)."""
    endpoint = draw(st.sampled_from(endpoints))
    attack = attacks(
        names=V2_NAMES,
        values=V2_VALUES,
        base=realistic(endpoint),
        huge_fields=["name", "param", "money", "timestamp"],
        signers=[rsa_signed, rsa_signed, md5_signed, None],
        shapes=V2_SHAPES,
    )
    return endpoint, draw(attack)


@pytest.fixture
def paid_order(http: httpx.Client, v2: V2Merchant) -> None:
    """One paid order ("FZ-PAID") for the refunds and queries to find."""
    fields = order_fields("https://shop.example.com", "FZ-PAID", money="5.00")
    trade_no = http.post("/api/pay/create", data=v2.request(fields)).json()["trade_no"]
    assert http.post(sandbox_path(trade_no)).status_code == 303


@pytest.mark.usefixtures("paid_order")
@fuzz(max_examples=150)
@given(case=requests(JSON_ENDPOINTS))
def test_json_endpoints_answer_code_and_msg_or_a_signed_success(http, v2, platform_public, database_url, case):
    """Whatever it answers, no request breaks the books: refunded never above paid, balance = journal sum."""
    endpoint, attack = case
    response = send(http, f"/api/{endpoint}", attack, v2)
    assert_money_kept(database_url)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    answer = json_answer(response)
    event(f"{endpoint} code {answer['code']}")
    if answer["code"] == 0:
        assert answer["sign_type"] == "RSA"
        assert platform_signed(platform_public, answer), answer
    else:
        assert set(answer) == {"code", "msg"}, answer
        assert answer["code"] in (-1, -2, -3, -4, -5)
        assert isinstance(answer["msg"], str) and answer["msg"]
        assert answer["msg"] != SERVER_TROUBLE


@pytest.mark.usefixtures("paid_order")
@fuzz(max_examples=80)
@given(case=requests(["pay/submit"]))
def test_submit_answers_html_or_the_cashier(http, v2, case):
    endpoint, attack = case
    response = send(http, f"/api/{endpoint}", attack, v2)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    event(f"pay/submit {response.status_code}")
    if response.status_code == 302:
        assert response.headers["location"].startswith("/cashier/")
        return
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.strip() and SERVER_TROUBLE not in response.text
