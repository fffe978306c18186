"""Orders a merchant places through ``mapi.php`` for a channel's end-to-end tests, and the order as stored."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from openepay.core.merchants import MerchantCredentials
from tests.support.epay import order_params, signed
from tests.support.merchant import FakeMerchant
from tests.support.shop import Received
from tests.support.waiting import eventually


async def mapi_order(
    client: httpx.AsyncClient, merchant: MerchantCredentials, shop: FakeMerchant, out_trade_no: str, **overrides: str
) -> dict:
    """A one-yuan desktop order (unless ``overrides`` say otherwise), and ``mapi.php``'s successful answer."""
    fields = {"clientip": "203.0.113.9", "device": "pc", "money": "1.00", **overrides}
    params = order_params(merchant.pid, shop.url, out_trade_no, **fields)
    answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert answer["code"] == 1, answer
    return answer


@dataclass(frozen=True)
class PaidOrder:
    """A ``mapi.php`` order the buyer paid upstream, and the notification the merchant's server received."""

    answer: dict
    # What playing the buyer upstream returned (the gateway's reply to the upstream's callback, say).
    paid: Any
    notification: Received

    @property
    def trade_no(self) -> str:
        return self.answer["trade_no"]


async def paid_mapi_order(
    client: httpx.AsyncClient,
    merchant: MerchantCredentials,
    shop: FakeMerchant,
    out_trade_no: str,
    *,
    pay: Callable[[str], Awaitable[Any]],
    placed: Callable[[dict], Awaitable[None]] | None = None,
    **overrides: str,
) -> PaidOrder:
    """A channel's whole happy path: ``mapi_order``, the buyer pays upstream, the merchant is notified.

    ``placed`` checks the order as placed, before the buyer pays; ``pay`` plays the buyer at the
    channel's upstream for our ``trade_no``. The merchant's single notification must carry a
    signature its key verifies, its own ``out_trade_no`` and ``TRADE_SUCCESS``.
    """
    answer = await mapi_order(client, merchant, shop, out_trade_no, **overrides)
    if placed is not None:
        await placed(answer)
    paid = await pay(answer["trade_no"])
    [notification] = await eventually(lambda: shop.notifications())
    assert notification.signature_ok is True
    assert (notification.params["out_trade_no"], notification.params["trade_status"]) == (out_trade_no, "TRADE_SUCCESS")
    return PaidOrder(answer, paid, notification)
