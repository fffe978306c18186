"""Placing and paying V2 orders over HTTP, for the tests of this package."""

from __future__ import annotations

import httpx

from tests.support.epay_v2 import V2Merchant, order_fields
from tests.support.links import sandbox_path

SHOP = "https://shop.example.com"


async def create(client: httpx.AsyncClient, v2: V2Merchant, out_trade_no: str, **overrides: str | None) -> dict:
    answer = (
        await client.post("/api/pay/create", data=v2.request(order_fields(SHOP, out_trade_no, **overrides)))
    ).json()
    assert answer["code"] == 0, answer
    return answer


async def paid(client: httpx.AsyncClient, v2: V2Merchant, out_trade_no: str, **overrides: str | None) -> str:
    trade_no = (await create(client, v2, out_trade_no, **overrides))["trade_no"]
    assert (await client.post(sandbox_path(trade_no))).status_code == 303
    return trade_no


async def api(client: httpx.AsyncClient, v2: V2Merchant, endpoint: str, **fields: str) -> dict:
    return (await client.post(f"/api/{endpoint}", data=v2.request(fields))).json()
