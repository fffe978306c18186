"""Random and malformed requests against ``/pay/mapi.php`` and ``/pay/submit.php`` over real HTTP.

Whatever arrives (odd names, unicode, control characters, broken percent-encoding, big,
multipart or JSON bodies, correctly signed or not, the sandbox's refusing amounts), the gateway
never fails with a 5xx: ``mapi.php`` answers the seed's JSON (code 200 with every field, or a
seed code with its exact message), ``submit.php`` a redirect to the cashier or a page showing a
seed code and message. Neither ever answers the "internal error" that hides a server failure.
"""

from __future__ import annotations

import re

from hypothesis import event, given
from hypothesis import strategies as st

from tests.support.answers import json_answer, page_message
from tests.support.fuzz import FUZZ, attacks, order_numbers, send, size_limited
from tests.support.fuzz import http as http
from tests.support.links import cashier_path, trade_no_of
from tests.support.pay_mapi import MAPI, SEED_MESSAGES, SHOP, SUBMIT, SUCCESS_FIELDS, pay_params, seed_sign

INTERNAL = "internal error"
PROTOCOL_NAMES = [
    "pid", "type", "out_trade_no", "notify_url", "return_url", "name", "money", "sitename", "ext", "sign",
    "sign_type", "param", "clientip", "device",
]  # fmt: skip
# The sandbox's refusing amounts (7.02: channel paused, 7.03: no code for it), and more ways to almost write money.
SEED_VALUES = [
    "-inf", "-0", "7.02", "7.03", "7.09", "0.01", "1" * 21, ".", "-.", "1..2", "http://[x]/", "qqpay", "WXPAY", "md5",
]  # fmt: skip


@st.composite
def orders(draw: st.DrawFn) -> dict[str, str]:
    base = pay_params(0, SHOP, draw(order_numbers(64)))
    base["type"] = draw(st.sampled_from(["alipay", "wxpay", "qqpay", "bank", "", "0", "x" * 40]))
    base["money"] = draw(st.sampled_from(["1.00", "7.02", "7.03", "7.09", "0.01", "0", "100"]))
    if draw(st.booleans()):
        base["ext"] = draw(st.sampled_from(["", "uid=42", "e" * 100, "e" * 101]))
    return base


def seed_signed(fields: dict[str, str], merchant) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Signed with the seed's rule; a ``sign_type`` the damage left stays, as it is not signed."""
    fields = {"sign_type": "MD5", **fields, "pid": str(merchant.pid)}
    return {**fields, "sign": seed_sign(fields, merchant.key)}


ATTACKS = attacks(
    names=PROTOCOL_NAMES,
    values=SEED_VALUES,
    base=orders(),
    huge_fields=["name", "ext", "sitename"],
    signers=[None, seed_signed],
)


@FUZZ
@given(attack=ATTACKS)
def test_mapi_always_answers_the_seeds_json(http, merchant, attack):
    response = send(http, MAPI, attack, merchant)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    answer = json_answer(response)
    event(f"mapi.php code {answer['code']}")
    if answer["code"] == 200:
        assert set(answer) == SUCCESS_FIELDS
        assert answer["msg"] == "success"
        assert re.fullmatch(r"[0-9]+\.[0-9]{2}", answer["money"])
        assert answer["type"] in ("alipay", "qqpay", "wxpay")
        assert answer["payurl"].endswith(cashier_path(answer["trade_no"]))
        return
    assert set(answer) <= {"code", "msg", "detail"}
    assert answer["msg"] == SEED_MESSAGES[answer["code"]]
    if "detail" in answer:
        assert isinstance(answer["detail"], str) and answer["detail"]
        assert INTERNAL not in answer["detail"]


@FUZZ
@given(attack=ATTACKS)
def test_submit_always_redirects_or_shows_a_seed_code(http, merchant, attack):
    response = send(http, SUBMIT, attack, merchant)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    event(f"submit.php {response.status_code}")
    if response.status_code == 302:
        assert response.headers["location"] == cashier_path(trade_no_of(response.headers["location"]))
        return
    code, _, rest = page_message(response).partition(": ")
    event(f"submit.php code {code}")
    assert rest.startswith(SEED_MESSAGES[int(code)])
    assert INTERNAL not in rest
