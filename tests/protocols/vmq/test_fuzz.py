"""Random and malformed requests against the four V免签 endpoints over real HTTP.

Whatever arrives (odd names, unicode, control characters, broken percent-encoding, big,
multipart or JSON bodies, correctly signed or not, junk in the path's merchant, the sandbox's
refusing amounts, real order numbers and made-up ones), the answer is V免签's
``{"code": 1|-1, "msg", "data"}`` with the right ``data`` for the endpoint, or for a signed
``createOrder`` with ``isHtml=1`` the jump to our cashier; never a 5xx and never the "busy"
answer that hides a server failure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import pytest_asyncio
from hypothesis import event, given
from hypothesis import strategies as st

from tests.support.fuzz import FUZZ, attacks, order_numbers, send, size_limited
from tests.support.fuzz import http as http
from tests.support.links import cashier_path, handle, trade_no_of
from tests.support.vmq import DATA_FIELDS, SHOP, close_sign, create, create_sign, data_of, order_params, signed

BUSY = "系统繁忙，请稍后再试"
PROTOCOL_NAMES = ["payId", "type", "price", "param", "sign", "isHtml", "notifyUrl", "returnUrl", "orderId", "pid"]
# Type codes near the real ones, the sandbox's refusing amounts (7.02 paused, 7.03 no amount free,
# 7.09 one fen more) and prices as PHP and Java render them.
VMQ_VALUES = [
    "1", "2", "3", "01", "1.0", " 1", "7.02", "7.03", "7.09", "9.9", "10.0", "10", "0.1", "0.00",
    "-0", ".", "1" * 21, "http://[x]/", "javascript:alert(1)", "https://shop.example.com/r?a=1#f",
]  # fmt: skip
# What may stand between /vmq/ and the endpoint: mostly the merchant, else a slash doubled or
# missing, junk, or nothing (the root path, with no default merchant configured).
PATH_PIDS = ["{pid}/"] * 6 + ["{pid}//", "{pid}", "99999/", "abc/", "0/", "%00/", "%E4%B8/", "%20/", ""]


@dataclass(frozen=True)
class FuzzMerchant:
    """The merchant the fuzzing signs for, and numbers of real orders of theirs (unpaid, paid, closed)."""

    pid: int
    key: str
    orders: tuple[str, ...]


@pytest_asyncio.fixture
async def fuzz_merchant(server, merchant) -> FuzzMerchant:  # type: ignore[no-untyped-def]
    orders = []
    async with server.client() as client:
        for pay_id in ("FUZZ-UNPAID", "FUZZ-PAID", "FUZZ-CLOSED"):
            orders.append(data_of(await create(client, signed(order_params(pay_id), merchant.key), merchant.pid)))
        assert (await client.post(f"/sandbox/pay/{orders[1]['orderId']}")).status_code == 303
        closed = orders[2]["orderId"]
        closing = await client.get(
            f"/vmq/{merchant.pid}/closeOrder", params={"orderId": closed, "sign": close_sign(closed, merchant.key)}
        )
        assert closing.json()["code"] == 1
    return FuzzMerchant(merchant.pid, merchant.key, tuple(order["orderId"] for order in orders))


@st.composite
def new_orders(draw: st.DrawFn) -> dict[str, str]:
    params = order_params(draw(order_numbers(64)), SHOP)
    params["type"] = draw(st.sampled_from(["1", "2", "3", "", "wxpay"]))
    params["price"] = draw(st.sampled_from(["9.90", "9.9", "7.02", "7.03", "7.09", "0.01", "0", "10"]))
    if draw(st.booleans()):
        params["param"] = draw(st.sampled_from(["", "0", "uid=42&x=1", "奥" * 255, "p" * 256]))
    if draw(st.booleans()):
        params["isHtml"] = draw(st.sampled_from(["1", "0", " 1", "true"]))
    if draw(st.booleans()):
        del params["returnUrl"]
    return params


def create_signed(fields: dict[str, str], merchant: FuzzMerchant) -> dict[str, str]:
    """Signed with V免签's rule over whatever the damage left (a missing field counts as empty)."""
    values = {name: fields.get(name, "") for name in ("payId", "param", "type", "price")}
    return {**fields, "sign": create_sign(values, merchant.key)}


def real_order(fields: dict[str, str], merchant: FuzzMerchant) -> dict[str, str]:
    """``orderId`` names one of the merchant's real orders when it was one of the placeholders."""
    placeholder = fields.get("orderId", "")
    if placeholder.startswith("ORDER-") and placeholder[-1:].isdigit():
        return {**fields, "orderId": merchant.orders[int(placeholder[-1]) % len(merchant.orders)]}
    return fields


