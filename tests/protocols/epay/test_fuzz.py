"""Random and malformed requests against ``submit.php`` and ``mapi.php`` over real HTTP.

Whatever arrives (odd names, unicode, control characters, broken percent-encoding, big,
multipart or JSON bodies, correctly signed or not), the gateway never fails with a 5xx;
``mapi.php`` always answers JSON with an integer ``code`` (and a ``msg`` when it is not a
success) and ``submit.php`` always answers HTML or its redirect to the cashier.
"""

from __future__ import annotations

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.support.answers import SERVER_TROUBLE, json_answer
from tests.support.books import assert_money_kept
from tests.support.epay import order_params, signed
from tests.support.fuzz import FUZZ, attacks, order_numbers, send, size_limited
from tests.support.fuzz import http as http
from tests.support.links import sandbox_path

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


REFUND_AMOUNTS = ["0.01", "0.30", "1.00", "1.01", "2.00", "0", "-0.30"]


@st.composite
def api_requests(draw: st.DrawFn) -> dict[str, str]:
    acts = ["query", "settle", "order", "orders", "refund", "refund", "refund", "", "ORDER"]
    fields = {"act": draw(st.sampled_from(acts))}
    for name in draw(st.lists(st.sampled_from(["trade_no", "out_trade_no", "money", "limit", "offset", "status"]))):
        fields[name] = draw(st.one_of(order_numbers(32), st.integers(-(10**30), 10**30).map(str)))
    if fields["act"] == "refund":
        # A refund of one of the paid orders, for an amount that is often right, so money really moves.
        fields.pop("trade_no", None)
        fields["out_trade_no"] = draw(st.sampled_from(PAID))
        fields["money"] = draw(st.sampled_from(REFUND_AMOUNTS))
    return fields


def with_key(fields: dict[str, str], merchant) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Authenticated with the plain key, as Rainbow's ``api.php`` clients do."""
    return {**fields, "pid": str(merchant.pid), "key": merchant.key}


PAID = ("FZ-1", "FZ-2")


@pytest.fixture
def paid_orders(http, merchant) -> None:  # type: ignore[no-untyped-def]
    """FZ-1 (2.00) and FZ-2 (1.00) paid, for the fuzzed refunds to draw on."""
    for out_trade_no, money in zip(PAID, ("2.00", "1.00"), strict=True):
        params = order_params(merchant.pid, "https://shop.example.com", out_trade_no, money=money, clientip="1.2.3.4")
        trade_no = json_answer(http.post("/mapi.php", data=signed(params, merchant.key)))["trade_no"]
        assert http.post(sandbox_path(trade_no)).status_code == 303


@pytest.mark.usefixtures("paid_orders")
@FUZZ
@given(
    attack=attacks(names=API_NAMES, base=api_requests(), huge_fields=["trade_no"], signers=[None, with_key, with_key]),
    act_in_url=st.sampled_from([None, None, "refund", "refund", "order"]),
)
def test_api_always_answers_json_with_a_code_and_a_message_when_it_refuses(
    http, merchant, database_url, attack, act_in_url
):
    """Whatever it answers, no request breaks the books: refunded never above paid, balance = journal sum.

    Plugins put ``act`` in the URL and the rest in the body, as often as not."""
    response = send(http, "/api.php", attack, merchant, {"act": act_in_url} if act_in_url else None)
    assert_money_kept(database_url)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    answer = json_answer(response)
    event(f"api.php code {answer['code']}{' (a refund made)' if 'refund_no' in answer else ''}")
    if answer["code"] != 1:
        assert answer["code"] in (-1, -2, -3, -4, -5)
        assert isinstance(answer["msg"], str) and answer["msg"]
        assert answer["msg"] != SERVER_TROUBLE
