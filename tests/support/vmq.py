"""A V免签 merchant, written from V免签's API page and its plugins, independently of the gateway's code.

createOrder: ``sign = md5(payId + param + type + price + 通讯密钥)`` over the strings sent, no
separators, ``param`` empty when not sent. closeOrder: ``md5(orderId + key)``. The notification
and the return: ``md5(payId + param + type + price + reallyPrice + key)`` over the strings
received, which the shop checks the way dujiaoka's ``VpayController::notifyUrl`` does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import httpx

from tests.support.answers import json_answer
from tests.support.shop import Answer, RecordingShop

# The communication key of the reference's §7.4 vectors.
VECTOR_KEY = "k3y-example"
SHOP = "https://shop.example.com"
ENDPOINTS = ("createOrder", "getOrder", "checkOrder", "closeOrder")
DATA_FIELDS = ["payId", "orderId", "payType", "price", "reallyPrice", "payUrl", "isAuto", "state", "timeOut", "date"]
NOTIFY_FIELDS = ["payId", "param", "type", "price", "reallyPrice", "sign"]


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def create_sign(params: dict[str, str], key: str) -> str:
    return md5(params["payId"] + params.get("param", "") + params["type"] + params["price"] + key)


def close_sign(order_id: str, key: str) -> str:
    return md5(order_id + key)


def notify_sign(params: dict[str, str], key: str) -> str:
    return md5(params["payId"] + params["param"] + params["type"] + params["price"] + params["reallyPrice"] + key)


def order_params(pay_id: str, shop_url: str = SHOP, /, **overrides: str | None) -> dict[str, str]:
    """A createOrder as a plugin sends it (JSON answer); an override of None leaves the field out."""
    params: dict[str, str | None] = {
        "payId": pay_id,
        "type": "1",
        "price": "9.90",
        "param": "uid=42",
        "notifyUrl": f"{shop_url}/notify",
        "returnUrl": f"{shop_url}/return",
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value is not None}


def signed(params: dict[str, str], key: str) -> dict[str, str]:
    return {**params, "sign": create_sign(params, key)}


def path(endpoint: str, pid: int | None = None) -> str:
    """``/createOrder`` for the default merchant, ``/vmq/{pid}/createOrder`` for any."""
    return f"/{endpoint}" if pid is None else f"/vmq/{pid}/{endpoint}"


async def create(
    client: httpx.AsyncClient, params: dict[str, str], pid: int | None = None, method: str = "POST"
) -> httpx.Response:
    if method == "GET":
        return await client.get(path("createOrder", pid), params=params)
    return await client.post(path("createOrder", pid), data=params)


def vmq_answer(response: httpx.Response) -> dict:
    """V免签's ``getReturn``: exactly code, msg and data."""
    answer = json_answer(response)
    assert list(answer) == ["code", "msg", "data"], answer
    assert answer["code"] in (1, -1) and isinstance(answer["msg"], str) and answer["msg"]
    return answer


def error_of(response: httpx.Response) -> str:
    """The message of a refusal: code -1, no data."""
    answer = vmq_answer(response)
    assert answer["code"] == -1 and answer["data"] is None, answer
    return answer["msg"]


def data_of(response: httpx.Response) -> dict:
    """The order data of a createOrder or getOrder success, checked for V免签's field names and types."""
    answer = vmq_answer(response)
    assert (answer["code"], answer["msg"]) == (1, "成功"), answer
    data = answer["data"]
    assert list(data) == DATA_FIELDS
    assert all(isinstance(data[name], int) for name in ("payType", "isAuto", "state", "timeOut", "date"))
    assert all(isinstance(data[name], str) for name in ("payId", "orderId", "price", "reallyPrice", "payUrl"))
    return data


class VmqShop(RecordingShop):
    """A V免签 merchant's endpoints answering from a script (the last answer repeats), after ``delay`` seconds."""

    def __init__(self, key: str, script: Sequence[Answer] = (), delay: float = 0.0) -> None:
        super().__init__(script, delay=delay)
        self.key = key

    def signature_ok(self, params: dict[str, str]) -> bool:
        """The notify script's check: all six fields there, ``sign`` = md5 over the five received values and key."""
        return set(NOTIFY_FIELDS) <= set(params) and notify_sign(params, self.key) == params["sign"]