def close_signed(fields: dict[str, str], merchant: FuzzMerchant) -> dict[str, str]:
    fields = real_order(fields, merchant)
    return {**fields, "sign": close_sign(fields.get("orderId", ""), merchant.key)}


order_ids = st.one_of(
    st.sampled_from(["ORDER-0", "ORDER-1", "ORDER-2"]),
    st.from_regex(r"[0-9]{1,32}", fullmatch=True),
    st.text(max_size=40),
).map(lambda order_id: {"orderId": order_id})

CREATE_ATTACKS = attacks(
    names=PROTOCOL_NAMES,
    values=VMQ_VALUES,
    base=new_orders(),
    huge_fields=["param", "payId", "notifyUrl", "price"],
    signers=[None, create_signed, create_signed],
)
LOOKUP_ATTACKS = attacks(
    names=PROTOCOL_NAMES,
    values=VMQ_VALUES,
    base=order_ids,
    huge_fields=["orderId"],
    signers=[None, real_order, real_order],
)
CLOSE_ATTACKS = attacks(
    names=PROTOCOL_NAMES,
    values=VMQ_VALUES,
    base=order_ids,
    huge_fields=["orderId", "sign"],
    signers=[None, close_signed, close_signed],
)


def url_path(endpoint: str, pid_part: str, merchant: FuzzMerchant) -> str:
    return f"/vmq/{pid_part.format(pid=merchant.pid)}{endpoint}" if pid_part else f"/{endpoint}"


def answer_of(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert list(answer) == ["code", "msg", "data"], answer
    assert type(answer["code"]) is int and answer["code"] in (1, -1)
    assert isinstance(answer["msg"], str) and answer["msg"] and answer["msg"] != BUSY
    if answer["code"] == -1:
        assert answer["data"] is None
    return answer


def check_order_data(data: dict) -> None:
    assert list(data) == DATA_FIELDS
    assert data["payType"] in (1, 2) and data["isAuto"] in (0, 1) and data["state"] in (-1, 0, 1, 2)
    assert re.fullmatch(r"[0-9]+\.[0-9]{2}", data["reallyPrice"])
    assert data["orderId"] == handle(data["orderId"].partition("-")[0])  # the buyer handle, never a bare number


@FUZZ
@given(attack=CREATE_ATTACKS, pid_part=st.sampled_from(PATH_PIDS))
def test_create_order_always_answers_vmq_json_or_jumps_to_the_cashier(http, fuzz_merchant, attack, pid_part):
    response = send(http, url_path("createOrder", pid_part, fuzz_merchant), attack, fuzz_merchant)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    if response.status_code == 302:
        event("createOrder jump")
        assert response.headers["location"] == cashier_path(trade_no_of(response.headers["location"]))
        return
    answer = answer_of(response)
    event(f"createOrder {answer['code']} {answer['msg'][:12]}")
    if answer["code"] == 1:
        check_order_data(answer["data"])
        assert answer["data"]["state"] == 0


@FUZZ
@given(attack=LOOKUP_ATTACKS, pid_part=st.sampled_from(PATH_PIDS), endpoint=st.sampled_from(["getOrder", "checkOrder"]))
def test_get_and_check_order_always_answer_vmq_json(http, fuzz_merchant, attack, pid_part, endpoint):
    response = send(http, url_path(endpoint, pid_part, fuzz_merchant), attack, fuzz_merchant)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    answer = answer_of(response)
    event(f"{endpoint} {answer['code']} {answer['msg'][:12]}")
    if answer["code"] == 1 and endpoint == "getOrder":
        check_order_data(answer["data"])
    elif answer["code"] == 1:
        assert answer["data"].startswith(f"{SHOP}/return?payId=FUZZ-PAID&")


@FUZZ
@given(attack=CLOSE_ATTACKS, pid_part=st.sampled_from(PATH_PIDS))
def test_close_order_always_answers_vmq_json(http, fuzz_merchant, attack, pid_part):
    response = send(http, url_path("closeOrder", pid_part, fuzz_merchant), attack, fuzz_merchant)
    assert response.status_code < 500, response.text[:500]
    if size_limited(response):
        return
    answer = answer_of(response)
    event(f"closeOrder {answer['code']} {answer['msg'][:12]}")
    if answer["code"] == 1:
        assert answer["data"] is None


@pytest.mark.parametrize("endpoint", ["createOrder", "getOrder", "checkOrder", "closeOrder"])
def test_unknown_methods_are_not_answered_as_orders(http, endpoint):
    assert http.put(f"/{endpoint}").status_code == 405
