"""Orders a merchant places through ``mapi.php`` for a channel's end-to-end tests, and the order as stored."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from openepay.core.merchants import MerchantCredentials
from openepay.db.models import Order
from openepay.gateway import Gateway
from tests.support.epay import order_params, signed
from tests.support.merchant import FakeMerchant


async def mapi_order(
    client: httpx.AsyncClient, merchant: MerchantCredentials, shop: FakeMerchant, out_trade_no: str, **overrides: str
) -> dict:
    """A one-yuan desktop order (unless ``overrides`` say otherwise), and ``mapi.php``'s successful answer."""
    fields = {"clientip": "203.0.113.9", "device": "pc", "money": "1.00", **overrides}
    params = order_params(merchant.pid, shop.url, out_trade_no, **fields)
    answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert answer["code"] == 1, answer
    return answer


async def stored_order(gateway: Gateway, trade_no: str) -> Order:
    async with gateway.db.session() as session:
        return (await session.scalars(select(Order).where(Order.trade_no == trade_no))).one()
