"""Random and malformed requests against ``/Home/Pay/payFor`` over real HTTP, in both modes.

Whatever arrives (odd names, unicode, control characters, broken percent-encoding, big,
multipart or JSON bodies, correctly keyed or not), the gateway never fails with a 5xx. With
``format=json`` it answers ``{"code": <=0, "msg": ...}`` or a success with its ``data``; in the
browser it answers the error page or the redirect to the cashier.
"""

from __future__ import annotations

from hypothesis import event, given
from hypothesis import strategies as st

from tests.support.answers import SERVER_TROUBLE, json_answer
from tests.support.fuzz import FUZZ, Attack, attacks, order_numbers, send, size_limited
from tests.support.fuzz import http as http
from tests.support.payfor import PATH, keyed, page_error, payfor_params

PROTOCOL_NAMES = [
    "uid", "price", "type", "notify_url", "return_url", "order_id", "order_uid", "order_name", "key",
    "format", "token", "sign",
]  # fmt: skip
# payFor's own pay types, its format switch, prices around the sandbox's refusing amounts, the vector's order.
PAYFOR_VALUES = ["1", "2", "3", "json", "JSON", "9.90", "9.9", "7.02", "7.03", "7.09", "0.01", "A20240101001"]
DATA_FIELDS = {"pay_num", "qrcode", "payurl", "price", "realprice", "type", "expire_time"}


@st.composite
def orders(draw: st.DrawFn) -> dict[str, str]:
    base = payfor_params(0, "https://shop.example.com", draw(order_numbers(50)))
    base["type"] = draw(st.sampled_from(["1", "2", "1", "2", "", "3"]))
    base["price"] = draw(st.sampled_from(["9.90", "9.9", "10", "0.01", "7.02", "7.03", "7.09", "1.005"]))
    return base


def merchant_keyed(fields: dict[str, str], merchant) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Keyed with the token of the merchant under test, as its server does."""
    return keyed({**fields, "uid": str(merchant.pid)}, merchant.key)


ATTACKS = attacks(
    names=PROTOCOL_NAMES,
    values=PAYFOR_VALUES,
    base=orders(),
    huge_fields=["order_name", "order_uid", "notify_url"],
    signers=[None, merchant_keyed],
)


def asked_for_json(attack: Attack, as_json: bool) -> bool:
    if as_json:
        return True
    if attack.shape in ("raw-body", "raw-query", "json"):
        return False
    return attack.fields.get("format", "").strip().lower() == "json"


@FUZZ
@given(attack=ATTACKS, as_json=st.booleans())
def test_pay_for_answers_in_its_own_shape(http, merchant, attack, as_json):
    response = send(http, PATH, attack, merchant, {"format": "json"} if as_json else None)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    if asked_for_json(attack, as_json):
        answer = json_answer(response)
        event(f"json code {answer['code']}")
        if answer["code"] == 1:
            assert set(answer) == {"code", "msg", "data"} and set(answer["data"]) == DATA_FIELDS
            assert answer["data"]["type"] in (1, 2)
        else:
            assert set(answer) == {"code", "msg"}
            assert answer["code"] in (0, -1, -2, -3, -4, -5)
            assert isinstance(answer["msg"], str) and answer["msg"] and answer["msg"] != SERVER_TROUBLE
        return
    event(f"browser {response.status_code}")
    if response.status_code == 303:
        assert response.headers["location"].startswith("/cashier/")
        return
    message = page_error(response)
    assert message.strip() and message != SERVER_TROUBLE
