"""One order in each merchant dialect over HTTP, for tests that hold a rule across all of them.

Each ``DialectOrders`` sends an order the way that dialect's merchants do (signed their way,
with the ``notify_url`` a test chooses), reads the gateway's trade number from a success, and
reads a refusal in the dialect's own form. The dialects' own tests keep every other detail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from tests.support import epay, payfor, vmq
from tests.support.answers import json_answer, page_message
from tests.support.epay_v2 import V2Merchant, order_fields
from tests.support.links import trade_no_named, trade_no_of
from tests.support.pay_mapi import pay_params
from tests.support.pay_mapi import signed as pay_mapi_signed

SHOP = "https://shop.example.com"
# Rainbow's text, which epay, V2 and payFor give for a notify_url they will not send to.
EPAY_NOTIFY_URL_REFUSED = "通知地址(notify_url)不合法，请填写公网可以访问的http或https地址"
VMQ_NOTIFY_URL_REFUSED = "异步通知地址(notifyUrl)不合法，请填写公网可以访问的http或https地址"

Place = Callable[[httpx.AsyncClient, V2Merchant, str, str], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class DialectOrders:
    name: str  # as an order records it
    place: Place  # (client, merchant, out_trade_no, notify_url)
    trade_no: Callable[[httpx.Response], str]
    refusal: Callable[[httpx.Response], object]
    notify_url_refused: Callable[[str], object]  # what ``refusal`` reads for a notify_url refused for this reason

    def __str__(self) -> str:
        return self.name


async def _epay_mapi(client: httpx.AsyncClient, merchant: V2Merchant, number: str, url: str) -> httpx.Response:
    params = epay.order_params(merchant.pid, SHOP, number, notify_url=url, clientip="203.0.113.9", device="pc")
    return await client.post("/mapi.php", data=epay.signed(params, merchant.key))


async def _epay_submit(client: httpx.AsyncClient, merchant: V2Merchant, number: str, url: str) -> httpx.Response:
    params = epay.order_params(merchant.pid, SHOP, number, notify_url=url)
    return await client.post("/submit.php", data=epay.signed(params, merchant.key))


async def _epay_v2(client: httpx.AsyncClient, merchant: V2Merchant, number: str, url: str) -> httpx.Response:
    return await client.post("/api/pay/create", data=merchant.request(order_fields(SHOP, number, notify_url=url)))


async def _pay_mapi(client: httpx.AsyncClient, merchant: V2Merchant, number: str, url: str) -> httpx.Response:
    params = pay_mapi_signed(pay_params(merchant.pid, SHOP, number, notify_url=url), merchant.key)
    return await client.post("/pay/mapi.php", data=params)


async def _payfor(client: httpx.AsyncClient, merchant: V2Merchant, number: str, url: str) -> httpx.Response:
    params = payfor.keyed(payfor.payfor_params(merchant.pid, SHOP, number, notify_url=url), merchant.key)
    return await payfor.send(client, params, as_json=True)


async def _vmq(client: httpx.AsyncClient, merchant: V2Merchant, number: str, url: str) -> httpx.Response:
    params = vmq.signed(vmq.order_params(number, SHOP, notifyUrl=url), merchant.key)
    return await vmq.create(client, params, merchant.pid)


def _code_and_msg(response: httpx.Response) -> tuple[int, str]:
    answer = json_answer(response)
    return answer["code"], answer["msg"]


def _pay_mapi_refusal(response: httpx.Response) -> tuple[int, str, str | None]:
    answer = json_answer(response)
    return answer["code"], answer["msg"], answer.get("detail")


EPAY_MAPI = DialectOrders(
    "epay",
    _epay_mapi,
    lambda response: json_answer(response)["trade_no"],
    _code_and_msg,
    lambda reason: (-1, EPAY_NOTIFY_URL_REFUSED),
)
EPAY_SUBMIT = DialectOrders(
    "epay",
    _epay_submit,
    lambda response: trade_no_of(response.headers["location"]),
    page_message,
    lambda reason: EPAY_NOTIFY_URL_REFUSED,
)
EPAY_V2 = DialectOrders(
    "epay_v2",
    _epay_v2,
    lambda response: json_answer(response)["trade_no"],
    _code_and_msg,
    lambda reason: (-1, EPAY_NOTIFY_URL_REFUSED),
)
PAY_MAPI = DialectOrders(
    "pay_mapi",
    _pay_mapi,
    lambda response: json_answer(response)["trade_no"],
    _pay_mapi_refusal,
    lambda reason: (700, "Missing parameters", f"notify_url must be a reachable http or https URL ({reason})"),
)
PAYFOR = DialectOrders(
    "payfor",
    _payfor,
    lambda response: json_answer(response)["data"]["pay_num"],
    _code_and_msg,
    lambda reason: (-3, EPAY_NOTIFY_URL_REFUSED),
)
VMQ = DialectOrders(
    "vmq",
    _vmq,
    lambda response: trade_no_named(json_answer(response)["data"]["orderId"]),
    _code_and_msg,
    lambda reason: (-1, VMQ_NOTIFY_URL_REFUSED),
)
# Every dialect once (V1 through mapi.php); ``EPAY_SUBMIT`` is the browser's way into V1.
EVERY_DIALECT = [EPAY_MAPI, EPAY_V2, PAY_MAPI, PAYFOR, VMQ]
