"""Merchant balances: never below zero nor past 2**63 - 1, every change journaled, each ``(kind, ref)`` posted once."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from openepay.core import ledger
from openepay.core.money import MAX_STORED_FEN
from openepay.db.models import BalanceEntry, Merchant
from tests.support.locks import meeting_at


async def post(gateway, pid: int, delta_fen: int, kind: str, ref: str) -> int:
    async with gateway.db.session() as session:
        return await ledger.post(session, pid, delta_fen, kind, ref)


async def balance(gateway, pid: int) -> int:
    async with gateway.db.session() as session:
        return await session.scalar(select(Merchant.balance_fen).where(Merchant.pid == pid))


async def journal(gateway, pid: int) -> list[tuple[str, str, int, int]]:
    async with gateway.db.session() as session:
        entries = await session.scalars(
            select(BalanceEntry).where(BalanceEntry.merchant_pid == pid).order_by(BalanceEntry.id)
        )
        return [(e.kind, e.ref, e.delta_fen, e.balance_after_fen) for e in entries]


async def test_every_change_is_journaled_with_the_balance_after_it(gateway, merchant):
    assert await post(gateway, merchant.pid, 1250, "payment", "T1") == 1250
    assert await post(gateway, merchant.pid, -250, "refund", "R1") == 1000
    assert await post(gateway, merchant.pid, 1, "payment", "T2") == 1001
    assert await balance(gateway, merchant.pid) == 1001
    assert await journal(gateway, merchant.pid) == [
        ("payment", "T1", 1250, 1250),
        ("refund", "R1", -250, 1000),
        ("payment", "T2", 1, 1001),
    ]


async def test_balances_are_per_merchant(gateway, merchant):
    other = await gateway.merchants.create("Other Shop")
    await post(gateway, merchant.pid, 500, "payment", "T1")
    await post(gateway, other.pid, 70, "payment", "T2")
    assert await balance(gateway, merchant.pid) == 500
    assert await balance(gateway, other.pid) == 70
    assert await journal(gateway, other.pid) == [("payment", "T2", 70, 70)]


async def test_a_balance_never_goes_negative(gateway, merchant):
    await post(gateway, merchant.pid, 100, "payment", "T1")
    with pytest.raises(ledger.InsufficientBalance):
        await post(gateway, merchant.pid, -101, "refund", "R1")
    assert await balance(gateway, merchant.pid) == 100

    assert await post(gateway, merchant.pid, -100, "refund", "R2") == 0
    with pytest.raises(ledger.InsufficientBalance):
        await post(gateway, merchant.pid, -1, "refund", "R3")
    assert await balance(gateway, merchant.pid) == 0
    assert await journal(gateway, merchant.pid) == [("payment", "T1", 100, 100), ("refund", "R2", -100, 0)]


async def test_a_refused_debit_undoes_its_whole_transaction(gateway, merchant):
    """The caller's other writes in the same transaction go too (refunds rely on this)."""
    await post(gateway, merchant.pid, 100, "payment", "T1")
    with pytest.raises(ledger.InsufficientBalance):
        async with gateway.db.session() as session:
            await ledger.post(session, merchant.pid, 50, "payment", "T2")
            await ledger.post(session, merchant.pid, -200, "refund", "R1")
    assert await balance(gateway, merchant.pid) == 100
    assert await journal(gateway, merchant.pid) == [("payment", "T1", 100, 100)]


async def test_kind_and_ref_post_only_once(gateway, merchant):
    other = await gateway.merchants.create("Other Shop")
    await post(gateway, merchant.pid, 100, "payment", "T1")

    with pytest.raises(IntegrityError):
        await post(gateway, merchant.pid, 100, "payment", "T1")
    with pytest.raises(IntegrityError):
        await post(gateway, merchant.pid, -40, "payment", "T1")
    with pytest.raises(IntegrityError):
        await post(gateway, other.pid, 100, "payment", "T1")
    assert await balance(gateway, merchant.pid) == 100
    assert await balance(gateway, other.pid) == 0
    assert await journal(gateway, merchant.pid) == [("payment", "T1", 100, 100)]
    assert await journal(gateway, other.pid) == []

    # The same reference under another kind is another posting: a refund and its undo share one.
    assert await post(gateway, merchant.pid, -30, "refund", "R1") == 70
    assert await post(gateway, merchant.pid, 30, "refund_undo", "R1") == 100
    with pytest.raises(IntegrityError):
        await post(gateway, merchant.pid, -30, "refund", "R1")
    assert await balance(gateway, merchant.pid) == 100


