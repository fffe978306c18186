"""Random and malformed requests against every V2 endpoint over real HTTP.

Half of the requests are real ones (an order, a query, a refund), damaged a little and then
correctly signed with the merchant's RSA or MD5 key, so the fuzzing gets past the signature
check into validation, storage, the channel and refunds. Whatever arrives, the gateway never
answers 5xx; the JSON endpoints answer ``{"code", "msg"}`` on failure and a correctly
platform-signed ``code: 0`` answer on success; ``pay/submit`` answers HTML or its redirect.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.protocols.epay.test_fuzz import (
    BODY_LIMIT,
    SERVER_TROUBLE,
    huge_value,
    names,
    raw_query,
    short_values,
    splinters,
    values,
)
from tests.support.epay_v2 import order_fields, platform_signed
from tests.support.merchant import plugin_sign

JSON_ENDPOINTS = [
    "pay/create", "pay/query", "pay/refund", "pay/refundquery", "merchant/info", "merchant/orders",
    "pay/nothing", "transfer/submit",
]  # fmt: skip
V2_NAMES = [
    "pid", "timestamp", "sign", "sign_type", "method", "device", "type", "out_trade_no", "notify_url", "return_url",
    "name", "money", "clientip", "param", "trade_no", "refund_no", "out_refund_no", "limit", "offset", "status",
    "channel_id", "sub_openid", "sub_appid", "auth_code", "sitename",
]  # fmt: skip
V2_VALUES = ["web", "jump", "jsapi", "scan", "app", "pc", "mobile", "RSA", "MD5", "rsa", "0", "-1", "50", "51", ""]


class Request:
    """One request; a plain class so that a falsifying example prints short."""

    def __init__(self, endpoint: str, shape: str, fields: dict[str, str], raw: bytes = b"", signing: str = "none"):
        self.endpoint = endpoint
        self.shape = shape
        self.fields = fields
        self.raw = raw
        self.signing = signing

    def __repr__(self) -> str:
        shown = {k: (v if len(v) < 200 else f"<{v[:20]!r}... {len(v)} chars>") for k, v in self.fields.items()}
        return f"Request({self.endpoint!r}, {self.shape!r}, {shown!r}, raw={self.raw[:200]!r}, {self.signing})"


def realistic(draw: st.DrawFn, endpoint: str) -> dict[str, str]:
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


@st.composite
def requests(draw: st.DrawFn, endpoints: list[str]) -> Request:
    endpoint = draw(st.sampled_from(endpoints))
    shape = draw(st.sampled_from(["form"] * 5 + ["query", "multipart", "json", "raw-body", "huge-form"]))
    if shape == "raw-body":
        return Request(endpoint, shape, {}, raw=draw(st.one_of(st.binary(max_size=2000), raw_query.map(str.encode))))
    some_values = short_values if shape == "query" else values
    signing = draw(st.sampled_from(["rsa", "rsa", "md5", "none"]))
    any_name = st.one_of(st.sampled_from(V2_NAMES), names)
    if signing == "none":
        fields = draw(st.dictionaries(any_name, st.one_of(some_values, st.sampled_from(V2_VALUES)), max_size=8))
    else:
        fields = realistic(draw, endpoint)
        damage = draw(st.sampled_from(["none", "none", "override", "splice", "splice"]))
        junk = st.one_of(some_values, st.sampled_from(V2_VALUES))
        if damage == "override":
            fields.update(draw(st.dictionaries(any_name, junk, max_size=3)))
        elif damage == "splice":  # mostly still valid, so it reaches the database
            for name in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=2)):
                at = draw(st.integers(0, len(fields[name])))
                fields[name] = fields[name][:at] + draw(st.one_of(splinters, short_values)) + fields[name][at:]
    if shape == "huge-form":
        fields[draw(st.one_of(st.sampled_from(["name", "param", "money", "timestamp"]), names))] = draw(huge_value)
    return Request(endpoint, shape, fields, signing=signing)


def send(client: httpx.Client, request: Request, v2) -> httpx.Response:  # type: ignore[no-untyped-def]
    path = f"/api/{request.endpoint}"
    fields = dict(request.fields)
    if request.signing == "rsa":
        fields = v2.request({k: v for k, v in fields.items() if k not in ("pid", "sign", "sign_type")})
    elif request.signing == "md5":
        fields = {**fields, "pid": str(v2.pid)}
        fields.setdefault("timestamp", str(int(time.time())))
        fields.pop("sign", None)
        fields["sign"] = plugin_sign(fields, v2.key)
        fields["sign_type"] = "MD5"
    if request.shape == "raw-body":
        return client.post(path, content=request.raw, headers={"Content-Type": "application/x-www-form-urlencoded"})
    if request.shape == "query":
        return client.get(path, params=fields)
    if request.shape == "multipart":
        return client.post(path, data=fields, files={"upload": ("a.bin", b"\x00\xff" * 10)})
    if request.shape == "json":
        return client.post(path, content=json.dumps(fields), headers={"Content-Type": "application/json"})
    return client.post(path, data=fields)


FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.large_base_example],
)


@pytest.fixture
def http(server, v2) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    """A client, and one paid order ("FZ-PAID") for the refunds and queries to find."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        fields = order_fields("https://shop.example.com", "FZ-PAID", money="5.00")
        trade_no = client.post("/api/pay/create", data=v2.request(fields)).json()["trade_no"]
        assert client.post(f"/sandbox/pay/{trade_no}").status_code == 303
        yield client


def too_big(response: httpx.Response) -> bool:
    """Only the size limit may answer otherwise than the dialect."""
    return response.status_code == 413 and len(response.request.content) > BODY_LIMIT


@FUZZ
@given(request=requests(JSON_ENDPOINTS))
def test_json_endpoints_answer_code_and_msg_or_a_signed_success(http, v2, platform_public, request):
    response = send(http, request, v2)
    assert response.status_code < 500, response.text[:500]
    if too_big(response):
        return
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert type(answer["code"]) is int
    event(f"{request.endpoint} code {answer['code']}")
    if answer["code"] == 0:
        assert answer["sign_type"] == "RSA"
        assert platform_signed(platform_public, answer), answer
    else:
        assert set(answer) == {"code", "msg"}, answer
        assert answer["code"] in (-1, -2, -3, -4, -5)
        assert isinstance(answer["msg"], str) and answer["msg"]
        assert answer["msg"] != SERVER_TROUBLE


@settings(FUZZ, max_examples=80)
@given(request=requests(["pay/submit"]))
def test_submit_answers_html_or_the_cashier(http, v2, request):
    response = send(http, request, v2)
    assert response.status_code < 500, response.text[:500]
    if too_big(response):
        return
    event(f"pay/submit {response.status_code}")
    if response.status_code == 302:
        assert response.headers["location"].startswith("/cashier/")
        return
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.strip() and SERVER_TROUBLE not in response.text
