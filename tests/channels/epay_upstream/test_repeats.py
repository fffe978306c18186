"""A merchant's repeated ``out_trade_no`` through ``mapi.php`` never places a second order upstream.

The relay's upstream is a fake epay gateway on loopback that keeps every order it was sent, so
the test counts them. A repeat of the same order answers the offer already made; a repeat with
other terms is refused with V1's duplicate-number text, as for any channel.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from openepay.protocols.epay.validation import terms_changed
from tests.support.channel_orders import mapi_order
from tests.support.epay import order_params, signed
from tests.support.fake_epay import FakeEpay


@pytest.fixture
def upstream() -> Iterator[FakeEpay]:
    fake = FakeEpay().start()
    yield fake
    fake.stop()


async def test_a_repeated_order_reuses_the_upstream_offer_and_a_changed_one_is_refused(
    server, gateway, merchant, shop, upstream
):
    await gateway.accounts.add("epay_upstream", "relay", upstream.account_config())
    async with server.client() as client:
        first = await mapi_order(client, merchant, shop, "REPEAT-1")
        assert len(upstream.orders) == 1
        again = await mapi_order(client, merchant, shop, "REPEAT-1")
        assert (again["trade_no"], again["qrcode"]) == (first["trade_no"], first["qrcode"])

        params = order_params(merchant.pid, shop.url, "REPEAT-1", clientip="203.0.113.9", device="pc", money="2.00")
        changed = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert changed == {"code": -1, "msg": terms_changed("REPEAT-1")}
    assert [order["out_trade_no"] for order in upstream.orders] == [first["trade_no"]]
