"""Merchant numbers run from 1 to 2**31 - 1 (``openepay/core/merchants.py``): every dialect reaches both ends.

Shops moved from another gateway keep their numbers, so the first and the last one are real
merchants; each dialect reads the number its own way (a form field, a path segment), and none
may stop short of either end.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from openepay.core.merchants import MAX_PID
from openepay.db.models import Order
from tests.support.dialects import EPAY_SUBMIT, EVERY_DIALECT
from tests.support.epay_v2 import V2Merchant

DIALECTS = [*EVERY_DIALECT, EPAY_SUBMIT]
DIALECT_IDS = ["epay-mapi", "epay_v2", "pay_mapi", "payfor", "vmq", "epay-submit"]


@pytest.mark.parametrize("pid", [1, MAX_PID], ids=["first", "last"])
@pytest.mark.parametrize("dialect", DIALECTS, ids=DIALECT_IDS)
async def test_the_first_and_the_last_merchant_numbers_take_orders_in_every_dialect(
    server, gateway, merchant_private_key, dialect, pid
):
    credentials = await gateway.merchants.create("Shop at the edge", pid=pid)
    shop = V2Merchant(credentials.pid, credentials.key, merchant_private_key)
    await gateway.merchants.update(pid, rsa_public_key=shop.public_pem)
    async with server.client() as client:
        response = await dialect.place(client, shop, "EDGE-1", "https://shop.example.com/notify")
        trade_no = dialect.trade_no(response)
    async with gateway.db.session() as session:
        order = await session.scalar(select(Order).where(Order.trade_no == trade_no))
    assert order is not None and (order.merchant_pid, order.out_trade_no) == (pid, "EDGE-1")
