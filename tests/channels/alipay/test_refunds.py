"""Refunds through Alipay whose answer is uncertain never refund twice.

A refund whose answer times out, or that Alipay answers "service unavailable", stays in
progress with its amount reserved: the merchant is told so, cannot refund the amount again,
and reconciliation settles it by asking Alipay (``alipay.trade.fastpay.refund.query``), or by
sending the same refund number again when Alipay has no record of it. Only a sure refusal
frees the amount.
"""

from __future__ import annotations

import httpx

from openepay.core.orders import channel_view
from openepay.gateway import Gateway
from openepay.notify.worker import NotifyWorker
from tests.conftest import make_settings
from tests.support.epay import order_params, signed
from tests.support.fake_alipay import FakeAlipay
from tests.support.gateways import own_server
from tests.support.orders import stored_order

PENDING = "退款处理中：支付通道尚未确认结果，请稍后查询，勿更换退款单号重试"


async def paid_alipay_order(
    client: httpx.AsyncClient, gateway: Gateway, merchant, shop, fake: FakeAlipay, out_trade_no: str
) -> str:  # type: ignore[no-untyped-def]
    await gateway.accounts.add("alipay", "alipay-main", fake.account_config())
    params = order_params(merchant.pid, shop.url, out_trade_no, clientip="203.0.113.9", device="pc")
    answer = (await client.post("/mapi.php", data=signed(params, merchant.key))).json()
    assert answer["code"] == 1, answer
    assert (await fake.pay(answer["trade_no"])).text == "success"
    return answer["trade_no"]


async def api(client: httpx.AsyncClient, merchant, act: str, **fields: str) -> dict:  # type: ignore[no-untyped-def]
    body = {"pid": str(merchant.pid), "key": merchant.key, **fields}
    if act == "refund":
        return (await client.post("/api.php?act=refund", data=body)).json()
    return (await client.get("/api.php", params={"act": act, **body})).json()


async def sweep(database_url: str) -> None:
    """One pass of a notification worker that asks upstreams at once."""
    sweeper = Gateway.from_settings(make_settings(database_url, reconcile_after_seconds=0))
    try:
        await NotifyWorker(sweeper, name="reconciler").sweep()
    finally:
        await sweeper.aclose()


async def test_a_refund_whose_answer_never_came_is_found_refunded_once(
    server, database_url, gateway, merchant, shop, fake_alipay
):
    async with server.client() as client:
        trade_no = await paid_alipay_order(client, gateway, merchant, shop, fake_alipay, "HANG-1")
    trade = fake_alipay.trades[trade_no]
    # Alipay refunds, but its answer comes after our gateway gave up waiting.
    fake_alipay.refund_mode, fake_alipay.hang_seconds = "hang", 3.0
    with own_server(database_url, upstream_timeout=0.5) as impatient:
        async with httpx.AsyncClient(base_url=impatient.url, timeout=10) as client:
            first = await api(client, merchant, "refund", trade_no=trade_no, money="1.00", out_refund_no="R-1")
            assert first == {"code": -1, "msg": PENDING}
            # Nothing the merchant does now can refund the money a second time.
            again = await api(client, merchant, "refund", trade_no=trade_no, money="1.00", out_refund_no="R-2")
            assert again == {"code": -1, "msg": "退款金额不能大于订单金额"}
            retried = await api(client, merchant, "refund", trade_no=trade_no, money="1.00", out_refund_no="R-1")
            assert retried == {"code": -1, "msg": "该退款单号的退款正在处理中，请稍后查询"}
            assert (await api(client, merchant, "order", trade_no=trade_no))["status"] == 1
    assert len(trade.refunds) == 1

    await sweep(database_url)
    assert fake_alipay.calls[-1] == "alipay.trade.fastpay.refund.query"
    assert (len(trade.refunds), fake_alipay.calls.count("alipay.trade.refund")) == (1, 1)
    order = await stored_order(gateway, trade_no)
    assert (order.status, order.refunded_fen) == ("refunded", 100)
    async with server.client() as client:
        settled = await api(client, merchant, "refund", trade_no=trade_no, money="1.00", out_refund_no="R-1")
        assert (settled["code"], settled["money"]) == (1, "1.00"), settled
        assert (await api(client, merchant, "query"))["money"] == "0.00"


