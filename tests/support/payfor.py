"""A payFor merchant, written from the seed's own words, independently of the gateway's code.

Request ``key``: "把使用到的所有参数，连 Token 一起，按参数名字母升序排序。把参数值拼接在一起。做 md5-32 位
加密，取字符串小写。" Notification ``sign``: "order_id + price + token". The shop receives the
POST form, checks ``sign`` like a merchant's notify script and answers from a script.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import httpx

from tests.support.answers import json_answer, page_message
from tests.support.shop import Answer, RecordingShop

# The worked vector of §7.2 (seed 002's own example): its merchant's token and request.
TOKEN = "tok_abc123"
SEED_B = {
    "uid": "10001",
    "price": "9.90",
    "type": "1",
    "notify_url": "https://shop.example.com/pay/notify",
    "return_url": "https://shop.example.com/pay/return",
    "order_id": "A20240101001",
    "order_name": "VIP月卡",
}


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def merchant_key(params: dict[str, str], token: str) -> str:
    """What a merchant's server computes: every parameter it sends (not ``key``) plus ``token``, values by name."""
    used = {name: value for name, value in params.items() if name != "key" and value != ""}
    used["token"] = token
    return md5("".join(used[name] for name in sorted(used)))


def shop_sign(params: dict[str, str], token: str) -> str:
    return md5(params["order_id"] + params["price"] + token)


def payfor_params(uid: int, merchant_url: str, order_id: str, /, **overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "uid": str(uid),
        "price": "9.90",
        "type": "2",
        "notify_url": f"{merchant_url}/notify",
        "return_url": f"{merchant_url}/return",
        "order_id": order_id,
        "order_uid": "user42",
        "order_name": "VIP月卡",
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value is not None}


def keyed(params: dict[str, str], token: str) -> dict[str, str]:
    return {**params, "key": merchant_key(params, token)}


class PayForShop(RecordingShop):
    """A payFor merchant's endpoints answering from a script (the last answer repeats), after ``delay`` seconds."""

    def __init__(self, token: str, script: Sequence[Answer] = (), delay: float = 0.0) -> None:
        super().__init__(script, delay=delay)
        self.token = token

    def signature_ok(self, params: dict[str, str]) -> bool:
        """The notify script's check: ``sign`` is md5(order_id + price + token)."""
        return {"order_id", "price", "sign"} <= set(params) and params["sign"] == shop_sign(params, self.token)


PATH = "/Home/Pay/payFor"
TITLE = re.compile(r'<h1 class="message-title[^"]*">(.*?)</h1>', re.S)


async def send(client: httpx.AsyncClient, params: dict[str, str], *, as_json: bool, method: str = "POST"):  # type: ignore[no-untyped-def]
    """One request as a merchant makes it: the form (or the query), ``?format=json`` for JSON."""
    mode = {"format": "json"} if as_json else {}
    if method == "GET":
        return await client.get(PATH, params={**params, **mode})
    return await client.post(PATH, params=mode, data=params)


def json_error(response: httpx.Response) -> tuple[int, str]:
    answer = json_answer(response)
    assert set(answer) == {"code", "msg"}, answer
    assert answer["code"] <= 0
    return answer["code"], answer["msg"]


def page_error(response: httpx.Response, status: int = 200) -> str:
    """The message of the browser's error page (title 支付失败)."""
    message = page_message(response, status)
    assert TITLE.findall(response.text) == ["支付失败"]
    return message
