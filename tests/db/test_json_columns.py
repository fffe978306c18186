"""JSON columns hold ``json.dumps``' very text on both databases, whichever way the row was written."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import text

from openepay.core.ids import trade_numbers
from openepay.core.orders import insert_order, order_values
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from tests.support.orders import new_order

ROUTING = {
    "pay_type": "alipay",
    "considered": [{"account": '会员 "A"', "id": None, "outcome": "chosen", "reason": "priority -100, 0.5"}],
    "at": "2026-12-04T17:00:00+00:00",
}
ATTRS = {"sub_openid": "o\u2028x", "n": 1.25, "ok": True}


async def test_an_orders_json_columns_as_json_dumps_writes_them(gateway: Gateway, merchant) -> None:  # type: ignore[no-untyped-def]
    new = new_order(merchant.pid, "JSON-1", attrs=ATTRS)
    values = order_values(new, trade_numbers.next(), utcnow(), timedelta(minutes=30))
    inserted = await insert_order(gateway.db, {**values, "routing": ROUTING})
    assert inserted is not None
    async with gateway.db.session() as session:
        row = (
            await session.execute(
                text("SELECT CAST(routing AS TEXT), CAST(attrs AS TEXT) FROM orders WHERE id = :id"),
                {"id": inserted.id},
            )
        ).one()
    assert tuple(row) == (json.dumps(ROUTING), json.dumps(ATTRS))
