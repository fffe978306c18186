"""Every merchant-facing endpoint of every dialect: a request a merchant sends to it, how its answer
reads, and how it refuses a merchant the gate turns away.

The gate's tests (``tests/protocols/test_gate.py``) walk this table: an endpoint added here is
checked for disabled merchants, dialect lists and lockouts like every other.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from tests.support import payfor, vmq
from tests.support.answers import page_message
from tests.support.epay import order_params, signed
from tests.support.epay_v2 import V2Merchant, order_fields

SHOP = "https://shop.example.com"
WRONG_KEY = "WrongKeyWrongKeyWrongKeyWrongKey"
# What a merchant reads: JSON ``(code, msg)``, or ``(None, message)`` on an error page, or
# ``(status, location)`` for a redirect.
Answer = tuple[int | None, str]
_numbers = itertools.count(1)


def number(prefix: str) -> str:
    """A merchant order (or refund) number no other request of the run uses."""
    return f"{prefix}{next(_numbers):06d}"


@dataclass(frozen=True)
class Caller:
    """A merchant sending requests: its pid, MD5 key and RSA key pair (epay V2)."""

    pid: int
    key: str
    v2: V2Merchant

    def spoiled(self, forger: V2Merchant) -> Caller:
        """The same merchant's requests signed with the wrong MD5 key and someone else's RSA key."""
        return dataclasses.replace(self, key=WRONG_KEY, v2=forger)


@dataclass(frozen=True)
class Endpoint:
    name: str
    dialect: str
    signed: bool  # False: the endpoint checks no key (and nothing is ever locked out of it)
    send: Callable[[httpx.AsyncClient, Caller, dict[str, str]], Awaitable[httpx.Response]]
    read: Callable[[httpx.Response], Answer]
    # The answer to a request let in by the gate's rules but turned away: "disabled",
    # "not_enabled" (the merchant does not use the dialect), "locked_out".
    refusals: dict[str, Answer]


def read_json(response: httpx.Response) -> Answer:
    answer = response.json()
    text = answer.get("msg", "") + (f" ({answer['detail']})" if answer.get("detail") else "")
    return answer["code"], text


def read_page(response: httpx.Response) -> Answer:
    if response.is_redirect:
        return response.status_code, response.headers["location"]
    return None, page_message(response)


def on_page(refusals: dict[str, Answer], with_code: bool = False) -> dict[str, Answer]:
    """The refusals of a JSON endpoint as its browser twin shows them (the ``/pay/`` page leads with the code)."""
    return {name: (None, f"{code}: {text}" if with_code else text) for name, (code, text) in refusals.items()}


# -- Epay V1 ------------------------------------------------------------------------------------

V1 = {
    "disabled": (-1, "商户已封禁，无法支付！"),
    "not_enabled": (-1, "商户未开通易支付V1接口"),
    "locked_out": (-1, "签名校验失败次数过多，请1分钟后再试"),
}
V1_API = {
    "disabled": (-3, "商户已封禁"),
    "not_enabled": (-3, "商户未开通易支付V1接口"),
    "locked_out": (-3, "商户密钥错误次数过多，请1分钟后再试"),
}


def v1_order(caller: Caller) -> dict[str, str]:
    return signed(order_params(caller.pid, SHOP, number("V1-"), clientip="203.0.113.9"), caller.key)


async def submit_php(client: httpx.AsyncClient, caller: Caller, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/submit.php", data=v1_order(caller), headers=headers)


async def mapi_php(client: httpx.AsyncClient, caller: Caller, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/mapi.php", data=v1_order(caller), headers=headers)


def api_php(
    act: str, **fields: str
) -> Callable[[httpx.AsyncClient, Caller, dict[str, str]], Awaitable[httpx.Response]]:
    async def send(client: httpx.AsyncClient, caller: Caller, headers: dict[str, str]) -> httpx.Response:
        body = {"pid": str(caller.pid), "key": caller.key, **fields}
        if act == "refund":
            body["out_refund_no"] = number("R1-")
        return await client.post(f"/api.php?act={act}", data=body, headers=headers)

    return send


# -- Epay V2 ------------------------------------------------------------------------------------

V2_LOCKED = (-3, "签名校验失败次数过多，请1分钟后再试")
V2_NOT_ENABLED = (-1, "商户未开通易支付V2接口")
V2_PAY = {"disabled": (-1, "商户已被封禁，无法支付！"), "not_enabled": V2_NOT_ENABLED, "locked_out": V2_LOCKED}
V2_API = {"disabled": (-1, "商户已被封禁"), "not_enabled": V2_NOT_ENABLED, "locked_out": V2_LOCKED}


def v2_api(
    path: str, **fields: str
) -> Callable[[httpx.AsyncClient, Caller, dict[str, str]], Awaitable[httpx.Response]]:
    async def send(client: httpx.AsyncClient, caller: Caller, headers: dict[str, str]) -> httpx.Response:
        # A number of its own in every request: a V2 request sent twice is a replay.
        return await client.post(
            path, data=caller.v2.request({**fields, "out_refund_no": number("R2-")}), headers=headers
        )

    return send


async def v2_submit(client: httpx.AsyncClient, caller: Caller, headers: dict[str, str]) -> httpx.Response:
    fields = order_params(caller.pid, SHOP, number("V2S-"))
    del fields["pid"]
    return await client.post("/api/pay/submit", data=caller.v2.request(fields), headers=headers)


async def v2_create(client: httpx.AsyncClient, caller: Caller, headers: dict[str, str]) -> httpx.Response:
    return await client.post(
        "/api/pay/create", data=caller.v2.request(order_fields(SHOP, number("V2C-"))), headers=headers
    )


# -- /pay/ ----------------------------------------------------------------------------------------

PAY_MAPI = {
    "disabled": (800, "Invalid merchant or secret key, please check"),
    "not_enabled": (800, "Invalid merchant or secret key, please check"),
    "locked_out": (701, "Signature verification failed (too many failed signature checks; try again in 1 minute)"),
}


def pay_mapi(path: str) -> Callable[[httpx.AsyncClient, Caller, dict[str, str]], Awaitable[httpx.Response]]:
    async def send(client: httpx.AsyncClient, caller: Caller, headers: dict[str, str]) -> httpx.Response:
        params = order_params(caller.pid, SHOP, number("PM-"), type="wxpay")
        return await client.post(path, data=signed(params, caller.key), headers=headers)

    return send


# -- payFor -----------------------------------------------------------------------------------------

PAYFOR = {
    "disabled": (-1, "商户(uid)不存在或已停用"),
    "not_enabled": (-1, "商户(uid)不存在或已停用"),
    "locked_out": (-2, "签名(key)校验失败次数过多，请1分钟后再试"),
}


def pay_for(as_json: bool) -> Callable[[httpx.AsyncClient, Caller, dict[str, str]], Awaitable[httpx.Response]]:
    async def send(client: httpx.AsyncClient, caller: Caller, headers: dict[str, str]) -> httpx.Response:
        params = payfor.keyed(payfor.payfor_params(caller.pid, SHOP, number("PF-")), caller.key)
        mode = {"format": "json"} if as_json else {}
        return await client.post(payfor.PATH, params=mode, data=params, headers=headers)

    return send


# -- V免签 ----------------------------------------------------------------------------------------

VMQ = {
    "disabled": (-1, "商户不存在或已停用"),
    "not_enabled": (-1, "商户不存在或已停用"),
    "locked_out": (-1, "签名错误次数过多，请1分钟后再试"),
}
ORDER_ID = "20260101000000000000000001"  # no such order: a request the gate let in is answered 云端订单编号不存在


def vmq_endpoint(
    endpoint: str, root: bool
) -> Callable[[httpx.AsyncClient, Caller, dict[str, str]], Awaitable[httpx.Response]]:
    async def send(client: httpx.AsyncClient, caller: Caller, headers: dict[str, str]) -> httpx.Response:
        path = vmq.path(endpoint, None if root else caller.pid)
        if endpoint == "createOrder":
            params = vmq.signed(vmq.order_params(number("VQ-")), caller.key)
        elif endpoint == "closeOrder":
            params = {"orderId": ORDER_ID, "sign": vmq.close_sign(ORDER_ID, caller.key)}
        else:
            params = {"orderId": ORDER_ID}
        return await client.post(path, data=params, headers=headers)

    return send


def _vmq_endpoints() -> list[Endpoint]:
    """Each V免签 endpoint at the root (for the default merchant: the server must set one) and under ``/vmq/{pid}/``."""
    endpoints = []
    for root in (True, False):
        for endpoint in vmq.ENDPOINTS:
            name = f"/{endpoint}" if root else f"/vmq/{{pid}}/{endpoint}"
            signed_endpoint = endpoint in ("createOrder", "closeOrder")
            endpoints.append(Endpoint(name, "vmq", signed_endpoint, vmq_endpoint(endpoint, root), read_json, VMQ))
    return endpoints


ENDPOINTS = [
    Endpoint("/submit.php", "epay", True, submit_php, read_page, on_page(V1)),
    Endpoint("/mapi.php", "epay", True, mapi_php, read_json, V1),
    Endpoint("/api.php?act=query", "epay", True, api_php("query"), read_json, V1_API),
    Endpoint("/api.php?act=settle", "epay", True, api_php("settle"), read_json, V1_API),
    Endpoint("/api.php?act=order", "epay", True, api_php("order", out_trade_no="NONE"), read_json, V1_API),
    Endpoint("/api.php?act=orders", "epay", True, api_php("orders"), read_json, V1_API),
    Endpoint(
        "/api.php?act=refund", "epay", True, api_php("refund", out_trade_no="NONE", money="0.01"), read_json, V1_API
    ),
    Endpoint("/api/pay/submit", "epay_v2", True, v2_submit, read_page, on_page(V2_PAY)),
    Endpoint("/api/pay/create", "epay_v2", True, v2_create, read_json, V2_PAY),
    Endpoint("/api/pay/query", "epay_v2", True, v2_api("/api/pay/query", out_trade_no="NONE"), read_json, V2_API),
    Endpoint(
        "/api/pay/refund",
        "epay_v2",
        True,
        v2_api("/api/pay/refund", out_trade_no="NONE", money="0.01"),
        read_json,
        V2_API,
    ),
    Endpoint("/api/pay/refundquery", "epay_v2", True, v2_api("/api/pay/refundquery"), read_json, V2_API),
    Endpoint("/api/merchant/info", "epay_v2", True, v2_api("/api/merchant/info"), read_json, V2_API),
    Endpoint("/api/merchant/orders", "epay_v2", True, v2_api("/api/merchant/orders"), read_json, V2_API),
    Endpoint("/pay/mapi.php", "pay_mapi", True, pay_mapi("/pay/mapi.php"), read_json, PAY_MAPI),
    Endpoint(
        "/pay/submit.php", "pay_mapi", True, pay_mapi("/pay/submit.php"), read_page, on_page(PAY_MAPI, with_code=True)
    ),
    Endpoint("/Home/Pay/payFor?format=json", "payfor", True, pay_for(as_json=True), read_json, PAYFOR),
    Endpoint("/Home/Pay/payFor", "payfor", True, pay_for(as_json=False), read_page, on_page(PAYFOR)),
    *_vmq_endpoints(),
]


def from_address(address: str) -> dict[str, str]:
    """Headers making a request come from ``address``: uvicorn trusts ``X-Forwarded-For`` from loopback."""
    return {"X-Forwarded-For": address}
