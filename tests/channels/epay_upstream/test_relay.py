"""The ``epay_upstream`` channel against a real upstream: OpenEpay itself, as a second ``openepay serve`` process.

Our gateway (the relay, on the test's backend) takes a merchant's order through ``mapi.php``,
relays it to the upstream's ``mapi.php`` with a relay account's pid and key, the buyer pays on
the upstream's sandbox, the upstream notifies our callback URL, and our merchant is notified in
turn. Queries and refunds go through the upstream's ``api.php``; an upstream that never calls
back is asked by reconciliation; forged, tampered and replayed callbacks change nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import update

from openepay.db.models import Order
from openepay.db.types import utcnow
from openepay.gateway import Gateway
from openepay.notify.worker import NotifyWorker
from tests.support.channel_orders import mapi_order, paid_mapi_order
from tests.support.epay import signed
from tests.support.orders import channel_callbacks, payments_and_notifications, stored_order
from tests.support.settings import make_settings
from tests.support.upstream import UpstreamGateway, upstream_gateway
from tests.support.waiting import eventually


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamGateway]:
    with upstream_gateway(tmp_path_factory.mktemp("upstream")) as running:
        yield running


@pytest.fixture(scope="module")
def silent_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpstreamGateway]:
    """An upstream whose notifications never leave it (no worker runs there)."""
    with upstream_gateway(tmp_path_factory.mktemp("silent"), notify=False) as running:
        yield running


async def relay_account(gateway: Gateway, upstream: UpstreamGateway, name: str = "relay") -> int:
    return (await gateway.accounts.add("epay_upstream", name, upstream.account_config())).id


async def pay_upstream(upstream: UpstreamGateway, upstream_trade_no: str) -> None:
    async with upstream.client() as client:
        response = await client.post(upstream.pay_page(upstream_trade_no))
    assert response.status_code == 303, response.text


async def test_a_relayed_order_is_paid_upstream_notified_queried_and_refunded(
    server, gateway, merchant, shop, worker, upstream
):
    account_id = await relay_account(gateway, upstream)

    async def placed(answer: dict) -> None:
        order = await stored_order(gateway, answer["trade_no"])
        # The buyer is handed the upstream's own offer, and the upstream's number is kept.
        assert (order.channel, order.channel_account_id, order.status) == ("epay_upstream", account_id, "paying")
        assert answer["qrcode"] == upstream.pay_page(order.channel_trade_no)
        upstream_view = await upstream.order(answer["trade_no"])
        assert (upstream_view["trade_no"], upstream_view["money"], upstream_view["status"]) == (
            order.channel_trade_no,
            "1.00",
            0,
        )

    async def pay(trade_no: str) -> None:
        await pay_upstream(upstream, (await stored_order(gateway, trade_no)).channel_trade_no)

    async with server.client() as client:
        trade_no = (await paid_mapi_order(client, merchant, shop, "RELAY-1", pay=pay, placed=placed)).trade_no
        order = await stored_order(gateway, trade_no)
        [callback] = await channel_callbacks(gateway, trade_no)
        assert (callback.channel, callback.verified, callback.decision) == ("epay_upstream", True, "paid")

        query = {"act": "order", "pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no}
        found = (await client.get("/api.php", params=query)).json()
        assert (found["status"], found["api_trade_no"]) == (1, order.channel_trade_no)

        refund = {"pid": str(merchant.pid), "key": merchant.key, "trade_no": trade_no, "money": "0.40"}
        refunded = (await client.post("/api.php?act=refund", data=refund)).json()
        assert (refunded["code"], refunded["money"]) == (1, "0.40"), refunded
    assert (await upstream.order(trade_no))["status"] == 2
    assert (await stored_order(gateway, trade_no)).status == "partially_refunded"


async def test_forged_tampered_and_replayed_callbacks_change_nothing(server, gateway, merchant, shop, worker, upstream):
    account_id = await relay_account(gateway, upstream)
    # qqpay stays with the relay's own sandbox, so one order is on another channel.
    await gateway.accounts.set_rules("relay", {"pay_types": ["alipay"]})
    path = f"/channels/epay_upstream/{account_id}/notify"
    async with server.client() as client:
        unpaid = (await mapi_order(client, merchant, shop, "FORGE-1"))["trade_no"]
        paid = (await mapi_order(client, merchant, shop, "FORGE-2"))["trade_no"]
        other = (await mapi_order(client, merchant, shop, "FORGE-3", type="qqpay"))["trade_no"]
        await pay_upstream(upstream, (await stored_order(gateway, paid)).channel_trade_no)
        await eventually(lambda: shop.notifications())
        [genuine] = await channel_callbacks(gateway, paid)

        unpaid_order = await stored_order(gateway, unpaid)
        fields = {
            "pid": upstream.pid,
            "trade_no": unpaid_order.channel_trade_no,
            "out_trade_no": unpaid,
            "type": "alipay",
            "name": "VIP会员",
            "money": "1.00",
            "trade_status": "TRADE_SUCCESS",
        }

        forgeries = {
            "wrong key": signed(fields, "not-the-upstream-key"),
            "tampered amount": {**signed(fields, upstream.key), "money": "0.01"},
            "tampered number": {**signed(fields, upstream.key), "out_trade_no": paid},
            "another merchant": signed({**fields, "pid": "9999"}, upstream.key),
        }
        for name, forged in forgeries.items():
            reply = await client.get(path, params=forged)
            assert (reply.status_code, reply.text) == (200, "fail"), name
        # Signed by the upstream, but for less money than the order: recorded, not credited.
        short = await client.get(path, params=signed({**fields, "money": "0.99"}, upstream.key))
        assert short.text == "success"
        # An order of another channel (the relay's sandbox served the qqpay order) is not this account's.
        foreign = await client.get(path, params=signed({**fields, "out_trade_no": other}, upstream.key))
        assert foreign.text == "success"
        # The genuine callback again, as an upstream's retry would send it: acknowledged, counted once.
        replayed = await client.get(f"{path}?{genuine.payload}")
        assert replayed.text == "success"

    assert (await stored_order(gateway, unpaid)).status == "paying"
    assert (await stored_order(gateway, other)).status == "paying"
    assert [row.decision for row in await channel_callbacks(gateway, unpaid)] == [
        "bad signature",
        "bad signature",
        "another merchant's pid",
        "amount_mismatch",
    ]
    assert [row.decision for row in await channel_callbacks(gateway, other)] == ["wrong_channel"]
    assert [row.decision for row in await channel_callbacks(gateway, paid)] == ["paid", "bad signature", "already_paid"]
    assert await payments_and_notifications(gateway) == (1, 1)


async def test_reconciliation_finds_a_payment_whose_callback_never_came(
    server, gateway, merchant, shop, database_url, silent_upstream
):
    await relay_account(gateway, silent_upstream)
    async with server.client() as client:
        trade_no = (await mapi_order(client, merchant, shop, "RECON-1"))["trade_no"]
    await pay_upstream(silent_upstream, (await stored_order(gateway, trade_no)).channel_trade_no)
    assert (await silent_upstream.order(trade_no))["status"] == 1

    sweeper = Gateway.from_settings(make_settings(database_url, reconcile_after_seconds=0))
    try:
        await NotifyWorker(sweeper, name="reconciler").sweep()
    finally:
        await sweeper.aclose()
    order = await stored_order(gateway, trade_no)
    assert (order.status, order.paid_late, order.paid_fen) == ("paid", False, 100)
    assert order.channel_trade_no == (await silent_upstream.order(trade_no))["trade_no"]
    assert order.checked_at is not None


async def test_a_payment_after_we_closed_the_order_is_credited_late_and_flagged(
    server, gateway, merchant, shop, worker, upstream
):
    await relay_account(gateway, upstream)
    async with server.client() as client:
        trade_no = (await mapi_order(client, merchant, shop, "LATE-1"))["trade_no"]
    async with gateway.db.session() as session:
        await session.execute(update(Order).where(Order.trade_no == trade_no).values(expires_at=utcnow()))
    await eventually(lambda: _status_is(gateway, trade_no, "closed"))

    # The epay protocol cannot close it upstream: the buyer can still pay there.
    await pay_upstream(upstream, (await stored_order(gateway, trade_no)).channel_trade_no)
    await eventually(lambda: shop.notifications())
    order = await stored_order(gateway, trade_no)
    assert (order.status, order.paid_late) == ("paid", True)


async def _status_is(gateway: Gateway, trade_no: str, status: str) -> bool:
    return (await stored_order(gateway, trade_no)).status == status


async def test_channel_test_checks_the_pid_and_key_live(gateway, upstream):
    await gateway.accounts.add("epay_upstream", "right", upstream.account_config())
    await gateway.accounts.add("epay_upstream", "wrong", upstream.account_config(key="0" * 32))
    channel = gateway.channel("epay_upstream")
    assert channel is not None
    for name, ok in (("right", True), ("wrong", False)):
        record = await gateway.accounts.record(name)
        check = await channel.check_credentials(gateway.accounts.open(record))
        assert check.ok is ok, check.detail
