"""Every upstream callback is stored with what the core made of it, and answered as the channel asks.

The channel below reads nothing itself: it answers with the reading each test scripts, so the
core's own part (the decision it stores, the reply it picks, the account it hands on) is what
is checked. Channels' own readings are tested with their real upstreams in ``tests/channels``.
"""

from __future__ import annotations

import logging

from sqlalchemy import select

from openepay.channels.base import CallbackOutcome, CallbackRequest, ChannelAccount, ChannelConfig, Confirmation, Reply
from openepay.core.orders import get_order
from openepay.core.payments import receive_callback
from openepay.core.states import OrderStatus
from openepay.db.models import ChannelCallback
from tests.support.orders import sandbox_order

ACK = Reply("success")
NACK = Reply("fail", status_code=400)


class ScriptedChannel:
    """A channel whose reading of every callback is ``outcome``; it remembers the account and request it was given."""

    name = "sandbox"

    def __init__(self, outcome: CallbackOutcome) -> None:
        self.outcome = outcome
        self.accounts: list[ChannelAccount] = []
        self.requests: list[CallbackRequest] = []

    async def handle_callback(self, account: ChannelAccount, request: CallbackRequest) -> CallbackOutcome:
        self.accounts.append(account)
        self.requests.append(request)
        return self.outcome


ACCOUNT = ChannelAccount(id=None, channel="sandbox", name="built-in", config=ChannelConfig())
REQUEST = CallbackRequest(method="POST", query={}, form={}, body=b"trade_no=T1", headers={})


async def stored_decisions(gateway) -> list[tuple[bool, str, str | None]]:  # type: ignore[no-untyped-def]
    async with gateway.db.session() as session:
        rows = await session.scalars(select(ChannelCallback).order_by(ChannelCallback.id))
        return [(row.verified, row.decision, row.detail) for row in rows]


async def test_an_unverified_callback_without_a_note_is_stored_as_unverified_and_refused(gateway):
    channel = ScriptedChannel(CallbackOutcome(False, ACK, NACK, trade_no="T1"))
    assert await receive_callback(gateway.db, channel, ACCOUNT, REQUEST) == NACK
    assert (channel.accounts, channel.requests) == ([ACCOUNT], [REQUEST])
    assert await stored_decisions(gateway) == [(False, "unverified", None)]


async def test_a_verified_callback_without_a_payment_is_stored_as_no_payment_and_acknowledged(gateway):
    channel = ScriptedChannel(CallbackOutcome(True, ACK, NACK, trade_no="T1"))
    assert await receive_callback(gateway.db, channel, ACCOUNT, REQUEST) == ACK
    assert await stored_decisions(gateway) == [(True, "no_payment", None)]


async def test_the_channels_note_is_the_stored_decision(gateway):
    channel = ScriptedChannel(CallbackOutcome(False, ACK, NACK, trade_no="T1", note="bad signature"))
    assert await receive_callback(gateway.db, channel, ACCOUNT, REQUEST) == NACK
    assert await stored_decisions(gateway) == [(False, "bad signature", "bad signature")]