async def test_a_refund_alipay_could_not_take_is_sent_again_with_the_same_number(
    server, database_url, gateway, merchant, shop, fake_alipay
):
    async with server.client() as client:
        trade_no = await paid_alipay_order(client, gateway, merchant, shop, fake_alipay, "BUSY-1")
        # "20000 Service Currently Unavailable": Alipay says nothing sure, and refunded nothing.
        fake_alipay.refund_mode = "system_error"
        first = await api(client, merchant, "refund", trade_no=trade_no, money="0.30")
        assert first == {"code": -1, "msg": PENDING}
    trade = fake_alipay.trades[trade_no]
    assert trade.refunds == {}

    await sweep(database_url)
    refund_calls = [call for call in fake_alipay.calls if "refund" in call]
    assert refund_calls == ["alipay.trade.refund", "alipay.trade.fastpay.refund.query", "alipay.trade.refund"]
    assert list(trade.refunds.values()) == ["0.30"]
    order = await stored_order(gateway, trade_no)
    assert (order.status, order.refunded_fen) == ("partially_refunded", 30)
    # A second sweep finds nothing left to ask about.
    await sweep(database_url)
    assert [call for call in fake_alipay.calls if "refund" in call] == refund_calls


async def test_only_a_refusal_signed_by_alipay_frees_the_amount(server, gateway, merchant, shop, fake_alipay):
    async with server.client() as client:
        trade_no = await paid_alipay_order(client, gateway, merchant, shop, fake_alipay, "SHUT-1")
        # The trade can no longer be refunded at Alipay (closed there): a signed ACQ.TRADE_STATUS_ERROR.
        fake_alipay.trades[trade_no].status = "TRADE_CLOSED"
        refused = await api(client, merchant, "refund", trade_no=trade_no, money="1.00")
        assert refused == {"code": -1, "msg": "退款失败：支付通道暂时无法退款，请稍后再试"}
        assert (await api(client, merchant, "query"))["money"] == "1.00"
        fake_alipay.trades[trade_no].status = "TRADE_SUCCESS"
        refunded = await api(client, merchant, "refund", trade_no=trade_no, money="1.00")
        assert (refunded["code"], refunded["money"]) == (1, "1.00"), refunded
    assert list(fake_alipay.trades[trade_no].refunds.values()) == ["1.00"]


async def test_a_refund_that_moved_no_money_is_confirmed_by_a_refund_query(
    server, gateway, merchant, shop, fake_alipay
):
    """Alipay's ``fund_change`` N: this request moved nothing; only a query says whether an earlier one did."""
    async with server.client() as client:
        trade_no = await paid_alipay_order(client, gateway, merchant, shop, fake_alipay, "TWICE-1")
    channel = gateway.channel("alipay")
    assert channel is not None
    account = gateway.accounts.open(await gateway.accounts.record("alipay-main"))
    order = channel_view(await stored_order(gateway, trade_no))
    first = await channel.refund(account, order, 50, "REFUND-TWICE")
    again = await channel.refund(account, order, 50, "REFUND-TWICE")
    assert (first.succeeded, first.pending) == (True, False)
    assert (again.succeeded, again.pending) == (False, True)
    asked = await channel.query_refund(account, order, 50, "REFUND-TWICE")
    assert (asked.succeeded, asked.pending) == (True, False)
    # Asked about another amount than Alipay refunded, the answer is not taken as settled.
    wrong = await channel.query_refund(account, order, 40, "REFUND-TWICE")
    assert (wrong.succeeded, wrong.pending) == (False, True)
    assert list(fake_alipay.trades[trade_no].refunds.values()) == ["0.50"]