async def test_concurrent_debits_never_overdraw(gateway, merchant):
    """Ten debits of 30 against a balance of 100 at once: exactly three pass.

    On PostgreSQL the merchant row is held locked until all ten transactions wait on it, so
    they really meet at the guarded UPDATE.
    """
    await post(gateway, merchant.pid, 100, "payment", "T1")

    async def debit(n: int) -> bool:
        try:
            await post(gateway, merchant.pid, -30, "refund", f"R{n}")
        except ledger.InsufficientBalance:
            return False
        return True

    locked_row = select(Merchant.pid).where(Merchant.pid == merchant.pid)
    tasks = await meeting_at(gateway, locked_row, (debit(n) for n in range(10)))
    outcomes = await asyncio.gather(*tasks)

    assert outcomes.count(True) == 3
    assert await balance(gateway, merchant.pid) == 10
    entries = await journal(gateway, merchant.pid)
    assert [(kind, delta, after) for kind, _, delta, after in entries] == [
        ("payment", 100, 100),
        ("refund", -30, 70),
        ("refund", -30, 40),
        ("refund", -30, 10),
    ]
    assert {ref for _, ref, _, _ in entries[1:]} == {f"R{n}" for n, ok in enumerate(outcomes) if ok}


# --- The 64-bit range ---------------------------------------------------------------------------------


async def set_balance(gateway, pid: int, fen: int) -> None:
    async with gateway.db.session() as session:
        await session.execute(update(Merchant).where(Merchant.pid == pid).values(balance_fen=fen))


async def stored_type(gateway, pid: int) -> str:
    """What the database holds: SQLite turns an integer sum that overflows into a REAL, silently."""
    if gateway.db.dialect != "sqlite":
        return "integer"
    async with gateway.db.session() as session:
        return await session.scalar(text("SELECT typeof(balance_fen) FROM merchants WHERE pid = :pid"), {"pid": pid})


async def test_a_credit_past_the_64_bit_range_is_refused_and_changes_nothing(gateway, merchant):
    await set_balance(gateway, merchant.pid, MAX_STORED_FEN - 100)
    assert await post(gateway, merchant.pid, 100, "payment", "T-LAST") == MAX_STORED_FEN
    with pytest.raises(ledger.BalanceOutOfRange):
        await post(gateway, merchant.pid, 1, "payment", "T-OVER")
    with pytest.raises(ledger.BalanceOutOfRange):
        await post(gateway, merchant.pid, 2**64, "payment", "T-HUGE")
    assert await balance(gateway, merchant.pid) == MAX_STORED_FEN
    assert await stored_type(gateway, merchant.pid) == "integer"
    assert [ref for _, ref, _, _ in await journal(gateway, merchant.pid)] == ["T-LAST"]


async def test_the_whole_64_bit_range_can_be_credited_at_once(gateway, merchant):
    assert await post(gateway, merchant.pid, MAX_STORED_FEN, "payment", "T-ALL") == MAX_STORED_FEN


async def test_a_refused_change_names_the_merchant_and_the_amount(gateway, merchant):
    """What the operator reads in the error: whose balance, and which amount did not fit."""
    with pytest.raises(ledger.InsufficientBalance) as short:
        await post(gateway, merchant.pid, -1, "refund", "R-SHORT")
    assert short.value.args == (merchant.pid,)
    with pytest.raises(ledger.BalanceOutOfRange) as huge:
        await post(gateway, merchant.pid, 2**64, "payment", "T-HUGE")
    assert huge.value.args == (merchant.pid, 2**64)
    await set_balance(gateway, merchant.pid, MAX_STORED_FEN)
    with pytest.raises(ledger.BalanceOutOfRange) as over:
        await post(gateway, merchant.pid, 1, "payment", "T-OVER")
    assert over.value.args == (merchant.pid, 1)


near_the_top = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-MAX_STORED_FEN, MAX_STORED_FEN),
    st.integers(0, 1000).map(lambda below: MAX_STORED_FEN - below),
    st.sampled_from([2**63, -(2**63), 2**64]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.integers(0, MAX_STORED_FEN), deltas=st.lists(near_the_top, min_size=1, max_size=8))
async def test_a_balance_stays_a_64_bit_integer_whatever_is_posted(gateway, merchant, start, deltas):
    """Every posting either applies exactly (0 <= balance <= 2**63 - 1 after it) or is refused and changes nothing."""
    await set_balance(gateway, merchant.pid, start)
    expected = start
    for delta in deltas:
        ref = f"P-{uuid.uuid4().hex}"
        if 0 <= expected + delta <= MAX_STORED_FEN:
            assert await post(gateway, merchant.pid, delta, "payment", ref) == expected + delta
            expected += delta
        else:
            with pytest.raises((ledger.InsufficientBalance, ledger.BalanceOutOfRange)):
                await post(gateway, merchant.pid, delta, "payment", ref)
        assert await balance(gateway, merchant.pid) == expected
    assert await stored_type(gateway, merchant.pid) == "integer"