async def test_a_verified_payment_is_stored_with_the_cores_decision(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    paid = ScriptedChannel(CallbackOutcome(True, ACK, NACK, order.trade_no, Confirmation(order.trade_no, 100)))
    over = ScriptedChannel(CallbackOutcome(True, ACK, NACK, order.trade_no, Confirmation(order.trade_no, 101)))
    assert await receive_callback(gateway.db, over, ACCOUNT, REQUEST) == ACK
    assert await receive_callback(gateway.db, paid, ACCOUNT, REQUEST) == ACK
    assert await stored_decisions(gateway) == [(True, "amount_mismatch", None), (True, "paid", None)]


async def stored_rows(gateway) -> list[ChannelCallback]:  # type: ignore[no-untyped-def]
    async with gateway.db.session() as session:
        return list((await session.scalars(select(ChannelCallback).order_by(ChannelCallback.id))).all())


async def test_what_upstream_sent_is_kept_body_or_query_within_the_columns(gateway):
    long_note = "n" * 40
    channel = ScriptedChannel(CallbackOutcome(False, ACK, NACK, trade_no="T" * 40, note=long_note))
    await receive_callback(gateway.db, channel, ACCOUNT, REQUEST)
    query_only = CallbackRequest(method="GET", query={"trade_no": "T2", "sign": "x"}, form={}, body=b"", headers={})
    channel.outcome = CallbackOutcome(False, ACK, NACK, trade_no="")
    await receive_callback(gateway.db, channel, ACCOUNT, query_only)
    huge = CallbackRequest(method="POST", query={}, form={}, body=b"a" * 9000, headers={})
    await receive_callback(gateway.db, channel, ACCOUNT, huge)
    first, second, third = await stored_rows(gateway)
    assert (first.trade_no, first.decision, first.detail) == ("T" * 32, "n" * 32, long_note)
    assert first.payload == "trade_no=T1"
    assert (second.trade_no, second.payload) == (None, "trade_no=T2&sign=x")
    assert third.payload == "a" * 8192
    assert [row.channel for row in (first, second, third)] == ["sandbox"] * 3


async def test_an_unverified_callback_credits_nothing_even_if_it_names_a_payment(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    forged = ScriptedChannel(CallbackOutcome(False, ACK, NACK, order.trade_no, Confirmation(order.trade_no, 100)))
    assert await receive_callback(gateway.db, forged, ACCOUNT, REQUEST) == NACK
    assert await stored_decisions(gateway) == [(False, "unverified", None)]
    assert (await gateway.merchants.get(merchant.pid)).balance_fen == 0


async def test_a_payment_verified_by_another_account_does_not_pay_the_order(gateway, merchant):
    order = await sandbox_order(gateway, merchant.pid)
    assert order.channel_account_id is None  # the sandbox's built-in account
    other = ChannelAccount(id=999, channel="sandbox", name="other", config=ChannelConfig())
    channel = ScriptedChannel(CallbackOutcome(True, ACK, NACK, order.trade_no, Confirmation(order.trade_no, 100)))
    assert await receive_callback(gateway.db, channel, other, REQUEST) == ACK
    assert await stored_decisions(gateway) == [(True, "wrong_channel", None)]
    assert (await gateway.merchants.get(merchant.pid)).balance_fen == 0


async def test_a_body_that_is_not_utf8_is_kept_readable(gateway):
    channel = ScriptedChannel(CallbackOutcome(False, ACK, NACK, trade_no="T1"))
    body = b"trade_no=T1&name=" + "商品".encode("gbk")
    await receive_callback(gateway.db, channel, ACCOUNT, CallbackRequest("POST", {}, {}, body, {}))
    [row] = await stored_rows(gateway)
    assert row.payload == body.decode("utf-8", "replace")


async def test_a_payment_that_cannot_be_recorded_is_stored_as_an_error_and_refused_so_upstream_retries(
    gateway, merchant
):
    """A channel bug here (an upstream number no column takes) stands for any failure while recording."""
    order = await sandbox_order(gateway, merchant.pid)
    unrecordable = Confirmation(order.trade_no, 100, channel_trade_no=["not", "a", "string"])  # type: ignore[arg-type]
    channel = ScriptedChannel(CallbackOutcome(True, ACK, NACK, order.trade_no, unrecordable))
    assert await receive_callback(gateway.db, channel, ACCOUNT, REQUEST) == NACK
    assert await stored_decisions(gateway) == [(True, "error", None)]
    assert (await gateway.merchants.get(merchant.pid)).balance_fen == 0
    assert (await get_order(gateway.db, order.trade_no)).status == OrderStatus.PAYING


def not_credited_warnings(caplog) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [
        (record.trade_no, record.decision)
        for record in caplog.records
        if record.levelno == logging.WARNING and record.getMessage() == "upstream confirmation not credited"
    ]


async def test_only_a_verified_payment_that_credits_nothing_warns_the_operator(gateway, merchant, caplog):
    """An upstream that vouches for money the order does not take is worth a look; the rest is routine."""
    order = await sandbox_order(gateway, merchant.pid)
    routine = [
        CallbackOutcome(False, ACK, NACK, order.trade_no, Confirmation(order.trade_no, 101)),
        CallbackOutcome(True, ACK, NACK, order.trade_no),
        CallbackOutcome(True, ACK, NACK, order.trade_no, Confirmation(order.trade_no, 100)),
        CallbackOutcome(True, ACK, NACK, order.trade_no, Confirmation(order.trade_no, 100)),
    ]
    over = CallbackOutcome(True, ACK, NACK, order.trade_no, Confirmation(order.trade_no, 101))
    with caplog.at_level(logging.WARNING, logger="openepay.core.payments"):
        for outcome in routine:
            await receive_callback(gateway.db, ScriptedChannel(outcome), ACCOUNT, REQUEST)
        assert not_credited_warnings(caplog) == []
        await receive_callback(gateway.db, ScriptedChannel(over), ACCOUNT, REQUEST)
    assert not_credited_warnings(caplog) == [(order.trade_no, "amount_mismatch")]
    assert [decision for _, decision, _ in await stored_decisions(gateway)] == [
        "unverified",
        "no_payment",
        "paid",
        "already_paid",
        "amount_mismatch",
    ]
