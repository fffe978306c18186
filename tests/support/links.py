"""An order's buyer-facing addresses, made as the test gateways make them (their secret is ``TEST_SECRET``)."""

from __future__ import annotations

import re

from openepay.core.buyer_links import BuyerLinks
from tests.support.settings import TEST_SECRET

LINKS = BuyerLinks(TEST_SECRET)
_CASHIER = re.compile(r"(?:https?://[^/]+)?/cashier/([^/?]+)(?:/[a-z]+)?(?:\?.*)?")


def handle(trade_no: str) -> str:
    return LINKS.handle(trade_no)


def cashier_path(trade_no: str) -> str:
    return LINKS.cashier_path(trade_no)


def sandbox_path(trade_no: str) -> str:
    return f"/sandbox/pay/{LINKS.handle(trade_no)}"


def trade_no_of(cashier_url: str) -> str:
    """The order a cashier URL or path (as handed out) is for; fails the test on anything else."""
    match = _CASHIER.fullmatch(cashier_url)
    assert match is not None, cashier_url
    return trade_no_named(match.group(1))


def trade_no_named(order_handle: str) -> str:
    """The order number inside a genuine handle (V免签's ``orderId``); fails the test on anything else."""
    trade_no = LINKS.trade_no_of(order_handle)
    assert trade_no is not None, order_handle
    return trade_no
