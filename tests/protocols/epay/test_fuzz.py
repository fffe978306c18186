"""Random and malformed requests against ``submit.php`` and ``mapi.php`` over real HTTP.

Whatever arrives (odd names, unicode, control characters, broken percent-encoding, big,
multipart or JSON bodies, correctly signed or not), the gateway never fails with a 5xx;
``mapi.php`` always answers JSON with an integer ``code`` (and a ``msg`` when it is not a
success) and ``submit.php`` always answers HTML or its redirect to the cashier.
"""

from __future__ import annotations

from hypothesis import event, given
from hypothesis import strategies as st

from tests.support.answers import SERVER_TROUBLE, json_answer
from tests.support.epay import order_params, signed
from tests.support.fuzz import FUZZ, attacks, order_numbers, send, size_limited
from tests.support.fuzz import http as http

PROTOCOL_NAMES = [
    "pid", "type", "out_trade_no", "notify_url", "return_url", "name", "money", "param", "sign",
    "sign_type", "clientip", "device", "sitename", "cid", "channel_id", "__defend",
]  # fmt: skip


@st.composite
def orders(draw: st.DrawFn) -> dict[str, str]:
    base = order_params(0, "https://shop.example.com", draw(order_numbers(64)), clientip="203.0.113.9")
    base["type"] = draw(st.sampled_from(["alipay", "wxpay", "qqpay", "bank", "", "0", "x" * 40]))
    return base


def plugin_signed(fields: dict[str, str], merchant) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Signed by the merchant under test, as its plugin signs."""
    return signed({**fields, "pid": str(merchant.pid)}, merchant.key)


ATTACKS = attacks(
    names=PROTOCOL_NAMES,
    base=orders(),
    huge_fields=["name", "param", "sitename"],
    signers=[None, plugin_signed],
)


@FUZZ
@given(attack=ATTACKS)
def test_mapi_always_answers_json_with_an_integer_code(http, merchant, attack):
    response = send(http, "/mapi.php", attack, merchant)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    answer = json_answer(response)
    event(f"mapi.php code {answer['code']}")
    if answer["code"] == 1:
        assert isinstance(answer["trade_no"], str) and "msg" not in answer
        assert len({"payurl", "qrcode", "urlscheme"} & set(answer)) == 1
    else:
        assert answer["code"] in (-1, -2, -3, -4)
        assert isinstance(answer["msg"], str) and answer["msg"]
        assert answer["msg"] != SERVER_TROUBLE


@FUZZ
@given(attack=ATTACKS)
def test_submit_always_answers_html(http, merchant, attack):
    response = send(http, "/submit.php", attack, merchant)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    event(f"submit.php {response.status_code}")
    if response.status_code == 302:
        assert response.headers["location"].startswith("/cashier/")
        return
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert response.text.strip()


API_NAMES = [
    "act", "pid", "key", "trade_no", "out_trade_no", "money", "limit", "offset", "status", "out_refund_no",
    "refund_no", "sign", "sign_type",
]  # fmt: skip


@st.composite
def api_requests(draw: st.DrawFn) -> dict[str, str]:
    fields = {"act": draw(st.sampled_from(["query", "settle", "order", "orders", "refund", "", "ORDER"]))}
    for name in draw(st.lists(st.sampled_from(["trade_no", "out_trade_no", "money", "limit", "offset", "status"]))):
        fields[name] = draw(st.one_of(order_numbers(32), st.integers(-(10**30), 10**30).map(str)))
    return fields


def with_key(fields: dict[str, str], merchant) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Authenticated with the plain key, as Rainbow's ``api.php`` clients do."""
    return {**fields, "pid": str(merchant.pid), "key": merchant.key}


@FUZZ
@given(attack=attacks(names=API_NAMES, base=api_requests(), huge_fields=["trade_no"], signers=[None, with_key]))
def test_api_always_answers_json_with_a_code_and_a_message_when_it_refuses(http, merchant, attack):
    response = send(http, "/api.php", attack, merchant)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    answer = json_answer(response)
    event(f"api.php code {answer['code']}")
    if answer["code"] != 1:
        assert answer["code"] in (-1, -2, -3, -4, -5)
        assert isinstance(answer["msg"], str) and answer["msg"]
        assert answer["msg"] != SERVER_TROUBLE
