"""``openepay refund list`` and ``refund settle``: the operator's word on a refund an epay upstream left unsure.

The relay's upstream (a fake epay gateway on loopback) takes the refund and then fails with
HTTP 502: nobody knows whether the buyer got the money, so the refund stays processing with
its amount reserved, and an epay upstream cannot be asked. The operator checks it there and
settles it; the merchant sees the result through ``api.php`` like any other refund.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from openepay.db.models import AuditEntry, Order, Refund
from tests.support.channel_orders import mapi_order
from tests.support.cli import openepay
from tests.support.fake_epay import FakeEpay


@pytest.fixture
def upstream() -> Iterator[FakeEpay]:
    fake = FakeEpay().start()
    yield fake
    fake.stop()


def refund_request(merchant, trade_no: str, out_refund_no: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        "pid": str(merchant.pid),
        "key": merchant.key,
        "trade_no": trade_no,
        "money": "2.00",
        "out_refund_no": out_refund_no,
    }


async def unsure_refund(client, gateway, merchant, shop, upstream: FakeEpay, out_trade_no: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A paid five-yuan relay order and a refund of 2.00 whose upstream answer was lost; (trade_no, refund_no)."""
    trade_no = (await mapi_order(client, merchant, shop, out_trade_no, money="5.00"))["trade_no"]
    assert (await upstream.pay(trade_no)).text == "success"
    upstream.refund_behaviour = "broken"
    answer = (
        await client.post("/api.php?act=refund", data=refund_request(merchant, trade_no, f"R-{out_trade_no}"))
    ).json()
    assert answer["code"] != 1 and "退款处理中" in answer["msg"], answer
    async with gateway.db.session() as session:
        refund = await session.scalar(select(Refund).where(Refund.out_refund_no == f"R-{out_trade_no}"))
    assert refund is not None and refund.status == "processing"
    return trade_no, refund.refund_no


async def balance(client, merchant) -> str:  # type: ignore[no-untyped-def]
    params = {"act": "query", "pid": str(merchant.pid), "key": merchant.key}
    return (await client.get("/api.php", params=params)).json()["money"]


async def order_of(gateway, trade_no: str) -> Order:  # type: ignore[no-untyped-def]
    async with gateway.db.session() as session:
        return (await session.scalars(select(Order).where(Order.trade_no == trade_no))).one()


async def test_a_failed_refund_gives_the_amount_back_once_and_is_audited(
    server, gateway, database_url, merchant, shop, upstream
):
    await gateway.accounts.add("epay_upstream", "relay", upstream.account_config())
    async with server.client() as client:
        trade_no, refund_no = await unsure_refund(client, gateway, merchant, shop, upstream, "SETTLE-1")
        assert await balance(client, merchant) == "3.00"  # 5.00 paid, 2.00 reserved for the refund

        listed = await openepay(database_url, "refund", "list")
        assert listed.returncode == 0, listed.stderr
        assert refund_no in listed.stdout and trade_no in listed.stdout and "2.00" in listed.stdout

        undecided = await openepay(database_url, "refund", "settle", refund_no, "--reason", "checked")
        assert (undecided.returncode, "--succeeded or --failed" in undecided.stderr) == (1, True)

        reason = "upstream console shows no refund RF000001"
        settled = await openepay(database_url, "refund", "settle", refund_no, "--failed", "--reason", reason)
        assert settled.returncode == 0, settled.stderr
        assert f"refund {refund_no} failed" in settled.stdout
        # Freed exactly as reconciliation frees a refund the channel surely refused.
        assert await balance(client, merchant) == "5.00"
        order = await order_of(gateway, trade_no)
        assert (order.status, order.refunded_fen) == ("paid", 0)

        again = await openepay(database_url, "refund", "settle", refund_no, "--succeeded", "--reason", "oops")
        assert again.returncode == 1
        assert f"refund {refund_no} is failed, not processing" in again.stderr
        assert await balance(client, merchant) == "5.00"

    async with gateway.db.session() as session:
        [entry] = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "refund.settle"))).all()
    assert (entry.actor, entry.trade_no, entry.reason) == (f"cli:{getpass.getuser()}", trade_no, reason)
    assert entry.after == {"refund_no": refund_no, "status": "failed"}


async def test_a_succeeded_refund_is_booked_and_the_merchant_sees_it(
    server, gateway, database_url, merchant, shop, upstream
):
    await gateway.accounts.add("epay_upstream", "relay", upstream.account_config())
    async with server.client() as client:
        trade_no, refund_no = await unsure_refund(client, gateway, merchant, shop, upstream, "SETTLE-2")
        settled = await openepay(
            database_url, "refund", "settle", refund_no, "--succeeded", "--reason", "RF000001 shows 2.00 refunded"
        )
        assert settled.returncode == 0, settled.stderr
        assert await balance(client, merchant) == "3.00"
        order = await order_of(gateway, trade_no)
        assert (order.status, order.refunded_fen) == ("partially_refunded", 200)
        # The merchant's retry of the same refund number now answers the refund as made, refunding nothing more.
        retry = (await client.post("/api.php?act=refund", data=refund_request(merchant, trade_no, "R-SETTLE-2"))).json()
        assert (retry["code"], retry["money"]) == (1, "2.00"), retry
        assert await balance(client, merchant) == "3.00"

    unknown = await openepay(database_url, "refund", "settle", "NO-SUCH-REFUND", "--failed", "--reason", "x")
    assert (unknown.returncode, "there is no refund NO-SUCH-REFUND" in unknown.stderr) == (1, True)
