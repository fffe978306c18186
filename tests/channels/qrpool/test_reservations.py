"""Unique amounts: which amount each order gets, how long it keeps it, and when the sweeper frees it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from openepay.channels.base import ChannelRefused, RefusalReason
from openepay.channels.qrpool.accounts import delete_code, list_codes
from openepay.channels.qrpool.reservations import paid_hold_until, release_expired, reserve
from openepay.db.models import AmountReservation
from openepay.db.types import utcnow
from openepay.notify.worker import NotifyWorker
from tests.support.locks import committed_after_it_waits
from tests.support.qrpool import GENERIC, placed, qrpool_settings, receiving_account


def later(minutes: int = 40):  # type: ignore[no-untyped-def]
    return utcnow() + timedelta(minutes=minutes)


async def amounts_for(gateway, pid, accounts, count, amount_fen=100, *, settings, prefix="O"):  # type: ignore[no-untyped-def]
    """Reserve for ``count`` new orders in turn: ``(account name, amount, code content)`` each."""
    names = {account.id: account.name for account in accounts}
    got = []
    for n in range(count):
        order = await placed(gateway, pid, f"{prefix}-{n}", amount_fen)
        reservation, code = await reserve(
            gateway.db, order.id, accounts, amount_fen, hold_until=later(), settings=settings
        )
        assert reservation.order_id == order.id and reservation.state == "held"
        got.append((names[reservation.account_id], reservation.amount_fen, code.content))
    return got


async def refusal(gateway, pid, accounts, amount_fen, *, settings, out_trade_no="REFUSED") -> str:  # type: ignore[no-untyped-def]
    order = await placed(gateway, pid, out_trade_no, amount_fen)
    with pytest.raises(ChannelRefused) as refused:
        await reserve(gateway.db, order.id, accounts, amount_fen, hold_until=later(), settings=settings)
    assert refused.value.reason == RefusalReason.NO_CODE_FOR_AMOUNT
    return refused.value.message


async def test_the_requested_amount_first_then_one_fen_up(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    got = await amounts_for(gateway, merchant.pid, [account], 3, settings=qrpool_settings(database_url))
    assert got == [("wx-main", 100, GENERIC), ("wx-main", 101, GENERIC), ("wx-main", 102, GENERIC)]


async def test_direction_down(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    settings = qrpool_settings(database_url, qrpool_amount_direction="down")
    got = await amounts_for(gateway, merchant.pid, [account], 3, settings=settings)
    assert [amount for _, amount, _ in got] == [100, 99, 98]


async def test_never_zero_or_negative(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    settings = qrpool_settings(database_url, qrpool_amount_direction="down", qrpool_max_offset_fen=5)
    got = await amounts_for(gateway, merchant.pid, [account], 2, amount_fen=2, settings=settings)
    assert [amount for _, amount, _ in got] == [2, 1]
    assert "no amount free" in await refusal(gateway, merchant.pid, [account], 2, settings=settings)


async def test_no_further_than_the_maximum_offset(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    settings = qrpool_settings(database_url, qrpool_max_offset_fen=2)
    got = await amounts_for(gateway, merchant.pid, [account], 3, settings=settings)
    assert [amount for _, amount, _ in got] == [100, 101, 102]
    message = await refusal(gateway, merchant.pid, [account], 100, settings=settings)
    assert "no amount free from 1.00 to 1.02" in message


async def test_a_maximum_offset_of_zero_gives_only_the_exact_amount(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    settings = qrpool_settings(database_url, qrpool_max_offset_fen=0)
    assert [a for _, a, _ in await amounts_for(gateway, merchant.pid, [account], 1, settings=settings)] == [100]
    assert "no amount free" in await refusal(gateway, merchant.pid, [account], 100, settings=settings)


async def test_every_account_at_an_amount_before_moving_away_from_it(gateway, merchant, database_url):
    first = await receiving_account(gateway, "wx-a", generic="wxp://a")
    second = await receiving_account(gateway, "wx-b", generic="wxp://b")
    got = await amounts_for(gateway, merchant.pid, [first, second], 5, settings=qrpool_settings(database_url))
    assert got == [
        ("wx-a", 100, "wxp://a"),
        ("wx-b", 100, "wxp://b"),
        ("wx-a", 101, "wxp://a"),
        ("wx-b", 101, "wxp://b"),
        ("wx-a", 102, "wxp://a"),
    ]


async def test_a_fixed_code_is_handed_out_for_its_amount(gateway, merchant, database_url):
    account = await receiving_account(gateway, fixed={101: "wxp://fixed-1.01"})
    got = await amounts_for(gateway, merchant.pid, [account], 3, settings=qrpool_settings(database_url))
    assert got == [("wx-main", 100, GENERIC), ("wx-main", 101, "wxp://fixed-1.01"), ("wx-main", 102, GENERIC)]


async def test_an_account_with_only_fixed_codes_takes_only_their_amounts(gateway, merchant, database_url):
    account = await receiving_account(gateway, generic=None, fixed={100: "wxp://f100", 103: "wxp://f103"})
    settings = qrpool_settings(database_url, qrpool_max_offset_fen=5)
    got = await amounts_for(gateway, merchant.pid, [account], 2, settings=settings)
    assert got == [("wx-main", 100, "wxp://f100"), ("wx-main", 103, "wxp://f103")]
    assert "no amount free" in await refusal(gateway, merchant.pid, [account], 100, settings=settings)


async def test_no_code_anywhere_near_the_amount(gateway, merchant, database_url):
    account = await receiving_account(gateway, generic=None, fixed={100: "wxp://f100"})
    settings = qrpool_settings(database_url, qrpool_max_offset_fen=5)
    message = await refusal(gateway, merchant.pid, [account], 990, settings=settings)
    assert "no amount free" in message and "no receiving account has a code" in message
    async with gateway.db.session() as session:
        assert (await session.scalars(select(AmountReservation))).all() == []


async def test_fixed_only_and_generic_accounts_together(gateway, merchant, database_url):
    fixed = await receiving_account(gateway, "wx-fixed", generic=None, fixed={100: "wxp://f100"})
    generic = await receiving_account(gateway, "wx-generic", generic="wxp://g")
    got = await amounts_for(gateway, merchant.pid, [fixed, generic], 3, settings=qrpool_settings(database_url))
    assert got == [("wx-fixed", 100, "wxp://f100"), ("wx-generic", 100, "wxp://g"), ("wx-generic", 101, "wxp://g")]


async def test_a_repeated_offer_keeps_the_orders_amount(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    settings = qrpool_settings(database_url)
    other = await placed(gateway, merchant.pid, "OTHER")
    await reserve(gateway.db, other.id, [account], 100, hold_until=later(), settings=settings)
    order = await placed(gateway, merchant.pid, "O-1")
    first, _ = await reserve(gateway.db, order.id, [account], 100, hold_until=later(40), settings=settings)
    again, code = await reserve(gateway.db, order.id, [account], 100, hold_until=later(70), settings=settings)
    assert (again.id, again.amount_fen, code.content) == (first.id, 101, GENERIC)
    async with gateway.db.session() as session:
        rows = (await session.scalars(select(AmountReservation).where(AmountReservation.order_id == order.id))).all()
    assert len(rows) == 1 and rows[0].hold_until > later(69)
    # A shorter hold never cuts the one the order already has.
    await reserve(gateway.db, order.id, [account], 100, hold_until=later(10), settings=settings)
    async with gateway.db.session() as session:
        assert (await session.get(AmountReservation, first.id)).hold_until > later(69)


async def test_offers_for_one_order_at_the_same_moment_end_with_one_amount(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    settings = qrpool_settings(database_url)
    order = await placed(gateway, merchant.pid, "O-1")
    offers = await asyncio.gather(
        *(reserve(gateway.db, order.id, [account], 100, hold_until=later(), settings=settings) for _ in range(10))
    )
    assert {(reservation.id, reservation.amount_fen) for reservation, _ in offers} == {(offers[0][0].id, 100)}
    async with gateway.db.session() as session:
        assert (await session.scalars(select(AmountReservation.amount_fen))).all() == [100]
    # The amounts the other offers held for a moment are free for the next order.
    assert [a for _, a, _ in await amounts_for(gateway, merchant.pid, [account], 1, settings=settings)] == [101]


async def test_the_sweeper_frees_only_holds_that_have_passed(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    settings = qrpool_settings(database_url)
    got = await amounts_for(gateway, merchant.pid, [account], 4, settings=settings)
    assert [amount for _, amount, _ in got] == [100, 101, 102, 103]
    now = utcnow()
    holds = {100: now - timedelta(seconds=1), 101: now + timedelta(minutes=5), 102: now - timedelta(seconds=1)}
    async with gateway.db.session() as session:
        for amount, hold_until in holds.items():
            await session.execute(
                update(AmountReservation).where(AmountReservation.amount_fen == amount).values(hold_until=hold_until)
            )
        # 102 was paid: its cooldown ran out as well. 103 is paid with its cooldown still running.
        await session.execute(
            update(AmountReservation).where(AmountReservation.amount_fen.in_((102, 103))).values(state="paid")
        )

    assert await release_expired(gateway.db, now) == 2
    async with gateway.db.session() as session:
        states = dict(list(await session.execute(select(AmountReservation.amount_fen, AmountReservation.state))))
    assert states == {100: "released", 101: "held", 102: "released", 103: "paid"}
    assert await release_expired(gateway.db, now) == 0

    # The freed amounts go to the next orders, smallest first.
    again = await amounts_for(gateway, merchant.pid, [account], 3, settings=settings, prefix="NEXT")
    assert [amount for _, amount, _ in again] == [100, 102, 104]


async def test_the_workers_sweep_releases_amounts(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    settings = qrpool_settings(database_url)
    await amounts_for(gateway, merchant.pid, [account], 1, settings=settings)
    async with gateway.db.session() as session:
        await session.execute(update(AmountReservation).values(hold_until=utcnow() - timedelta(seconds=1)))
    worker = NotifyWorker(gateway, name="sweeper")
    try:
        await worker.sweep()
    finally:
        await worker.aclose()
    async with gateway.db.session() as session:
        assert (await session.scalars(select(AmountReservation.state))).all() == ["released"]


def test_a_paid_amount_is_held_for_the_cooldown(database_url):
    paid_at = utcnow()
    settings = qrpool_settings(database_url, qrpool_paid_cooldown_seconds=600)
    assert paid_hold_until(paid_at, settings) == paid_at + timedelta(minutes=10)


async def test_the_unique_index_refuses_a_second_hold_on_an_amount(gateway, merchant):
    """What makes concurrent orders safe: the database, not a lookup, refuses a second hold."""
    account = await receiving_account(gateway)
    first = await placed(gateway, merchant.pid, "FIRST")
    second = await placed(gateway, merchant.pid, "SECOND")

    async def hold(order_id: int) -> None:
        async with gateway.db.session() as session:
            session.add(AmountReservation(account_id=account.id, order_id=order_id, amount_fen=100, hold_until=later()))

    await hold(first.id)
    with pytest.raises(IntegrityError):
        await hold(second.id)
    assert await release_expired(gateway.db, later(41)) == 1
    await hold(second.id)


async def test_a_refusal_says_the_span_tried_and_on_how_many_accounts(gateway, merchant, database_url):
    accounts = [await receiving_account(gateway), await receiving_account(gateway, "wx-spare")]
    settings = qrpool_settings(database_url, qrpool_max_offset_fen=1)
    await amounts_for(gateway, merchant.pid, accounts, 4, settings=settings)
    assert await refusal(gateway, merchant.pid, accounts, 100, settings=settings) == (
        "qrpool: no amount free from 1.00 to 1.01 on 2 receiving account(s): "
        "each is held by another order; try again later"
    )


async def test_an_amount_with_no_candidates_is_refused_for_the_requested_amount(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    assert await refusal(gateway, merchant.pid, [account], 0, settings=qrpool_settings(database_url)) == (
        "qrpool: no amount free: no receiving account has a code for any amount from the requested amount"
    )


async def test_an_order_that_is_not_stored_is_named_in_the_error(gateway, database_url):
    account = await receiving_account(gateway)
    with pytest.raises(LookupError, match=r"^order 4242 is not stored$"):
        await reserve(gateway.db, 4242, [account], 100, hold_until=later(), settings=qrpool_settings(database_url))


async def test_a_repeated_offer_hands_out_the_fixed_code_of_the_amount_it_keeps(gateway, merchant, database_url):
    account = await receiving_account(gateway, fixed={100: "wxp://fixed-1.00"})
    settings = qrpool_settings(database_url)
    order = await placed(gateway, merchant.pid, "O-1")
    first, code = await reserve(gateway.db, order.id, [account], 100, hold_until=later(), settings=settings)
    again, code_again = await reserve(gateway.db, order.id, [account], 100, hold_until=later(), settings=settings)
    assert (again.id, code.content, code_again.content) == (first.id, "wxp://fixed-1.00", "wxp://fixed-1.00")


async def test_a_repeated_offer_extends_only_its_own_orders_hold(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    settings = qrpool_settings(database_url)
    other = await placed(gateway, merchant.pid, "OTHER")
    theirs, _ = await reserve(gateway.db, other.id, [account], 100, hold_until=later(10), settings=settings)
    order = await placed(gateway, merchant.pid, "O-1")
    await reserve(gateway.db, order.id, [account], 100, hold_until=later(10), settings=settings)
    await reserve(gateway.db, order.id, [account], 100, hold_until=later(70), settings=settings)
    async with gateway.db.session() as session:
        assert (await session.get(AmountReservation, theirs.id)).hold_until < later(11)


async def test_the_sweeper_frees_a_hold_at_the_very_moment_it_ends(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    await amounts_for(gateway, merchant.pid, [account], 1, settings=qrpool_settings(database_url))
    async with gateway.db.session() as session:
        hold_until = await session.scalar(select(AmountReservation.hold_until))
    assert await release_expired(gateway.db, hold_until) == 1


async def live_reservations_of(gateway, order_id: int) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    """``(reservation id, amount)`` of what the order holds, by id."""
    async with gateway.db.session() as session:
        rows = await session.execute(
            select(AmountReservation.id, AmountReservation.amount_fen)
            .where(AmountReservation.order_id == order_id, AmountReservation.state == "held")
            .order_by(AmountReservation.id)
        )
        return [tuple(row) for row in rows.all()]


async def test_an_order_holding_amounts_on_two_accounts_keeps_being_handed_the_first(gateway, merchant, database_url):
    # Each offer looks only at the accounts it is given, so two offers over different accounts
    # leave one order holding an amount on each; a later offer over both hands back the first.
    first_account = await receiving_account(gateway, "wx-a", generic="wxp://a")
    second_account = await receiving_account(gateway, "wx-b", generic="wxp://b")
    settings = qrpool_settings(database_url)
    order = await placed(gateway, merchant.pid, "TWO-ACCOUNTS")
    first, _ = await reserve(gateway.db, order.id, [first_account], 100, hold_until=later(10), settings=settings)
    await reserve(gateway.db, order.id, [second_account], 100, hold_until=later(10), settings=settings)
    handed = []
    for minutes in (20, 30, 40):
        again, code = await reserve(
            gateway.db, order.id, [first_account, second_account], 100, hold_until=later(minutes), settings=settings
        )
        handed.append((again.id, code.content))
    assert handed == [(first.id, "wxp://a")] * 3


async def test_a_repeated_offer_skips_a_held_amount_whose_code_is_gone_for_the_next_it_holds(
    gateway, merchant, database_url
):
    fixed_only = await receiving_account(gateway, "wx-fixed", generic=None, fixed={100: "wxp://f100"})
    generic = await receiving_account(gateway, "wx-generic", generic="wxp://g")
    settings = qrpool_settings(database_url)
    order = await placed(gateway, merchant.pid, "CODE-GONE")
    await reserve(gateway.db, order.id, [fixed_only], 100, hold_until=later(), settings=settings)
    second, _ = await reserve(gateway.db, order.id, [generic], 100, hold_until=later(), settings=settings)
    [code] = await list_codes(gateway.db, fixed_only.id)
    await delete_code(gateway.db, fixed_only.id, code.id)

    again, code_again = await reserve(
        gateway.db, order.id, [fixed_only, generic], 100, hold_until=later(), settings=settings
    )
    assert (again.id, again.amount_fen, code_again.content) == (second.id, 100, "wxp://g")
    assert [amount for _, amount in await live_reservations_of(gateway, order.id)] == [100, 100]


async def test_a_repeated_offer_never_hands_back_an_amount_the_sweeper_freed_meanwhile(gateway, merchant, database_url):
    account = await receiving_account(gateway)
    settings = qrpool_settings(database_url)
    order = await placed(gateway, merchant.pid, "SWEPT")
    first, _ = await reserve(gateway.db, order.id, [account], 100, hold_until=utcnow(), settings=settings)
    # The sweeper frees the ended hold after the repeated offer read it as held, before it extends it.
    sweep = (
        update(AmountReservation)
        .where(AmountReservation.state.in_(("held", "paid")), AmountReservation.hold_until <= utcnow())
        .values(state="released")
    )
    again, _ = await committed_after_it_waits(
        gateway, sweep, reserve(gateway.db, order.id, [account], 100, hold_until=later(), settings=settings)
    )
    assert again.id != first.id
    assert await live_reservations_of(gateway, order.id) == [(again.id, 100)]
