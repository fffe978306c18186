"""What a merchant of the ``/pay/`` dialect does, written from the seed alone (not from our code).

The seed's signing rule: parameter names in ASCII order, empty values left out, case
sensitive, ``sign`` and ``sign_type`` left out, ``k=v`` joined with ``&``, the secret key
appended, MD5.
"""

from __future__ import annotations

import hashlib

import httpx
from sqlalchemy import select

from openepay.db.models import Order
from tests.support.answers import json_answer
from tests.support.database import order_count as order_count  # for test_submit.py, which reads it from here
from tests.support.orders import unsaved_order

SHOP = "https://shop.example.com"
MAPI = "/pay/mapi.php"
SUBMIT = "/pay/submit.php"

# The seed's status code table, word for word.
SEED_MESSAGES = {
    700: "Missing parameters",
    701: "Signature verification failed",
    702: "Channel is under maintenance, please try again later",
    703: "No payment code matched for the corresponding amount, please change the amount and try again",
    704: "Amount cannot be less than 0.01 yuan",
    705: "Duplicate order number",
    800: "Invalid merchant or secret key, please check",
    901: "No available channel, please check",
}
SUCCESS_FIELDS = {"code", "msg", "money", "type", "qrcode", "trade_no", "out_trade_no", "payurl"}


def seed_content(params: dict[str, str]) -> str:
    names = sorted(
        (name for name in params if name not in ("sign", "sign_type") and params[name] != ""), key=str.encode
    )
    return "&".join(f"{name}={params[name]}" for name in names)


def seed_sign(params: dict[str, str], key: str) -> str:
    return hashlib.md5((seed_content(params) + key).encode("utf-8")).hexdigest()


def signed(params: dict[str, str], key: str) -> dict[str, str]:
    return {**params, "sign": seed_sign(params, key), "sign_type": "MD5"}


def pay_params(pid: int, shop_url: str, out_trade_no: str, **overrides: str | None) -> dict[str, str]:
    """An order as the seed's merchants send it; an override of None leaves the field out."""
    params: dict[str, str | None] = {
        "pid": str(pid),
        "type": "wxpay",
        "out_trade_no": out_trade_no,
        "notify_url": f"{shop_url}/notify",
        "return_url": f"{shop_url}/return",
        "name": "An Oreo",
        "money": "1.00",
        "sitename": "Oreo Shop",
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value is not None}


async def call(client: httpx.AsyncClient, params: dict[str, str], method: str = "POST", path: str = MAPI):
    if method == "GET":
        return await client.get(path, params=params)
    return await client.post(path, data=params)


def error_of(response: httpx.Response) -> tuple[int, str, str | None]:
    """``(code, msg, detail)``; msg must be the seed's text for the code."""
    answer = json_answer(response)
    assert set(answer) in ({"code", "msg"}, {"code", "msg", "detail"}), answer
    assert answer["msg"] == SEED_MESSAGES[answer["code"]], answer
    if "detail" in answer:
        assert isinstance(answer["detail"], str) and answer["detail"].isascii() and answer["detail"]
    return answer["code"], answer["msg"], answer.get("detail")


def code_of(response: httpx.Response) -> int:
    return error_of(response)[0]


def success_of(response: httpx.Response) -> dict:
    answer = json_answer(response)
    assert answer["code"] == 200, answer
    assert set(answer) == SUCCESS_FIELDS, answer
    assert answer["msg"] == "success"
    assert answer["trade_no"].isdigit() and len(answer["trade_no"]) <= 32
    return answer


async def orders_of(gateway, pid: int) -> list[Order]:  # type: ignore[no-untyped-def]
    async with gateway.db.session() as session:
        return list((await session.scalars(select(Order).where(Order.merchant_pid == pid).order_by(Order.id))).all())


def notes_order(**overrides: object) -> Order:
    """The paid order of §7.5's notification vector (key ``epaykey123``), never stored."""
    notes: dict[str, object] = {
        "merchant_pid": 1001,
        "out_trade_no": "A20240101001",
        "pay_type": "wxpay",
        "name": "VIP",
        "money": "9.90",
        "amount_fen": 990,
        "pay_amount_fen": 990,
        "paid_fen": 990,
        "notify_url": "https://shop.example.com/pay/notify",
        "return_url": "https://shop.example.com/pay/return",
    }
    return unsaved_order("pay_mapi", **{**notes, **overrides})
